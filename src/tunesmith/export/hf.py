"""``--to hf``: the merged model as a safetensors directory that stops where the tuned model stops.

The classic failure after merging (LLaMA-Factory #7454, unsloth #5386) is a model that never stops:
the tokenizer's ``eos_token`` is ``<|endoftext|>`` while the chat template closes each answer with
``<|im_end|>`` (or ``<|eot_id|>``, ``<end_of_turn>``), and plain ``generate`` / vLLM only stop on the
generation config's EOS list. So the generation config written here lists every id that ends an
answer: the tokenizer's EOS, the model's, and the chat template's end-of-turn token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.errors import ExportError
from tunesmith.rundir import atomic_directory

DTYPES = ("float32", "bfloat16", "float16")


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends an answer: tokenizer and model EOS, then the template's end of turn."""
    from tunesmith.eval.generate import stop_ids_and_strings

    ids, _ = stop_ids_and_strings(tokenizer, model, None)
    return ids


def generation_config(model: Any, tokenizer: Any) -> Any:
    """The model's generation config with the full list of stop ids and a pad id."""
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    config = GenerationConfig.from_dict(base.to_dict()) if base is not None else GenerationConfig()
    ids = stop_token_ids(model, tokenizer)
    if not ids:
        raise ExportError(
            "the tokenizer has no EOS token and its chat template no end-of-turn token: an exported model would "
            "never stop. Set eos_token in the tokenizer or use a chat template with an end-of-turn token."
        )
    config.eos_token_id = ids if len(ids) > 1 else ids[0]
    config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else ids[0]
    if tokenizer.bos_token_id is not None:
        config.bos_token_id = tokenizer.bos_token_id
    return config


def save_hf(model: Any, tokenizer: Any, out_dir: Path, dtype: str = "auto") -> dict[str, Any]:
    """Save ``model`` (merged) with tokenizer, chat template and stop-aware generation config, atomically.

    ``dtype`` ``auto`` keeps the base model's recorded dtype (SmolLM2: bfloat16), else one of :data:`DTYPES`.
    """
    import torch

    target = _dtype(model, dtype)
    model = model.to(getattr(torch, target))
    model.generation_config = generation_config(model, tokenizer)
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return {"dtype": target, "eos_token_id": model.generation_config.eos_token_id}


def _dtype(model: Any, dtype: str) -> str:
    if dtype == "auto":
        recorded = str(getattr(model.config, "dtype", None) or getattr(model.config, "torch_dtype", None) or "")
        recorded = recorded.removeprefix("torch.")
        return recorded if recorded in DTYPES else "float32"
    if dtype not in DTYPES:
        raise ExportError(f"--dtype {dtype}: choose auto or one of {', '.join(DTYPES)}.")
    return dtype


def save_classifier(tuned: Any, out_dir: Path, dtype: str = "auto") -> dict[str, Any]:
    """A classify or reward run's merged sequence classifier with its tokenizer and label names, atomically.

    ``AutoModelForSequenceClassification.from_pretrained(out_dir)`` (or a ``text-classification`` pipeline)
    loads it; ``config.id2label`` names the labels (a reward model has one output, ``reward``).
    """
    import torch

    target = _dtype(tuned.model, dtype)
    model = tuned.model.to(getattr(torch, target))
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tuned.tokenizer.save_pretrained(tmp)
    return {"dtype": target, "labels": [model.config.id2label[i] for i in sorted(model.config.id2label)]}
