"""Full fine-tuning: every parameter trains; the whole model is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.config.schema import FullMethod

SAVES_ADAPTER = False


def apply(model: Any, config: FullMethod) -> Any:
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def save(model: Any, out_dir: Path) -> None:
    model.save_pretrained(out_dir)


def load(base_model: Any, out_dir: Path) -> Any:
    """The saved model, as the same class as ``base_model`` (causal LM or sequence classifier)."""
    return type(base_model).from_pretrained(out_dir, attn_implementation="sdpa").eval()
