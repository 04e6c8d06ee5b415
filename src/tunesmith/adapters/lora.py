"""LoRA (Hu et al. 2021, arXiv:2106.09685) through PEFT, so saved adapters load with plain ``peft``.

Options: rsLoRA scaling (alpha / sqrt(r)) and LoRA+ (the B matrices learn ``loraplus_ratio`` times faster;
the optimizer reads the ratio from :data:`LR_SCALE` on each parameter, see ``train.optim.param_groups``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tunesmith.adapters.blocks import peft_task_type, transformer_blocks
from tunesmith.config.schema import LoraMethod
from tunesmith.train.optim import LR_SCALE

SAVES_ADAPTER = True


def linear_names(model: Any) -> list[str]:
    """Short names of the linear layers inside the transformer blocks (what 'all-linear' means)."""
    names: set[str] = set()
    for block in transformer_blocks(model):
        for name, module in block.named_modules():
            if isinstance(module, torch.nn.Linear):
                names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def apply(model: Any, config: LoraMethod, **peft_options: Any) -> Any:
    """Wrap ``model`` with LoRA adapters; ``peft_options`` go to ``LoraConfig`` (``use_dora`` for DoRA)."""
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
        task_type=peft_task_type(model),
        bias="none",
        use_rslora=config.rslora,
        **peft_options,
    )
    peft_model = get_peft_model(model, peft_config)
    skip_input_casts(peft_model)
    if config.loraplus_ratio is not None:
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                setattr(p, LR_SCALE, config.loraplus_ratio)
    return peft_model


def skip_input_casts(model: Any) -> int:
    """Stop PEFT casting each LoRA layer's input to the adapter's fp32 before the adapter runs.

    Under bf16 autocast the cast is undone at once (autocast feeds the adapter's matmuls bf16), so it only
    copied activations twice per adapted layer: a SmolLM2 LoRA step on the CPU runs 3-7% faster without it
    (A/B without the profiler), with bit-identical losses and gradients (tested). Without
    autocast, inputs already have the adapter's dtype (fp32 training) and nothing changes. Returns how
    many layers were switched.
    """
    switched = 0
    for module in model.modules():
        if hasattr(module, "lora_A") and hasattr(module, "_cast_input_dtype"):
            module.cast_input_dtype_enabled = False
            switched += 1
    return switched


def save(model: Any, out_dir: Path) -> None:
    """Save the adapter. With trainable token rows (vocabulary extension) the adapter already holds those rows,
    so PEFT is told not to add a copy of the whole resized embedding matrix (113 MB for SmolLM2)."""
    trains_tokens = any(getattr(c, "trainable_token_indices", None) for c in model.peft_config.values())
    model.save_pretrained(out_dir, **({"save_embedding_layers": False} if trains_tokens else {}))


def load(base_model: Any, out_dir: Path) -> Any:
    from peft import PeftModel

    model = PeftModel.from_pretrained(base_model, out_dir)
    skip_input_casts(model)
    return model
