"""What a report says about each model beyond its point scores: intervals, groups, and paired tests.

Every headline metric gets a 95% bootstrap interval; every metric is broken down by the user's group
columns and by the data stage's annotations (detected language, script, code-mixing bin), with the gap
between the best and the worst group and small groups flagged; and the tuned model is compared with each
baseline on the same rows by a paired bootstrap (macro-F1) and McNemar's test (accuracy).
"""

from __future__ import annotations

from typing import Any

from tunesmith.eval.groups import breakdown, breakdown_scores, group_gap, row_groups
from tunesmith.eval.stats import (
    classification_intervals,
    encode_labels,
    f1_from_codes,
    mcnemar,
    paired_bootstrap,
    paired_permutation,
)

DETECTED = ("language", "script", "cmi")


def group_keys(rows: list[dict[str, Any]], configured: list[str]) -> list[str]:
    """The configured group columns, then the detected annotations that vary over these rows."""
    keys = list(configured)
    if "leak" not in keys and any("leak" in (r.get("groups") or {}) for r in rows):  # split.mark_leaks
        keys.append("leak")
    for key in DETECTED:
        if key not in keys and any("detected" in r for r in rows):
            values = {row_groups(r, [key])[key] for r in rows}
            if len(values) > 1:
                keys.append(key)
    return keys


def label_summary(
    gold: list[str], pred: list[str], rows: list[dict[str, Any]], labels: list[str], keys: list[str], min_rows: int
) -> dict[str, Any]:
    """Intervals of the headline metrics, the per-group breakdown and the best-worst gap per group key."""
    groups = breakdown(gold, pred, rows, keys, labels, min_rows=min_rows)
    return {
        "ci": classification_intervals(gold, pred, labels),
        "groups": groups,
        "group_gap": group_gap(groups, metric="macro_f1"),
    }


def paired_tests(gold: list[str], models: dict[str, dict[str, Any]], labels: list[str], tuned: str) -> dict[str, Any]:
    """The tuned model against each other model on the same rows: macro-F1 delta with interval and p, McNemar."""
    out: dict[str, Any] = {}
    for t in (tuned,):
        for b in (name for name in models if name != tuned):
            pa, pb = models[t]["predictions"], models[b]["predictions"]
            codes_gold, codes_a = encode_labels(gold, pa, labels)
            _, codes_b = encode_labels(gold, pb, labels)

            def macro(g: Any, p: Any, k: int = len(labels)) -> Any:
                return f1_from_codes(g, p, k, "macro")

            f1 = paired_bootstrap(macro, codes_gold, codes_a, codes_b, vectorised=True)
            out[f"{t} vs {b}"] = {"macro_f1": {"metric": "macro_f1", **f1}, "accuracy": mcnemar(gold, pa, pb)}
    return out


def paired_losses(models: dict[str, dict[str, Any]], tuned: str) -> dict[str, Any]:
    """The tuned model against each other model on per-example NLL (nats per token of each example),
    by a paired permutation test; only between models that scored the same tokens (same tokenizer)."""
    out: dict[str, Any] = {}
    mine = models[tuned].get("per_example")
    for name, other in models.items():
        theirs = other.get("per_example")
        if name == tuned or not mine or not theirs or [n for _, n in mine] != [n for _, n in theirs]:
            continue
        keep = [i for i, (_, n) in enumerate(mine) if n]
        a = [mine[i][0] / mine[i][1] for i in keep]
        b = [theirs[i][0] / theirs[i][1] for i in keep]
        out[f"{tuned} vs {name}"] = {"loss": {"metric": "loss per token, per example", **paired_permutation(a, b)}}
    return out


def loss_summary(per_example: list[list[float]], rows: list[dict[str, Any]], keys: list[str], min_rows: int) -> dict:
    """Loss per token by group (token-weighted, with intervals) and the best-worst gap; ``per_example`` holds one
    ``[nll_sum, tokens]`` per row (a document cut into pieces is summed back first)."""
    if len(per_example) != len(rows) or not keys:
        return {}
    kept = [(i, s / n, n) for i, (s, n) in enumerate(per_example) if n]
    groups = breakdown_scores(
        [v for _, v, _ in kept], [rows[i] for i, _, _ in kept], keys, min_rows=min_rows, weights=[n for *_, n in kept]
    )
    return {"groups": groups, "group_gap": group_gap(groups, metric="score", higher_is_better=False)}
