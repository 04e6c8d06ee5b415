"""Free-generation scoring of answers: each model writes its answers, scored against the references.

For instruction, prompt-completion and chat data the held-out loss says how likely the reference is; what a
user sees is the model's own answer, so with ``eval.generate`` every model also answers the first
``eval.generate_rows`` test prompts greedily (KV cache, batched) and is scored by chrF, chrF++, BLEU
(sacrebleu, signatures recorded), exact match and length ratio, and the tuned model is compared with each
baseline by a paired permutation test on sentence chrF.
"""

from __future__ import annotations

from typing import Any

from tunesmith.config.schema import RunConfig


def answer_rows(rows: list[dict[str, Any]], config: RunConfig) -> list[dict[str, Any]]:
    """The rows that get generated answers: those with a prompt and a reference, at most ``generate_rows``."""
    usable = [r for r in rows if "prompt" in r and isinstance(r.get("completion"), str)]
    return usable[: config.eval.generate_rows]


def score_answers(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], config: RunConfig, autocast: bool, progress: Any, name: str
) -> dict[str, Any]:
    """Generate answers for ``rows`` and score them; ``answers`` and ``row_chrf`` are kept for the paired test."""
    from tunesmith.eval.textmetrics import generation_metrics, row_chrf

    prompts = [r["prompt"] for r in rows]
    if hasattr(model, "tunesmith_fewshot"):
        prompts = model.tunesmith_fewshot.messages(prompts)
    answers = write_answers(model, tokenizer, prompts, config, autocast, progress, f"generate: {name}")
    refs = [r["completion"] for r in rows]
    return {**generation_metrics(answers, refs), "answers": answers, "row_chrf": row_chrf(answers, refs)}


def write_answers(
    model: Any, tokenizer: Any, prompts: list[Any], config: RunConfig, autocast: bool, progress: Any, what: str
) -> list[str]:
    """Greedy answers with the evaluation's settings (``eval.max_new_tokens``), for scoring or label parsing."""
    from tunesmith.eval.generate import generate

    return generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=config.eval.max_new_tokens,
        autocast=autocast,
        progress=progress,
        description=what,
    )


def paired_chrf(generation: dict[str, dict[str, Any]], tuned: str) -> dict[str, Any]:
    """The tuned model's sentence chrF against each other model's on the same rows (paired permutation)."""
    from tunesmith.eval.stats import paired_permutation

    out: dict[str, Any] = {}
    for name, other in generation.items():
        if name != tuned and tuned in generation:
            test = paired_permutation(generation[tuned]["row_chrf"], other["row_chrf"])
            out[f"{tuned} vs {name}"] = {"chrf": {"metric": "sentence chrF", **test}}
    return out
