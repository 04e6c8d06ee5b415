"""Uncertainty for evaluation scores: bootstrap intervals and paired significance tests (pure functions).

A test set of a few hundred rows, typical for a low-resource language, gives a macro-F1 whose sampling error
is often larger than the difference between two fine-tuning runs. Every headline number therefore carries a
percentile bootstrap interval (Efron and Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13), and two
systems scored on the same rows are compared with a paired test, which is far more sensitive than comparing
their separate intervals because both face the same hard and easy rows:

- :func:`paired_bootstrap` for any corpus-level metric (Koehn 2004, "Statistical Significance Tests for
  Machine Translation Evaluation", EMNLP);
- :func:`mcnemar` for accuracy, the exact test on the discordant pairs (McNemar 1947; Dietterich 1998,
  "Approximate Statistical Tests for Comparing Supervised Classification Learning Algorithms");
- :func:`paired_permutation` for per-row scores such as log-likelihood or sentence chrF (approximate
  randomisation: Noreen 1989; Riezler and Maxwell 2005; Dror et al. 2018, "The Hitchhiker's Guide to Testing
  Statistical Significance in NLP", ACL).

Metrics passed to the bootstrap are plain functions of columns. With ``vectorised=True`` a metric receives
arrays of shape ``(R, N)`` (``R`` resamples of ``N`` rows) and must reduce over the last axis to shape
``(R,)``: :func:`accuracy`, :func:`mean_score`, :func:`weighted_mean` and :func:`f1_from_codes` do, so a
1,000-resample interval costs a few numpy calls. Any other metric (sacrebleu's ``corpus_chrf``, say) is called
once per resample on Python lists of the resampled rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np

Metric = Callable[..., Any]
Column = Sequence[Any] | np.ndarray  # row-aligned: labels, predictions, per-row scores or codes
_CHUNK_ELEMENTS = 1 << 22  # resampled indices held at once: 32 MiB of int64, whatever the test set's size


def accuracy(gold: Any, pred: Any) -> Any:
    """Share of rows where ``pred`` equals ``gold``, over the last axis (vectorised)."""
    return np.mean(np.asarray(gold) == np.asarray(pred), axis=-1)


def mean_score(values: Any) -> Any:
    """Mean of per-row values over the last axis (vectorised)."""
    return np.mean(np.asarray(values, dtype=float), axis=-1)


def weighted_mean(values: Any, weights: Any) -> Any:
    """``sum(w * v) / sum(w)`` over the last axis (vectorised).

    Corpus perplexity is ``exp`` of the token-weighted mean of per-row mean losses, not the mean of per-row
    perplexities, so per-row losses are resampled together with their token counts.
    """
    v, w = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    return np.sum(v * w, axis=-1) / np.sum(w, axis=-1)


def encode_labels(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes for :func:`accuracy` and :func:`f1_from_codes`: ``labels[i] -> i``.

    A string outside ``labels`` (an unparsed answer, say) gets its own code from ``len(labels)`` up, shared by
    gold and pred, so equality of codes is equality of strings; F1 folds all of them into "not a label".
    """
    index = {lab: i for i, lab in enumerate(labels)}
    for value in [*gold, *pred]:
        index.setdefault(value, len(index))
    return (
        np.fromiter((index[g] for g in gold), dtype=np.int64, count=len(gold)),
        np.fromiter((index[p] for p in pred), dtype=np.int64, count=len(pred)),
    )


