"""Tuning methods. One module per method; :data:`METHODS` maps ``method.name`` to it (one line each)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tunesmith.adapters import bottleneck, dora, fewshot, freeze, full, ia3, lora, prefix, prompt, ptuning, qlora

METHODS: dict[str, ModuleType] = {
    "lora": lora,
    "dora": dora,
    "qlora": qlora,
    "ia3": ia3,
    "prompt": prompt,
    "prefix": prefix,
    "ptuning": ptuning,
    "adapters": bottleneck,
    "fewshot": fewshot,
    "full": full,
    "freeze": freeze,
}


def get_method(name: str) -> ModuleType:
    return METHODS[name]


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def for_inference(model: Any) -> Any:
    """Merge an adapter into its base for faster scoring, unless the base is quantized (merging into 4/8-bit
    weights re-rounds them, so the merged model is not the one that was trained)."""
    if hasattr(model, "merge_and_unload") and not getattr(model, "tunesmith_quantization", None):
        return model.merge_and_unload()
    return model
