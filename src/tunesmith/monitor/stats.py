"""Two-sample statistics for drift: is a window of recent traffic distributed like the training data?

Each function compares a *reference* sample (the training data) with a *current* one (the window) and is a
pure function of its inputs: no state, no I/O, a seed wherever randomness enters. They come in pairs, one
for the *size* of a shift and one for its *significance*, because the two answer different questions. With a
few hundred rows a test rejects "same distribution" for shifts too small to matter, and with twenty rows a
large shift may not be significant; an alert should want both a large effect and evidence for it.

- Categories (language, script per row): :func:`js_divergence` (size) and :func:`chi_square` (significance).
- One number per row (characters, words): :func:`psi` (size) and :func:`ks` (both).
- Vectors per row (sentence embeddings): :func:`domain_auc` (size) and :func:`mmd_test` (significance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["chi_square", "domain_auc", "js_divergence", "ks", "mmd_test", "psi"]

PSI_EPSILON = 1e-4
MIN_EXPECTED = 5.0
OTHER = "other"


def _shares(counts: Mapping[str, int], categories: Sequence[str]) -> np.ndarray:
    values = np.array([counts.get(c, 0) for c in categories], dtype=np.float64)
    if (values < 0).any():
        raise ValueError("category counts must be non-negative")
    total = values.sum()
    if total <= 0:
        raise ValueError("a sample with no observations has no distribution to compare")
    return values / total


def js_divergence(p_counts: Mapping[str, int], q_counts: Mapping[str, int]) -> float:
    """Jensen-Shannon divergence between two categorical samples, in bits (Lin 1991).

    ``JS(P, Q) = (KL(P || M) + KL(Q || M)) / 2`` with ``M = (P + Q) / 2``, over the union of the categories of
    both samples (a category missing from one side has share 0 there). Unlike KL it is symmetric and finite
    when a category occurs on one side only, which is the normal case in drift (a new language appears).

    Range: 0 (same shares) to 1 (no category in common). Rough reading: under 0.05 the same mix, 0.1 a
    noticeable move (the default alert), over 0.3 a different population. Sampling noise alone gives about
    ``(K - 1) * (1/n + 1/m) / (8 ln 2)`` for ``K`` categories and sample sizes ``n``, ``m``: about 0.007
    for five languages and 200 rows a side.

    Args:
        p_counts: Observations per category of the first sample.
        q_counts: Observations per category of the second sample.

    Returns:
        The divergence in ``[0, 1]``.

    Raises:
        ValueError: When a sample has no observations or a negative count.
    """
    categories = sorted(set(p_counts) | set(q_counts))
    p, q = _shares(p_counts, categories), _shares(q_counts, categories)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0  # 0 log 0 = 0; m > 0 wherever a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return float(min(1.0, max(0.0, (kl(p) + kl(q)) / 2)))


def _pool_rare(table: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Merge the columns seen fewer than :data:`MIN_EXPECTED` times in both samples together into ``other``.

    Such a category (one Yorùbá tweet among Pidgin ones) carries no evidence on its own but adds a degree of
    freedom, diluting the test; pooled, its rows still count.
    """
    rare = [j for j in range(table.shape[1]) if table[:, j].sum() < MIN_EXPECTED]
    if len(rare) < 2:
        return table, names, []  # pooling one column alone into "other" would only rename it
    kept = [j for j in range(table.shape[1]) if j not in rare]
    merged = np.column_stack([table[:, kept], table[:, rare].sum(axis=1)])
    return merged, [names[j] for j in kept] + [OTHER], [names[j] for j in rare]


