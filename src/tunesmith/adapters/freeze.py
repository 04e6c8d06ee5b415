"""Freeze tuning: only the last N transformer blocks (and the final norm) train, plus the task head and any
modules named in ``modules``.

The classic "retrain the last layers": a classification head (``classifier``/``score``) always trains;
a causal LM's vocabulary head trains only with ``train_head`` (it is large and often tied to the input
embeddings).
"""

from __future__ import annotations

from typing import Any

from tunesmith.adapters import full
from tunesmith.adapters.blocks import matches_name, task_head, transformer_blocks, unwrap
from tunesmith.config.schema import FreezeMethod

SAVES_ADAPTER = False


def apply(model: Any, config: FreezeMethod) -> Any:
    for p in model.parameters():
        p.requires_grad_(False)
    blocks = transformer_blocks(model)
    if config.last_n_layers > len(blocks):
        raise ValueError(f"freeze: last_n_layers={config.last_n_layers} but the model has {len(blocks)} blocks")
    trainable = list(blocks)[len(blocks) - config.last_n_layers :]
    backbone = unwrap(model).base_model
    if config.last_n_layers:
        trainable.append(getattr(backbone, "norm", None))  # the final norm of decoder-only models
    trainable += named_modules(model, config.modules)
    head = task_head(model)
    trainable.append(head)
    if config.train_head and head is None:
        trainable.append(model.get_output_embeddings())
    for module in trainable:
        if module is not None:
            for p in module.parameters():
                p.requires_grad_(True)
    return model


def named_modules(model: Any, names: list[str]) -> list[Any]:
    """The modules whose dotted name equals or ends with one of ``names``; an unmatched name is an error."""
    found = []
    for wanted in names:
        matches = [m for n, m in model.named_modules() if matches_name(n, [wanted])]
        if not matches:
            raise ValueError(
                f"freeze: no module named '{wanted}' (or ending in '.{wanted}') in {type(model).__name__}"
            )
        found += matches
    return found


save = full.save
load = full.load
