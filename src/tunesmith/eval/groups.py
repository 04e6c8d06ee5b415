"""Scores broken down by language, script, code-mixing level and the data's own group columns (pure functions).

A single corpus-level number hides the failure that matters most for low-resource work: a model that is good
on the majority language or dialect and poor on the minority one, or that collapses on code-mixed rows.
Every metric is therefore repeated per group, with a bootstrap interval, and the gap between the best and the
worst group is reported. Small groups are flagged (``few_rows``) and left out of the gap instead of being
read as if their scores were as firm as the others': with 30 rows the 95% interval of an accuracy near 0.5 is
about ±0.18 wide, the size of most effects a report would want to claim.

Group values come from the prepared rows: ``row["groups"]`` holds the columns named in ``data.groups``, and
``row["detected"]`` the data stage's annotations (``language``, ``script``, ``cmi``; see
:mod:`tunesmith.data.annotate`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.eval.metrics import classification_metrics
from tunesmith.eval.stats import Column, bootstrap_ci, classification_intervals, mean_score, weighted_mean

CMI_BINS = ("0", "0-10", "10-20", "20-30", "30+")
DETECTED_PREFIX = "detected."
_DETECTED = ("language", "script", "cmi")


def cmi_bin(cmi: float | None) -> str:
    """The code-mixing level of a row from its CMI (Das and Gambäck 2014): one of :data:`CMI_BINS`.

    ``"0"`` is a row the word-level identifier found monolingual, and usually the bulk of a corpus, so it gets
    its own bin rather than sharing one with lightly mixed rows. ``"0-10"`` is typically a borrowed word or a
    named entity in another language; ``"10-20"`` and ``"20-30"`` are real intra-sentential mixing. With two
    languages CMI cannot exceed 50, and above 30 the minority language holds over 30% of the words, so rows
    this mixed are rare and pooled as ``"30+"`` to keep the bin large enough to score. Bins are closed on the
    left, like the data card's histogram (:func:`tunesmith.data.codemix.cmi_histogram`).

    Args:
        cmi: The row's code-mixing index in ``[0, 100]``, or ``None`` when the row was not annotated.

    Returns:
        The bin label, or ``""`` for ``None``.
    """
    if cmi is None:
        return ""
    if not 0.0 <= cmi <= 100.0:
        raise ValueError(f"a CMI lies in [0, 100], got {cmi}")
    if cmi == 0.0:
        return "0"
    return CMI_BINS[min(int(cmi // 10) + 1, len(CMI_BINS) - 1)]


def _detected(detected: dict[str, Any], name: str) -> str:
    if name == "cmi":
        return cmi_bin(detected.get("cmi"))
    value = detected.get(name)
    return "" if value is None else str(value)


def row_groups(row: dict[str, Any], keys: Sequence[str]) -> dict[str, str]:
    """The row's value for each group key (``""`` where it has none).

    A key names a column of ``row["groups"]``; ``language``, ``script`` and ``cmi`` fall back to the data stage's
    ``row["detected"]`` when the data has no column of that name (a user-supplied language column is the
    better source: it is ground truth, the detected one a prediction), and ``cmi`` is binned with
    :func:`cmi_bin`. ``detected.language`` (``.script``, ``.cmi``) always reads the annotation, so a report can
    show both.
    """
    groups = row.get("groups") or {}
    detected = row.get("detected") or {}
    out: dict[str, str] = {}
    for key in keys:
        if key.startswith(DETECTED_PREFIX):
            out[key] = _detected(detected, key[len(DETECTED_PREFIX) :])
        elif key in groups:
            out[key] = "" if groups[key] is None else str(groups[key])
        elif key in _DETECTED:
            out[key] = _detected(detected, key)
        else:
            out[key] = ""
    return out


def _indices(rows: Sequence[dict[str, Any]], key: str) -> dict[str, list[int]]:
    """Row indices per value of ``key``, values sorted (CMI bins in their natural order)."""
    idx: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        idx[row_groups(row, [key])[key]].append(i)
    order = {b: i for i, b in enumerate(CMI_BINS)}
    return dict(sorted(idx.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def breakdown(
    gold: Sequence[str],
    pred: Sequence[str],
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    labels: list[str],
    min_rows: int = 30,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Classification metrics with bootstrap intervals per value of each group key.

    Args:
        gold: Gold label per row.
        pred: Predicted label per row.
        rows: The prepared rows, aligned with ``gold`` (their ``groups`` and ``detected`` are read).
        keys: Group keys, as :func:`row_groups` reads them.
        labels: The label set, as for :func:`tunesmith.eval.metrics.classification_metrics`.
        min_rows: Groups with fewer rows are flagged ``few_rows`` (see the module docstring for why 30).
        n_resamples: Bootstrap resamples per group.
        alpha: One minus the intervals' coverage.
        seed: Resampling seed.

    Returns:
        ``{key: {value: {**classification_metrics, "n", "few_rows": bool, "ci": {"accuracy": [low, high],
        "macro_f1": [...], "weighted_f1": [...]}}}}``, JSON-serialisable.
    """
    if not len(gold) == len(pred) == len(rows):
        raise ValueError(f"gold, pred and rows differ in length: {len(gold)}, {len(pred)}, {len(rows)}")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys:
        out[key] = {}
        for value, ix in _indices(rows, key).items():
            g, p = [gold[i] for i in ix], [pred[i] for i in ix]
            out[key][value] = {
                **classification_metrics(g, p, labels),
                "n": len(ix),
                "few_rows": len(ix) < min_rows,
                "ci": classification_intervals(g, p, labels, n_resamples=n_resamples, alpha=alpha, seed=seed),
            }
    return out