def _chi2_statistics(tables: np.ndarray) -> np.ndarray:
    """Pearson's statistic of each ``(2, K)`` table in ``tables`` (``(R, 2, K)``), all with the same margins."""
    rows = tables.sum(axis=2, keepdims=True)
    cols = tables.sum(axis=1, keepdims=True)
    expected = rows * cols / tables.sum(axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        cells = np.where(expected > 0, (tables - expected) ** 2 / expected, 0.0)
    return np.asarray(cells.sum(axis=(1, 2)))


def chi_square(
    p_counts: Mapping[str, int], q_counts: Mapping[str, int], resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Pearson's chi-square test of homogeneity: do two samples share one categorical distribution?

    The two samples are the rows of a ``2 x K`` contingency table over the union of their categories; when two
    or more categories are seen fewer than 5 times in all, they are pooled into ``other`` first. No continuity
    correction. The chi-square distribution is a good approximation of the statistic's null only when every
    expected count is about 5 or more (Cochran 1954); a small window against a large reference breaks that for
    every category (20 window rows against 1,000: a category needs 255 rows to expect 5 in the window), and
    pooling them would pool the very shift we look for. So when an expected count is under 5 the p-value is a
    Monte Carlo one instead: ``resamples`` tables with the observed margins drawn from the multivariate
    hypergeometric distribution (the permutation null), ``(1 + #{simulated >= observed}) / (1 + resamples)``.

    Range: the statistic is ``>= 0``; ``p_value`` in ``[0, 1]``, small when the mixes differ. With hundreds of
    rows even a trivial shift is significant: read it together with :func:`js_divergence`.

    Args:
        p_counts: Observations per category of the first sample.
        q_counts: Observations per category of the second sample.
        resamples: Simulated tables for the Monte Carlo p-value.
        seed: Seeds the simulation.

    Returns:
        ``statistic``, ``dof``, ``p_value``, ``method`` (``asymptotic`` or ``monte_carlo``) and ``pooled``: the
        categories merged into ``other``. A table with a single category has statistic 0, dof 0 and p-value 1.

    Raises:
        ValueError: When a sample has no observations or a negative count.
    """
    names = sorted(set(p_counts) | set(q_counts))
    table = np.array([[p_counts.get(c, 0) for c in names], [q_counts.get(c, 0) for c in names]], dtype=np.int64)
    if (table < 0).any() or (table.sum(axis=1) <= 0).any():
        raise ValueError("chi_square needs two samples with at least one observation each and no negative count")
    table, names, pooled = _pool_rare(table, names)
    dof = table.shape[1] - 1
    if dof < 1:
        return {"statistic": 0.0, "dof": 0, "p_value": 1.0, "method": "asymptotic", "pooled": pooled}
    statistic = float(_chi2_statistics(table[None].astype(np.float64))[0])
    columns = table.sum(axis=0)
    if table.sum(axis=1).min() * columns.min() / table.sum() >= MIN_EXPECTED:
        from scipy.stats import chi2

        p_value, method = float(chi2.sf(statistic, dof)), "asymptotic"
    else:
        first = np.random.default_rng(seed).multivariate_hypergeometric(columns, int(table[0].sum()), size=resamples)
        null = _chi2_statistics(np.stack([first, columns - first], axis=1).astype(np.float64))
        exceed = int(np.sum(null >= statistic - 1e-9 * max(1.0, statistic)))  # ties count as "as extreme"
        p_value, method = (1 + exceed) / (1 + resamples), "monte_carlo"
    return {"statistic": statistic, "dof": dof, "p_value": p_value, "method": method, "pooled": pooled}


def psi(reference: Sequence[float], current: Sequence[float], bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference`` (credit scoring's drift measure).

    ``PSI = sum_b (c_b - r_b) * ln(c_b / r_b)`` over bins ``b`` with shares ``r_b`` (reference) and ``c_b``
    (current): the symmetrised KL divergence of the binned distributions. The bins are the reference's
    quantiles, so each holds about ``1 / bins`` of the reference; repeated quantiles (integer data such as
    word counts) merge, so fewer bins may remain. An empty bin gets share :data:`PSI_EPSILON` so that the
    logarithm stays finite.

    Range: ``>= 0``, unbounded. Conventional reading (Siddiqi 2006; Yurdakul 2018): below 0.1 no change, 0.1 to
    0.25 a moderate shift worth a look, above 0.25 a major shift. Those readings assume large samples: noise
    alone adds about ``(bins - 1) * (1/n + 1/m)`` while every bin expects 5 or more current rows (0.09 for
    200 rows a side and 10 bins), and far more below that, because each empty bin adds about
    ``0.1 * ln(0.1 / epsilon) = 0.7`` (with 20 current rows and 10 bins the no-drift PSI averages 1.2). Use
    at most ``len(current) / 5`` bins and read it with a test such as :func:`ks`.

    Args:
        reference: The reference sample (training data).
        current: The sample to compare (recent window).
        bins: Number of quantile bins of the reference.

    Returns:
        The index, ``>= 0``.

    Raises:
        ValueError: When either sample is empty or ``bins < 2``.
    """
    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("psi needs two non-empty samples")
    if bins < 2:
        raise ValueError(f"psi needs at least 2 bins, got {bins}")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1))[1:-1])
    # side="right": bin i holds edges[i-1] <= x < edges[i]; the same rule on both sides is what matters.
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1) / cur.size
    r, c = np.maximum(r, PSI_EPSILON), np.maximum(c, PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def ks(reference: Sequence[float], current: Sequence[float]) -> dict[str, float]:
    """Two-sample Kolmogorov-Smirnov test: the largest gap between the two empirical CDFs.

    Range: ``statistic`` in ``[0, 1]`` (0 identical, 1 disjoint supports), a size that reads as "at some
    length, this much more of one sample lies below it"; ``p_value`` in ``[0, 1]``, where under 0.01 is the
    usual alarm. Ties (integer lengths) make the test conservative, never anti-conservative.

    Raises:
        ValueError: When either sample is empty.
    """
    from scipy.stats import ks_2samp

    if len(reference) == 0 or len(current) == 0:
        raise ValueError("ks needs two non-empty samples")
    result = ks_2samp(np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64))
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue)}


