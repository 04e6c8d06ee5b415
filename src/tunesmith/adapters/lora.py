"""LoRA (Hu et al. 2021, arXiv:2106.09685) through PEFT, so saved adapters load with plain ``peft``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tunesmith.adapters.blocks import is_classifier, transformer_blocks
from tunesmith.config.schema import LoraMethod

SAVES_ADAPTER = True


def linear_names(model: Any) -> list[str]:
    """Short names of the linear layers inside the transformer blocks (what 'all-linear' means)."""
    names: set[str] = set()
    for block in transformer_blocks(model):
        for name, module in block.named_modules():
            if isinstance(module, torch.nn.Linear):
                names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def apply(model: Any, config: LoraMethod) -> Any:
    from peft import LoraConfig, get_peft_model

    targets: str | list[str] = config.targets
    layers = None
    if config.last_n_layers is not None:
        n_blocks = len(transformer_blocks(model))
        if config.last_n_layers > n_blocks:
            raise ValueError(f"lora: last_n_layers={config.last_n_layers} but the model has {n_blocks} blocks")
        layers = list(range(n_blocks - config.last_n_layers, n_blocks))
        if targets == "all-linear":  # PEFT needs explicit names together with layers_to_transform
            targets = linear_names(model)
    peft_config = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,  # type: ignore[arg-type]  # PEFT annotates int, accepts float
        lora_dropout=config.dropout,
        target_modules=targets,
        layers_to_transform=layers,
        task_type="SEQ_CLS" if is_classifier(model) else "CAUSAL_LM",  # SEQ_CLS also trains the new head
        bias="none",
    )
    return get_peft_model(model, peft_config)


def save(model: Any, out_dir: Path) -> None:
    model.save_pretrained(out_dir)


def load(base_model: Any, out_dir: Path) -> Any:
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, out_dir)
