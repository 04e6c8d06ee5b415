"""Classification metrics as pure functions of label lists."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def classification_metrics(gold: list[str], pred: list[str], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, weighted-F1, per-label precision/recall/F1 and the confusion matrix.

    Macro-F1 averages over every label in ``labels`` (a label never predicted and never gold counts 0),
    so a model that ignores a minority class is not flattered.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items, pred has {len(pred)}")
    if not gold:
        return {"n": 0, "accuracy": None, "macro_f1": None}
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": sum(g == q for g, q in zip(gold, pred, strict=True)) / len(gold),
        "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)),
        "per_label": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "confusion": {"labels": labels, "matrix": confusion_matrix(gold, pred, labels=labels).tolist()},
        "predicted_counts": {lab: pred.count(lab) for lab in labels},
    }


def by_group(
    gold: list[str], pred: list[str], groups: list[dict[str, str]], keys: list[str], labels: list[str]
) -> dict[str, dict[str, Any]]:
    """Metrics per value of each group key: ``{key: {value: metrics}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        idx: dict[str, list[int]] = defaultdict(list)
        for i, g in enumerate(groups):
            idx[g.get(key, "")].append(i)
        out[key] = {
            value: classification_metrics([gold[i] for i in ix], [pred[i] for i in ix], labels)
            for value, ix in sorted(idx.items())
        }
    return out