def breakdown_scores(
    values: Column,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    reduce: Callable[..., Any] | None = None,
    min_rows: int = 30,
    weights: Column | None = None,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """A per-row score (loss, log-likelihood, sentence chrF...) reduced per group, with a bootstrap interval.

    Args:
        values: One score per row.
        rows: The prepared rows, aligned with ``values``.
        keys: Group keys, as :func:`row_groups` reads them.
        reduce: ``reduce(values)`` (or ``reduce(values, weights)``) on a group's rows, called on lists once per
            resample. ``None``: the mean (:func:`~tunesmith.eval.stats.mean_score`), or with ``weights`` the
            weighted mean (:func:`~tunesmith.eval.stats.weighted_mean`), both vectorised.
        min_rows: Groups with fewer rows are flagged ``few_rows``.
        weights: Optional per-row weights passed with the values, e.g. token counts, so that a group's mean
            loss is token-weighted like the corpus perplexity.
        n_resamples: Bootstrap resamples per group.
        alpha: One minus the intervals' coverage.
        seed: Resampling seed.

    Returns:
        ``{key: {value: {"score", "n", "few_rows": bool, "ci": [low, high]}}}``, JSON-serialisable; pass
        ``metric="score"`` to :func:`group_gap`.
    """
    if len(values) != len(rows) or (weights is not None and len(weights) != len(rows)):
        raise ValueError("values, weights and rows must be aligned")
    vectorised = reduce is None
    fn = reduce or (mean_score if weights is None else weighted_mean)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys:
        out[key] = {}
        for value, ix in _indices(rows, key).items():
            columns = [[values[i] for i in ix]] + ([] if weights is None else [[weights[i] for i in ix]])
            score, low, high = bootstrap_ci(
                fn, *columns, n_resamples=n_resamples, alpha=alpha, seed=seed, vectorised=vectorised
            )
            out[key][value] = {"score": score, "n": len(ix), "few_rows": len(ix) < min_rows, "ci": [low, high]}
    return out


def group_gap(
    breakdown: dict[str, dict[str, dict[str, Any]]], metric: str = "macro_f1", higher_is_better: bool = True
) -> dict[str, dict[str, Any]]:
    """The best and the worst group of each key by ``metric``, and the gap between them.

    Groups flagged ``few_rows`` (or without a value for ``metric``) are left out: their scores are too noisy
    to name a worst group by. A key with fewer than two groups left has ``None`` in every field.

    Args:
        breakdown: The output of :func:`breakdown` or :func:`breakdown_scores`.
        metric: The field compared: ``"macro_f1"``, ``"accuracy"``..., or ``"score"`` for
            :func:`breakdown_scores`.
        higher_is_better: ``False`` for losses and perplexities.

    Returns:
        ``{key: {"best", "worst" (group values), "best_value", "worst_value", "gap" (>= 0), "compared" (groups
        compared), "ignored" (few-row groups left out)}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, groups in breakdown.items():
        scored = {v: m[metric] for v, m in groups.items() if not m.get("few_rows") and m.get(metric) is not None}
        ignored = sorted(v for v, m in groups.items() if m.get("few_rows"))
        entry: dict[str, Any] = dict.fromkeys(("best", "worst", "best_value", "worst_value", "gap"))
        if len(scored) >= 2:
            ranked = sorted(scored, key=lambda v: scored[v], reverse=higher_is_better)
            best, worst = ranked[0], ranked[-1]
            entry = {
                "best": best,
                "worst": worst,
                "best_value": scored[best],
                "worst_value": scored[worst],
                "gap": abs(scored[best] - scored[worst]),
            }
        out[key] = {**entry, "compared": len(scored), "ignored": ignored}
    return out
