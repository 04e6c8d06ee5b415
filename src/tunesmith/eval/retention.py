"""Catastrophic forgetting: what a fine-tuned causal LM keeps of the base model's general ability.

A retention suite is a folder with ``general_text.jsonl`` (``{"text"}`` rows: perplexity) and
``general_tasks.jsonl`` (``{"question", "options", "answer"}`` rows: multiple choice, each option scored by
its log-likelihood after the question, normalised by its length in characters as lm-evaluation-harness's
``acc_norm`` does, so short options are not favoured). Both are run on the base and on the tuned model;
the deltas are the forgetting score. The shipped suite (``eval/retention/``) is general English written
for tunesmith; users point ``eval.retention`` at their own folder for other languages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.errors import ConfigError, DataError

DEFAULT_SUITE = Path(__file__).parent / "retention"


def suite_dir(spec: str) -> Path:
    """``default`` or a folder holding the two suite files."""
    folder = DEFAULT_SUITE if spec == "default" else Path(spec)
    missing = [n for n in ("general_text.jsonl", "general_tasks.jsonl") if not (folder / n).is_file()]
    if missing:
        raise ConfigError(f"eval.retention: {folder} lacks {', '.join(missing)} (see {DEFAULT_SUITE / 'README.md'}).")
    return folder


def load_suite(folder: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The suite's texts and tasks, each task checked (a bad row names its file and line)."""
    texts = []
    for i, line in enumerate((folder / "general_text.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row.get("text"), str) or not row["text"].strip():
                raise DataError(f"{folder / 'general_text.jsonl'}:{i}: field 'text' must be non-empty text.")
            texts.append(row["text"])
    tasks = []
    for i, line in enumerate((folder / "general_tasks.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        options, answer = row.get("options"), row.get("answer")
        if not (isinstance(options, list) and len(options) >= 2 and isinstance(answer, int)):
            raise DataError(
                f"{folder / 'general_tasks.jsonl'}:{i}: needs 'question', 'options' (2 or more) and 'answer' "
                "(the 0-based index of the right option)."
            )
        if not 0 <= answer < len(options):
            raise DataError(f"{folder / 'general_tasks.jsonl'}:{i}: field 'answer' {answer} is not an option index.")
        tasks.append(row)
    return texts, tasks


def task_accuracy(model: Any, tokenizer: Any, tasks: list[dict[str, Any]], autocast: bool) -> dict[str, float]:
    """Share of questions whose right option has the highest length-normalised log-likelihood."""
    from tunesmith.eval.scoring import score_labels

    right = 0
    for task in tasks:
        scores = score_labels(model, tokenizer, [task["question"]], task["options"], autocast=autocast)[0]
        normed = {opt: scores[opt] / max(len(opt), 1) for opt in task["options"]}
        right += max(normed, key=normed.__getitem__) == task["options"][task["answer"]]
    return {"accuracy": right / max(len(tasks), 1), "questions": len(tasks)}


def measure(
    model: Any, tokenizer: Any, texts: list[str], tasks: list[dict[str, Any]], autocast: bool
) -> dict[str, Any]:
    """Perplexity on the suite's text and accuracy on its tasks, for one model."""
    from tunesmith.data.format import tokenize_example
    from tunesmith.eval.perplexity import held_out_loss

    examples = [tokenize_example({"text": t}, tokenizer, "all") for t in texts]
    ppl = held_out_loss(model, examples, tokenizer.pad_token_id, autocast=autocast)
    return {"perplexity": ppl["perplexity"], "loss": ppl["loss"], **task_accuracy(model, tokenizer, tasks, autocast)}


def forgetting(base: dict[str, Any], tuned: dict[str, Any], suite: str) -> dict[str, Any]:
    """The deltas (tuned minus base) and a one-line verdict: more perplexity or fewer right answers is forgetting."""
    delta = {
        "perplexity": tuned["perplexity"] - base["perplexity"],
        "perplexity_pct": 100 * (tuned["perplexity"] / base["perplexity"] - 1),
        "accuracy": tuned["accuracy"] - base["accuracy"],
    }
    verdict = (
        f"general-text perplexity {base['perplexity']:.2f} -> {tuned['perplexity']:.2f} "
        f"({delta['perplexity_pct']:+.1f}%), general questions {base['accuracy']:.1%} -> {tuned['accuracy']:.1%}"
    )
    return {"suite": suite, "base": base, "tuned": tuned, "delta": delta, "summary": verdict}
