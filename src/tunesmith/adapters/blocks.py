"""Finding the transformer blocks and the task head of a model, whatever its family calls them."""

from __future__ import annotations

from typing import Any

HEAD_NAMES = ("classifier", "score")


def unwrap(model: Any) -> Any:
    """The transformers model inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def transformer_blocks(model: Any) -> Any:
    """The ``ModuleList`` of blocks (``layers`` in Llama/Qwen/Mistral, ``h`` in GPT-2, ``encoder.layer`` in BERT)."""
    backbone = unwrap(model).base_model
    for name in ("layers", "h", "blocks"):
        if hasattr(backbone, name):
            return getattr(backbone, name)
    encoder = getattr(backbone, "encoder", None)
    if encoder is not None and hasattr(encoder, "layer"):
        return encoder.layer
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")


def task_head(model: Any) -> Any | None:
    """The classification head (``classifier`` in BERT, ``score`` in causal LMs), if the model has one."""
    hf = unwrap(model)
    for name in HEAD_NAMES:
        if hasattr(hf, name):
            return getattr(hf, name)
    return None


def is_classifier(model: Any) -> bool:
    return type(unwrap(model)).__name__.endswith("ForSequenceClassification")


def peft_task_type(model: Any) -> str:
    """PEFT's task type for ``model``: ``SEQ_CLS`` (which also trains the new head) or ``CAUSAL_LM``."""
    return "SEQ_CLS" if is_classifier(model) else "CAUSAL_LM"


def matches_name(name: str, targets: list[str]) -> bool:
    """PEFT's rule: a module matches a target that equals its full name or ends it after a dot."""
    return any(name == t or name.endswith("." + t) for t in targets)
