"""Finding the transformer blocks of a model, whatever its family calls them."""

from __future__ import annotations

from typing import Any


def transformer_blocks(model: Any) -> Any:
    """The ``ModuleList`` of blocks (``layers`` in Llama/Qwen/Mistral, ``h`` in GPT-2, ...)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else base
    for name in ("layers", "h", "blocks"):
        if hasattr(decoder, name):
            return getattr(decoder, name)
    encoder = getattr(decoder, "encoder", None)
    if encoder is not None and hasattr(encoder, "layer"):
        return encoder.layer
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")