def _subsample(x: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= limit else x[np.sort(rng.choice(len(x), size=limit, replace=False))]


def _as_matrix(x: Any, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"{name} must be an (N, D) array with N >= 2, got shape {np.shape(x)}")
    return array


def _block_sums(kernel: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each labelling in ``labels`` (``(P, N)`` booleans, True = first sample).

    ``a^T K a`` sums a block including its diagonal; the diagonal of an RBF kernel is 1, so subtracting the
    block size leaves the off-diagonal sum the unbiased estimator (Gretton et al. 2012, eq. 3) averages.
    """
    a = labels.astype(np.float64)
    b = 1.0 - a
    ka, kb = kernel @ a.T, kernel @ b.T  # (N, P)
    n, m = a.sum(axis=1), b.sum(axis=1)
    xx = (np.einsum("pn,np->p", a, ka) - n) / (n * (n - 1))
    yy = (np.einsum("pn,np->p", b, kb) - m) / (m * (m - 1))
    xy = np.einsum("pn,np->p", a, kb) / (n * m)
    return np.asarray(xx + yy - 2 * xy)


def mmd_test(
    x: np.ndarray, y: np.ndarray, permutations: int = 200, seed: int = 0, max_samples: int = 500
) -> dict[str, Any]:
    """Kernel two-sample test with the maximum mean discrepancy (Gretton et al. 2012, JMLR 13).

    MMD² is the squared distance between the mean embeddings of the two samples in the feature space of an
    RBF kernel ``k(a, b) = exp(-|a - b|² / (2 sigma²))``; it is zero exactly when the distributions are equal,
    so it sees any difference, not only a shift of the mean. ``sigma`` is the median pairwise distance of the
    pooled sample (the median heuristic). The p-value comes from ``permutations`` random relabellings of the
    pooled sample, ``(1 + #{perm >= observed}) / (1 + permutations)``, so it is never 0 and its floor is
    ``1 / (1 + permutations)``. Each side is subsampled to ``max_samples`` rows: the kernel matrix is
    quadratic in memory and time, and 500 rows a side already detect any shift worth an alert.

    Range: ``mmd2`` is about 0 under no drift (the unbiased estimate can be slightly negative) and at most 2;
    ``p_value`` in ``(0, 1]``, with 0.05 or 0.01 the usual alarm.

    Args:
        x: ``(N, D)`` reference vectors (e.g. sentence embeddings); ``(N,)`` is read as ``D = 1``.
        y: ``(M, D)`` current vectors.
        permutations: Number of relabellings for the p-value.
        seed: Seeds subsampling and permutations.
        max_samples: Largest number of rows used per side.

    Returns:
        ``mmd2``, ``p_value``, ``bandwidth`` (sigma), ``permutations``, and ``n_reference``/``n_current``
        (rows used after subsampling).
    """
    rng = np.random.default_rng(seed)
    xs = _subsample(_as_matrix(x, "x"), max_samples, rng)
    ys = _subsample(_as_matrix(y, "y"), max_samples, rng)
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y have different widths: {xs.shape[1]} and {ys.shape[1]}")
    z = np.vstack([xs, ys])
    sq = np.sum(z * z, axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    off_diagonal = dist2[np.triu_indices(len(z), k=1)]
    median = float(np.sqrt(np.median(off_diagonal)))
    bandwidth = median if median > 0 else 1.0  # all points equal: any width gives MMD² 0
    kernel = np.exp(-dist2 / (2 * bandwidth**2))
    observed = np.zeros((1, len(z)), dtype=bool)
    observed[0, : len(xs)] = True
    mmd2 = float(_block_sums(kernel, observed)[0])
    shuffled = np.array([rng.permutation(observed[0]) for _ in range(permutations)]).reshape(permutations, len(z))
    null = _block_sums(kernel, shuffled) if permutations else np.zeros(0)
    return {
        "mmd2": mmd2,
        "p_value": float((1 + np.sum(null >= mmd2)) / (1 + permutations)),
        "bandwidth": bandwidth,
        "permutations": permutations,
        "n_reference": len(xs),
        "n_current": len(ys),
    }


def domain_auc(x: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 5) -> dict[str, Any]:
    """Classifier two-sample test: how well does a linear model tell reference rows from current ones?

    A logistic regression (on standardised features, L2, ``C = 1``) learns to predict "current" from a row's
    vector; its stratified ``folds``-fold cross-validated ROC AUC measures how separable the samples are
    (Lopez-Paz and Oquab 2017). This is an effect size a person can read: 0.5 is indistinguishable, 0.6
    a slight lean, 0.75 a clear shift, above 0.9 different populations. With few rows and many dimensions the
    null spread is wide (a fold AUC of 0.4 or 0.6 from noise is common): read ``auc_std`` alongside.

    Identical rows are kept in one fold (grouped folds): a prompt that repeats a training text would otherwise
    sit in training with one label and be scored with the other, which pushes the AUC below 0.5 (measured:
    0.30 for a sample compared with itself) and hides real drift elsewhere in the window.

    Args:
        x: ``(N, D)`` reference vectors.
        y: ``(M, D)`` current vectors.
        seed: Seeds the fold split.
        folds: Number of folds; lowered to the size of the smaller sample (or the number of distinct rows) when
            that is smaller.

    Returns:
        ``auc`` (mean over folds), ``auc_std``, ``folds`` (the number of folds scored; 0 when no fold had both
        sides, and then ``auc`` is 0.5), ``n_reference``, ``n_current``.

    Raises:
        ValueError: When either side has fewer than 2 rows or the widths differ.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs, ys = _as_matrix(x, "x"), _as_matrix(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y have different widths: {xs.shape[1]} and {ys.shape[1]}")
    features = np.vstack([xs, ys])
    target = np.concatenate([np.zeros(len(xs), dtype=int), np.ones(len(ys), dtype=int)])
    groups = np.unique(features, axis=0, return_inverse=True)[1].ravel()
    k = min(folds, len(xs), len(ys), int(groups.max()) + 1)
    scores = []
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed) if k >= 2 else None
    for train, test in cv.split(features, target, groups) if cv else []:
        if len(np.unique(target[train])) < 2 or len(np.unique(target[test])) < 2:
            continue  # a fold that one huge group of duplicates filled with a single side
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(features[train], target[train])
        scores.append(roc_auc_score(target[test], model.predict_proba(features[test])[:, 1]))
    # No usable fold (every row the same vector, or duplicates everywhere): nothing tells the sides apart.
    return {
        "auc": float(np.mean(scores)) if scores else 0.5,
        "auc_std": float(np.std(scores)) if scores else 0.0,
        "folds": len(scores),
        "n_reference": len(xs),
        "n_current": len(ys),
    }
