"""Classification recipe: labelled text -> a new head on an encoder or causal LM -> adapter or model.

The embedded MiniLM encoder (``model.base: all-minilm-l6-v2``) is the usual choice; a causal LM works too
(it classifies from its last token). Balanced class weights (``train.class_weights``) counter skew.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import prepared_kind
from tunesmith.errors import ConfigError
from tunesmith.models.load import load_configured_classifier
from tunesmith.rundir import RunDir, read_jsonl
from tunesmith.train import lifecycle
from tunesmith.train.batching import collate_classify
from tunesmith.train.causal import class_weights
from tunesmith.train.classify.loss import ClassifierLoss


def encode_rows(
    rows: list[dict[str, Any]], tokenizer: Any, labels: list[str], max_length: int, weights: dict[str, float] | None
) -> list[dict[str, Any]]:
    """Token ids of each text (truncated to ``max_length``) with its class index and optional weight."""
    index = {lab: i for i, lab in enumerate(labels)}
    out = []
    for row in rows:
        ids = tokenizer(row["text"], truncation=True, max_length=max_length)["input_ids"]
        example: dict[str, Any] = {"input_ids": list(ids), "label": index[row["label"]]}
        if weights is not None:
            example["weight"] = weights[row["label"]]
        out.append(example)
    return out


def train_classify(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    """Train a classifier on the prepared classification splits of ``run``."""
    tc = config.train
    if (kind := prepared_kind(run)) != "classification":
        raise ConfigError(f"train.objective=classify needs classification data (the data is '{kind}').")
    if tc.packing:
        raise ConfigError("train.packing applies to causal-LM objectives; set it to false for classify.")
    if config.data.replay is not None:
        raise ConfigError("data.replay mixes general text into causal-LM training; it does not apply to classify.")
    precision = lifecycle.start(config, run)
    labels = json.loads(run.manifest.read_text())["labels"]
    task = lifecycle.loading(progress, config.model.base)
    model, tokenizer = load_configured_classifier(config.model, labels)
    if progress:
        progress.update(task, completed=1)
    train_rows = read_jsonl(run.split("train"))
    val_rows = read_jsonl(run.split("validation")) if run.split("validation").is_file() else []
    weights = class_weights(train_rows) if tc.class_weights == "balanced" else None
    train_ex = encode_rows(train_rows, tokenizer, labels, tc.max_length, weights)
    val_ex = encode_rows(val_rows, tokenizer, labels, tc.max_length, weights)

    collate = partial(collate_classify, pad_id=tokenizer.pad_token_id)
    return lifecycle.train(
        config,
        run,
        model,
        tokenizer,
        ClassifierLoss,
        train_ex,
        val_ex,
        precision,
        resume,
        progress,
        collate_fn=collate,
        labels=labels,
        class_weights=weights,
    )