def f1_from_codes(gold: Any, pred: Any, n_labels: int, average: str = "macro") -> Any:
    """Macro- or weighted-F1 from integer codes, equal to scikit-learn's ``f1_score(labels=..., zero_division=0)``.

    One ``np.bincount`` builds the ``(R, K+1, K+1)`` confusion matrices of all resamples at once (code ``K`` is
    "not one of the labels"); calling scikit-learn per resample would cost about a millisecond each. Per label,
    ``F1 = 2 TP / (support + predicted)`` and 0 where both are 0, as scikit-learn scores it.

    Args:
        gold: Codes from :func:`encode_labels`, shape ``(N,)`` or ``(R, N)``.
        pred: Codes of the same shape.
        n_labels: ``K``, the number of labels averaged over.
        average: ``"macro"`` (unweighted mean over the ``K`` labels, absent ones counting 0) or ``"weighted"``
            (weighted by gold support; 0 when no gold row has one of the labels).

    Returns:
        A float array of shape ``gold.shape[:-1]`` (a 0-d array for one set of rows).
    """
    g = np.minimum(np.asarray(gold, dtype=np.int64), n_labels)
    p = np.minimum(np.asarray(pred, dtype=np.int64), n_labels)
    lead, n = g.shape[:-1], g.shape[-1]
    k1 = n_labels + 1
    rows = int(np.prod(lead, dtype=np.int64))
    codes = (g * k1 + p).reshape(rows, n) + (np.arange(rows, dtype=np.int64) * k1 * k1)[:, None]
    cm = np.bincount(codes.ravel(), minlength=rows * k1 * k1).reshape(rows, k1, k1)
    tp = np.diagonal(cm, axis1=1, axis2=2)[:, :n_labels].astype(float)
    support = cm.sum(axis=2)[:, :n_labels].astype(float)
    predicted = cm.sum(axis=1)[:, :n_labels].astype(float)
    denom = support + predicted
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    if average == "macro":
        out = f1.mean(axis=1)
    elif average == "weighted":
        total = support.sum(axis=1)
        out = np.divide((f1 * support).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
    else:
        raise ValueError(f"average must be 'macro' or 'weighted', got {average!r}")
    return out.reshape(lead)


def _check(columns: Sequence[Column], n_resamples: int, alpha: float) -> int:
    if not columns:
        raise ValueError("bootstrap needs at least one column")
    n = len(columns[0])
    if any(len(c) != n for c in columns):
        raise ValueError(f"columns differ in length: {[len(c) for c in columns]}")
    if n == 0:
        raise ValueError("cannot bootstrap an empty test set")
    if n_resamples < 1 or not 0.0 < alpha < 1.0:
        raise ValueError(f"need n_resamples >= 1 and 0 < alpha < 1, got {n_resamples} and {alpha}")
    return n


def _index_chunks(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of every resample, ``(chunk, n)`` at a time; the same ``seed`` gives the same resamples."""
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, step):
        yield rng.integers(0, n, size=(min(step, n_resamples - start), n))


def _as_object_array(column: Column) -> np.ndarray:
    """A 1-d object array of the column's items (``np.asarray`` would turn a list of lists into a 2-d array)."""
    out = np.empty(len(column), dtype=object)
    for i, item in enumerate(column):
        out[i] = item
    return out


def resampled_stats(
    metric_fn: Metric, columns: Sequence[Column], n_resamples: int, seed: int, vectorised: bool
) -> np.ndarray:
    """``metric_fn`` on each of ``n_resamples`` resamples of the rows: a float array of shape ``(n_resamples,)``."""
    n = len(columns[0])
    out = []
    if vectorised:
        arrays = [np.asarray(c) for c in columns]
        for idx in _index_chunks(n, n_resamples, seed):
            out.append(np.asarray(metric_fn(*(a[idx] for a in arrays)), dtype=float).reshape(-1))
    else:
        objects = [_as_object_array(c) for c in columns]
        for idx in _index_chunks(n, n_resamples, seed):
            out.append(np.array([float(metric_fn(*(o[row].tolist() for o in objects))) for row in idx]))
    return np.concatenate(out)


def _point(metric_fn: Metric, columns: Sequence[Column], vectorised: bool) -> float:
    if vectorised:
        return float(metric_fn(*(np.asarray(c) for c in columns)))
    return float(metric_fn(*(list(c) for c in columns)))


def bootstrap_ci(
    metric_fn: Metric,
    *columns: Column,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    vectorised: bool = False,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval of a corpus-level metric, resampling rows with replacement.

    The percentile method (Efron and Tibshirani 1993, ch. 13) needs no variance formula, so it serves F1,
    chrF and perplexity alike. It under-covers on very small samples, which is why group breakdowns flag
    groups with few rows instead of trusting their intervals.

    Args:
        metric_fn: ``metric_fn(*columns) -> float``, e.g. ``accuracy(gold, pred)``.
        *columns: Row-aligned columns (gold labels, predictions, per-row scores...), all of length ``N``.
        n_resamples: Bootstrap resamples (1,000 is the usual choice for a 95% percentile interval).
        alpha: One minus the coverage: 0.05 for a 95% interval.
        seed: Seed of the resampling; the same seed draws the same resamples for every metric.
        vectorised: ``metric_fn`` takes ``(R, N)`` arrays and reduces over the last axis (see the module doc).

    Returns:
        ``(point, low, high)``: the metric on the full rows and the ``alpha/2`` and ``1 - alpha/2`` percentiles.
    """
    _check(columns, n_resamples, alpha)
    stats = resampled_stats(metric_fn, columns, n_resamples, seed, vectorised)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return _point(metric_fn, columns, vectorised), float(low), float(high)


def paired_bootstrap(
    metric_fn: Metric,
    gold: Column,
    pred_a: Column,
    pred_b: Column,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    vectorised: bool = False,
) -> dict[str, float]:
    """Paired bootstrap test of system A against system B on the same rows (Koehn 2004).

    Each resample draws one set of rows and scores both systems on it, so row difficulty cancels out. The
    two-sided p-value is twice the share of resamples where the difference does not have the sign it has
    overall (ties count against), with one pseudo-count so that a finite number of resamples never
    claims ``p = 0``; identical systems give ``p = 1``.

    Returns:
        ``{"delta": metric(A) - metric(B), "low", "high" (the interval of the delta), "p_value"}``.
    """
    _check([gold, pred_a, pred_b], n_resamples, alpha)
    a = resampled_stats(metric_fn, [gold, pred_a], n_resamples, seed, vectorised)
    b = resampled_stats(metric_fn, [gold, pred_b], n_resamples, seed, vectorised)  # same seed: same rows
    diff = a - b
    delta = _point(metric_fn, [gold, pred_a], vectorised) - _point(metric_fn, [gold, pred_b], vectorised)
    flips = int(np.sum(diff <= 0)) if delta > 0 else int(np.sum(diff >= 0)) if delta < 0 else n_resamples
    low, high = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
    p_value = min(1.0, 2.0 * (flips + 1) / (n_resamples + 1))
    return {"delta": float(delta), "low": float(low), "high": float(high), "p_value": p_value}


def mcnemar(gold: Sequence[Any], pred_a: Sequence[Any], pred_b: Sequence[Any]) -> dict[str, Any]:
    """McNemar's test of two classifiers' accuracy on the same rows.

    Only the discordant rows carry evidence: ``b`` where A is right and B wrong, ``c`` the reverse. Under the
    null each is a fair coin flip. Below 25 discordant rows (the usual rule of thumb) the chi-square
    approximation is poor and the exact two-sided binomial test is used; otherwise ``(|b - c| - 1)^2 / (b + c)``
    with Edwards' continuity correction against chi-square with one degree of freedom (Dietterich 1998).
    scipy comes with scikit-learn, so it is imported only here.

    Returns:
        ``{"b", "c", "statistic", "p_value", "method"}``; ``statistic`` is ``min(b, c)`` for the exact test,
        ``method`` is ``"exact"`` or ``"chi2"``.
    """
    from scipy.stats import binomtest, chi2

    if not len(gold) == len(pred_a) == len(pred_b):
        raise ValueError(f"lengths differ: {len(gold)}, {len(pred_a)}, {len(pred_b)}")
    right_a = [g == p for g, p in zip(gold, pred_a, strict=True)]
    right_b = [g == p for g, p in zip(gold, pred_b, strict=True)]
    b = sum(x and not y for x, y in zip(right_a, right_b, strict=True))
    c = sum(y and not x for x, y in zip(right_a, right_b, strict=True))
    if b + c < 25:
        p = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": float(p), "method": "exact"}
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    return {"b": b, "c": c, "statistic": float(statistic), "p_value": float(chi2.sf(statistic, 1)), "method": "chi2"}


def paired_permutation(values_a: Column, values_b: Column, n: int = 10000, seed: int = 0) -> dict[str, float]:
    """Two-sided paired permutation test of the mean difference of per-row scores (approximate randomisation).

    Under the null the two systems are exchangeable row by row, so each row's pair is swapped (its difference's
    sign flipped) with probability 1/2. The p-value is ``(#{|mean_perm| >= |mean_obs|} + 1) / (n + 1)``, the
    unbiased Monte Carlo form (Noreen 1989; Dror et al. 2018 recommend this test for per-row metrics).

    Args:
        values_a: One score per row for system A (log-likelihood, sentence chrF...).
        values_b: The same rows' scores for system B.
        n: Random sign flips.
        seed: Seed of the flips.

    Returns:
        ``{"delta": mean(A) - mean(B), "p_value"}``.
    """
    d = np.asarray(values_a, dtype=float) - np.asarray(values_b, dtype=float)
    if d.ndim != 1 or len(values_a) != len(values_b) or not len(d):
        raise ValueError(f"need two non-empty score lists of one length, got {len(values_a)} and {len(values_b)}")
    observed = abs(float(d.mean()))
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))  # float sums of the same terms in another order
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK_ELEMENTS // len(d))
    hits = 0
    for start in range(0, n, step):
        signs = rng.integers(0, 2, size=(min(step, n - start), len(d))) * 2 - 1
        hits += int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - tolerance))
    return {"delta": float(d.mean()), "p_value": (hits + 1) / (n + 1)}


CLASSIFICATION_METRICS = ("accuracy", "macro_f1", "weighted_f1")


def classification_metric_fns(n_labels: int) -> dict[str, Metric]:
    """:data:`CLASSIFICATION_METRICS` as vectorised metrics of label codes (:func:`encode_labels`)."""
    return {
        "accuracy": accuracy,
        "macro_f1": partial(f1_from_codes, n_labels=n_labels, average="macro"),
        "weighted_f1": partial(f1_from_codes, n_labels=n_labels, average="weighted"),
    }


def classification_intervals(
    gold: Sequence[str],
    pred: Sequence[str],
    labels: Sequence[str],
    n_resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """Bootstrap intervals of accuracy, macro-F1 and weighted-F1 (the same resamples for all three).

    Returns:
        ``{"accuracy": [low, high], "macro_f1": [...], "weighted_f1": [...]}``, each ``None`` with no rows.
    """
    metrics = classification_metric_fns(len(labels))
    if not gold:
        return dict.fromkeys(metrics)
    g, p = encode_labels(gold, pred, labels)
    out: dict[str, list[float] | None] = {}
    for name in metrics:
        _, low, high = bootstrap_ci(
            metrics[name], g, p, n_resamples=n_resamples, alpha=alpha, seed=seed, vectorised=True
        )
        out[name] = [low, high]
    return out
