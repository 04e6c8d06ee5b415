"""Optimizer and learning-rate schedule."""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import torch

from tunesmith.config.schema import TrainConfig
from tunesmith.errors import ConfigError

LR_SCALE = "tunesmith_lr_scale"  # a parameter attribute: its learning rate is train.lr times this

log = logging.getLogger(__name__)


def param_groups(model: torch.nn.Module, weight_decay: float, lr: float) -> list[dict[str, Any]]:
    """Trainable parameters grouped so that weight decay never touches norms, biases or other 1-D tensors,
    and a parameter tagged with a learning-rate scale (LoRA+'s B matrices) gets ``lr`` times its scale."""
    groups: dict[tuple[bool, float], list[torch.nn.Parameter]] = {}
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (p.ndim >= 2, float(getattr(p, LR_SCALE, 1.0)))
        groups.setdefault(key, []).append(p)
    if not groups:
        return [{"params": [], "weight_decay": weight_decay, "lr": lr}]
    return [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr": lr * scale}
        for (decay, scale), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))
    ]


def bitsandbytes(purpose: str) -> Any:
    """Import bitsandbytes or say, in one paragraph, how to get it."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise ConfigError(
            f"{purpose} needs bitsandbytes, which is not installed: `pip install 'tunesmith[gpu]'` "
            "(or `pip install bitsandbytes`; it also runs on CPU)."
        ) from None
    return bnb


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters (torch's, or bitsandbytes' 8-bit / paged variants).

    bitsandbytes keeps tensors under ``min_8bit_size`` elements (4096) in 32-bit state, as its docs advise;
    paged variants run unpaged on CPU (bitsandbytes falls back) and we log that.
    """
    groups = param_groups(model, config.weight_decay, config.lr)
    if not any(g["params"] for g in groups):
        raise ValueError("no trainable parameters: the tuning method froze everything")
    kwargs = {"lr": config.lr, "betas": (0.9, 0.999), "eps": 1e-8}
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, **kwargs)  # type: ignore[arg-type]
    bnb = bitsandbytes(f"train.optimizer={config.optimizer}")
    cls = {
        "adamw8bit": bnb.optim.AdamW8bit,
        "paged_adamw": bnb.optim.PagedAdamW,
        "paged_adamw8bit": bnb.optim.PagedAdamW8bit,
    }[config.optimizer]
    if config.optimizer.startswith("paged") and not torch.cuda.is_available():
        log.warning("%s: paging needs CUDA; on this machine the optimizer state is not paged", config.optimizer)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Paged optimizers are not supported on CPU")
        return cls(groups, **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> Any:
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[config.scheduler]
    warmup = math.ceil(config.warmup_ratio * total_steps)
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)
