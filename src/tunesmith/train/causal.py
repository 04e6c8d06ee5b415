"""Shared steps of the causal-LM objectives (sft, cpt): tokens -> method -> engine -> adapter or model.

Plain functions that the objectives' thin recipes call; no base class to inherit.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from tunesmith.config.schema import RunConfig
from tunesmith.data.format import chunk_example, tokenize_example
from tunesmith.errors import ConfigError, TrainingError
from tunesmith.models.load import load_configured
from tunesmith.rundir import RunDir, read_jsonl, write_json
from tunesmith.train import distributed, lifecycle
from tunesmith.train.packing import use_segment_attention
from tunesmith.train.sft.loss import CausalLMLoss


def tokenize_split(
    rows: list[dict[str, Any]],
    tokenizer: Any,
    loss_on: str,
    max_length: int,
    split: str,
    rejects: Path,
    weights: dict[str, float] | None = None,
    progress: Any = None,
    chunk_long: bool = False,
) -> list[dict[str, Any]]:
    """Tokenise rows. Rows over ``max_length`` tokens are cut into consecutive chunks (``chunk_long``, raw
    text) or appended to rejects.jsonl with their length (supervised rows, whose answer would be lost)."""
    kept, too_long = [], []
    task = progress.add_task(f"tokenising {split}", total=len(rows)) if progress else None
    for i, row in enumerate(rows):
        if progress and i % 256 == 0:
            progress.update(task, completed=i)
        ex = tokenize_example(row, tokenizer, loss_on)
        if chunk_long and len(ex["input_ids"]) > max_length:
            kept += chunk_example(ex, max_length)
            continue
        if len(ex["input_ids"]) > max_length:
            too_long.append(length_reject(row, split, len(ex["input_ids"]), max_length))
            continue
        if weights is not None:
            ex["weight"] = weights.get(row.get("label", ""), 1.0)  # type: ignore[assignment]
        kept.append(ex)
    if progress:
        progress.update(task, completed=len(rows))
    append_rejects(rejects, too_long)
    return kept


def length_reject(row: dict[str, Any], split: str, length: int, max_length: int) -> dict[str, Any]:
    """A rejects.jsonl entry for a row longer than ``train.max_length`` tokens (file, line, length, the row)."""
    src = row.get("source") or {}
    return {
        "file": src.get("file"),
        "line": src.get("line"),
        "field": None,
        "split": split,
        "reason": f"{length} tokens > train.max_length={max_length}",
        "row": {k: v for k, v in row.items() if k != "source"},
    }


def append_rejects(path: Path, rejects: list[dict[str, Any]]) -> None:
    """Append to the run's rejects.jsonl (the main process only, so nothing is written twice)."""
    if rejects and distributed.is_main():
        with path.open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects)


def load_causal(config: RunConfig, progress: Any = None) -> tuple[Any, Any]:
    """The base causal LM (KV cache off for training) and its tokenizer, with a progress line for the load."""
    task = lifecycle.loading(progress, config.model.base)
    model, tokenizer = load_configured(config.model)
    model.config.use_cache = False
    if progress:
        progress.update(task, completed=1)
    return model, tokenizer


