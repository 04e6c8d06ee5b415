"""Freeze tuning: only the last N transformer blocks (and the final norm, optionally the head) train."""

from __future__ import annotations

from typing import Any

from tunesmith.adapters import full
from tunesmith.adapters.blocks import transformer_blocks
from tunesmith.config.schema import FreezeMethod

SAVES_ADAPTER = False


def apply(model: Any, config: FreezeMethod) -> Any:
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = transformer_blocks(model)
    if config.last_n_layers > len(blocks):
        raise ValueError(f"freeze: last_n_layers={config.last_n_layers} but the model has {len(blocks)} blocks")
    for block in list(blocks)[-config.last_n_layers :]:
        for p in block.parameters():
            p.requires_grad_(True)
    norm = getattr(model.get_decoder(), "norm", None)
    if norm is not None:
        for p in norm.parameters():
            p.requires_grad_(True)
    if config.train_head:
        for p in model.get_output_embeddings().parameters():
            p.requires_grad_(True)
    return model


save = full.save
load = full.load
