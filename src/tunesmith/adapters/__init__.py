"""Tuning methods. One module per method; :data:`METHODS` maps ``method.name`` to it (one line each)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tunesmith.adapters import freeze, full, lora

METHODS: dict[str, ModuleType] = {"lora": lora, "full": full, "freeze": freeze}


def get_method(name: str) -> ModuleType:
    return METHODS[name]


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
