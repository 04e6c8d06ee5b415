"""tunesmith: from raw text in any language to a fine-tuned, evaluated, deployed and monitored model.

The public API is imported lazily so that ``import tunesmith`` stays light: it loads neither torch,
transformers, FastAPI, bitsandbytes nor gguf until a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_config": ("tunesmith.config.load", "load_config"),
    "RunConfig": ("tunesmith.config.schema", "RunConfig"),
    "prepare_data": ("tunesmith.data.prepare", "prepare_data"),
    "load_model": ("tunesmith.models.load", "load_model"),
    "train": ("tunesmith.train.recipe", "train"),
    "evaluate": ("tunesmith.eval.run", "evaluate"),
    "run": ("tunesmith.pipeline", "run"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'tunesmith' has no attribute {name!r}")