def class_weights(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Balanced weights ``N / (K * n_c)`` per label (they average 1 over the training rows)."""
    counts: dict[str, int] = {}
    labelled = [r for r in rows if "label" in r]  # replay rows carry no label and keep weight 1
    for r in labelled:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    return {label: len(labelled) / (len(counts) * n) for label, n in counts.items()}


def row_texts(row: dict[str, Any]) -> list[str]:
    """The texts a causal-LM row trains on: chat turns, prompt and completion, or raw text."""
    if "messages" in row:
        turns = row["messages"]
    elif "prompt" in row:
        prompt = row["prompt"]
        turns = [{"content": prompt}] if isinstance(prompt, str) else prompt
        turns = [*turns, {"content": row["completion"]}]
    else:
        turns = [{"content": row.get("text", "")}]
    return [t["content"] for t in turns if isinstance(t.get("content"), str)]


def _texts_and_languages(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    pairs = [(t, r.get("detected", {}).get("language", "")) for r in rows for t in row_texts(r)]
    return [t for t, _ in pairs], [lang for _, lang in pairs]


def extend_vocabulary(
    config: RunConfig, run: RunDir, model: Any, tokenizer: Any, train_rows: list[dict[str, Any]], val_rows: list
) -> list[int]:
    """Learn ``model.new_tokens`` words from the training split, add them (see :mod:`tunesmith.models.vocab`),
    and write ``data/vocab.json``: the tokens, their ids, and tokens per word before and after, overall and
    per detected language, on the training split and on the validation split (text the tokens never saw)."""
    from tokenizers import Tokenizer

    from tunesmith.models import vocab

    texts = _texts_and_languages(train_rows)[0]
    try:
        tokens = vocab.learn_tokens(texts, tokenizer, config.model.new_tokens, config.model.new_tokens_min_count)
        before = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        ids = vocab.extend(model, tokenizer, tokens) if tokens else []
    except ValueError as exc:
        raise ConfigError(f"model.new_tokens: {exc}") from None
    if distributed.is_main():
        fertility = {}
        for split, rows in (("train", train_rows), ("validation", val_rows)):
            if rows:
                split_texts, split_languages = _texts_and_languages(rows)
                fertility[split] = vocab.fertility_change(split_texts, before, tokenizer, split_languages)
        entries = [
            {"token": t, "text": tokenizer.decode([i]), "id": i, "old_pieces": len(before.model.tokenize(t))}
            for t, i in zip(tokens, ids, strict=True)
        ]
        write_json(
            run.vocab,
            {
                "requested": config.model.new_tokens,
                "min_count": config.model.new_tokens_min_count,
                "added": len(ids),
                "tokens": entries,
                "fertility": fertility,
            },
        )
    return ids


def _train_rows(config: RunConfig, model: Any, ids: list[int]) -> dict[str, Any]:
    """The LoRA/DoRA option that trains the new embedding rows (full tuning trains every row anyway)."""
    if not ids or config.method.name not in ("lora", "dora"):
        return {}
    from tunesmith.models.vocab import trainable_token_targets

    return {"trainable_token_indices": trainable_token_targets(model, ids)}


def train_causal_lm(
    config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None, chunk_long: bool = False
) -> dict[str, Any]:
    """Fine-tune ``config.model.base`` with ``config.method`` on the prepared splits of ``run``."""
    tc = config.train
    precision = lifecycle.start(config, run)
    model, tokenizer = load_causal(config, progress)
    train_rows = read_jsonl(run.split("train"))
    val_rows = read_jsonl(run.split("validation")) if run.split("validation").is_file() else []
    new_ids = extend_vocabulary(config, run, model, tokenizer, train_rows, val_rows) if config.model.new_tokens else []
    vocab_summary: dict[str, Any] = {"new_tokens": len(new_ids)} if config.model.new_tokens else {}
    labelled = bool(train_rows) and "label" in train_rows[0]
    weights = class_weights(train_rows) if tc.class_weights == "balanced" and labelled else None
    tokenize = partial(
        tokenize_split,
        tokenizer=tokenizer,
        loss_on=tc.loss_on,
        max_length=tc.max_length,
        rejects=run.rejects,
        weights=weights,
        progress=progress,
        chunk_long=chunk_long,
    )
    train_ex, val_ex = tokenize(train_rows, split="train"), tokenize(val_rows, split="validation")
    if not train_ex:
        raise TrainingError(f"No training example fits train.max_length={tc.max_length}; see {run.rejects}.")

    if tc.packing:
        use_segment_attention(model)
    return lifecycle.train(
        config,
        run,
        model,
        tokenizer,
        CausalLMLoss,
        train_ex,
        val_ex,
        precision,
        resume,
        progress,
        method_options=_train_rows(config, model, new_ids),
        class_weights=weights,
        **vocab_summary,
    )
