"""Evaluation of a trained classification head, beside the majority-class baseline."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import torch

from tunesmith.eval.metrics import classification_metrics
from tunesmith.eval.summary import group_keys, label_summary
from tunesmith.train.batching import collate_classify, to_device, token_budget_batches
from tunesmith.train.classify.recipe import encode_rows


@torch.no_grad()
def predict_classes(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    labels: list[str],
    max_length: int,
    batch_tokens: int = 8192,
    progress: Any = None,
) -> list[dict[str, float]]:
    """Log-probabilities of every label for every row, from the model's head."""
    model.eval()
    examples = encode_rows(rows, tokenizer, labels, max_length, None)
    out: list[dict[str, float]] = [{} for _ in rows]
    task = progress.add_task("eval: tuned classifier", total=len(rows)) if progress else None
    for idx in token_budget_batches([len(e["input_ids"]) for e in examples], batch_tokens, 64):
        batch = to_device(collate_classify([examples[i] for i in idx], tokenizer.pad_token_id), model)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        for row, i in enumerate(idx):
            out[i] = {lab: float(logp[row, j]) for j, lab in enumerate(labels)}
        if progress:
            progress.advance(task, len(idx))
    return out


def evaluate_classifier(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    train_rows: list[dict[str, Any]],
    labels: list[str],
    groups: list[str],
    max_length: int,
    batch_tokens: int,
    progress: Any = None,
    min_group_rows: int = 30,
) -> dict[str, dict[str, Any]]:
    """Metrics of the majority-class baseline (from train) and of the tuned classifier on ``rows``."""
    gold = [r["label"] for r in rows]
    keys = group_keys(rows, groups)
    majority = Counter(r["label"] for r in train_rows).most_common(1)[0][0]
    results: dict[str, dict[str, Any]] = {}
    base_pred = [majority] * len(rows)
    results["majority class"] = {
        **classification_metrics(gold, base_pred, labels),
        **label_summary(gold, base_pred, rows, labels, keys, min_group_rows),
        "predictions": base_pred,
        "scores": [{lab: float(lab == majority) for lab in labels} for _ in rows],
    }
    t0 = time.perf_counter()
    scores = predict_classes(model, tokenizer, rows, labels, max_length, batch_tokens, progress)
    pred = [max(s, key=s.__getitem__) for s in scores]
    results["tuned"] = {
        **classification_metrics(gold, pred, labels),
        **label_summary(gold, pred, rows, labels, keys, min_group_rows),
        "predictions": pred,
        "scores": scores,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return results
