from __future__ import annotations

import math
import time
from functools import partial

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from tunesmith.eval.stats import (
    accuracy,
    bootstrap_ci,
    classification_intervals,
    encode_labels,
    f1_from_codes,
    mcnemar,
    mean_score,
    paired_bootstrap,
    paired_permutation,
    weighted_mean,
)

LABELS = ["neg", "neu", "pos", "mixed"]


def _system(n: int, skill: float, seed: int, labels: list[str] = LABELS) -> tuple[list[str], list[str]]:
    """Gold labels and predictions that are right with probability ``skill``, else a random label."""
    rng = np.random.default_rng(seed)
    gold = [labels[i] for i in rng.integers(0, len(labels), n)]
    pred = [g if rng.random() < skill else labels[rng.integers(0, len(labels))] for g in gold]
    return gold, pred


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_fast_f1_equals_sklearn(seed: int, average: str) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    pool = [*LABELS, "unparsed", "other"]  # strings outside the label set count as "not a label", as in sklearn
    gold = [pool[i] for i in rng.integers(0, len(pool) - 1, n)]
    pred = [pool[i] for i in rng.integers(0, len(pool), n)]
    labels = LABELS[: 2 + seed % 3]  # some labels may never occur: they count 0 in the macro average
    g, p = encode_labels(gold, pred, labels)
    expected = f1_score(gold, pred, labels=labels, average=average, zero_division=0)
    assert abs(float(f1_from_codes(g, p, len(labels), average)) - expected) < 1e-12


def test_fast_f1_batched_matches_rows() -> None:
    gold, pred = _system(50, 0.5, 1)
    g, p = encode_labels(gold, pred, LABELS)
    idx = np.random.default_rng(0).integers(0, 50, (7, 50))
    batched = f1_from_codes(g[idx], p[idx], len(LABELS))
    single = [f1_score([gold[i] for i in r], [pred[i] for i in r], labels=LABELS, average="macro") for r in idx]
    assert batched.shape == (7,)
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-12)


def test_accuracy_codes_keep_unknown_strings_apart() -> None:
    g, p = encode_labels(["x", "a", "y"], ["y", "a", "y"], ["a", "b"])
    assert float(accuracy(g, p)) == pytest.approx(2 / 3)


def test_vectorised_helpers_by_hand() -> None:
    assert float(mean_score([1.0, 2.0, 6.0])) == 3.0
    assert float(weighted_mean([1.0, 4.0], [3, 1])) == pytest.approx(7 / 4)
    assert accuracy(np.array([[1, 2], [1, 1]]), np.array([[1, 1], [1, 1]])).tolist() == [0.5, 1.0]


def test_ci_contains_point_and_shrinks_with_rows() -> None:
    widths = []
    for n in (100, 400, 1600):
        gold, pred = _system(n, 0.6, n)
        intervals = classification_intervals(gold, pred, LABELS)
        points = {
            "accuracy": float(accuracy(gold, pred)),
            "macro_f1": f1_score(gold, pred, labels=LABELS, average="macro"),
            "weighted_f1": f1_score(gold, pred, labels=LABELS, average="weighted"),
        }
        for name, interval in intervals.items():
            assert interval is not None
            low, high = interval
            assert 0.0 <= low <= points[name] <= high <= 1.0 and low < high
        g, p = encode_labels(gold, pred, LABELS)
        point, low, high = bootstrap_ci(partial(f1_from_codes, n_labels=4), g, p, vectorised=True)
        assert low <= point <= high
        assert point == pytest.approx(f1_score(gold, pred, labels=LABELS, average="macro"), abs=1e-12)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[2] == pytest.approx(4, rel=0.35)  # the width goes as 1/sqrt(n)


def test_constant_metric_has_zero_width() -> None:
    assert bootstrap_ci(lambda g, p: 0.7, ["a"] * 20, ["b"] * 20) == (0.7, 0.7, 0.7)
    assert bootstrap_ci(mean_score, [2.5] * 30, vectorised=True) == (2.5, 2.5, 2.5)
    gold = ["a", "b"] * 20
    assert classification_intervals(gold, gold, ["a", "b"]) == {
        "accuracy": [1.0, 1.0],
        "macro_f1": [1.0, 1.0],
        "weighted_f1": [1.0, 1.0],
    }


def test_deterministic_given_seed_and_same_in_both_paths() -> None:
    gold, pred = _system(120, 0.5, 3)
    first = bootstrap_ci(accuracy, gold, pred, seed=7, vectorised=True)
    assert bootstrap_ci(accuracy, gold, pred, seed=7, vectorised=True) == first
    scores = np.random.default_rng(0).normal(size=120)  # continuous: another seed moves the percentiles
    assert bootstrap_ci(mean_score, scores, seed=8, vectorised=True) != bootstrap_ci(mean_score, scores, seed=7)
    looped = bootstrap_ci(lambda g, p: sum(a == b for a, b in zip(g, p, strict=True)) / len(g), gold, pred, seed=7)
    assert looped == pytest.approx(first, abs=1e-12)  # same resamples whether vectorised or not


def test_loop_path_gets_lists_and_works_with_sacrebleu() -> None:
    from sacrebleu.metrics import CHRF

    hyps = ["the cat sat on the mat", "a dog barked", "hello world", "good morning", "see you soon"] * 4
    refs = ["the cat sat on a mat", "the dog barked", "hello there world", "good morning", "see you later"] * 4

    def chrf(h: list[str], r: list[str]) -> float:
        assert isinstance(h, list) and isinstance(h[0], str)
        return CHRF().corpus_score(h, [r]).score

    point, low, high = bootstrap_ci(chrf, hyps, refs, n_resamples=50)
    assert point == pytest.approx(CHRF().corpus_score(hyps, [refs]).score)
    assert low <= point <= high


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci(accuracy, [], [])
    with pytest.raises(ValueError, match="differ"):
        bootstrap_ci(accuracy, ["a"], ["a", "b"])
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(accuracy, ["a"], ["a"], alpha=1.5)
    assert classification_intervals([], [], LABELS) == {"accuracy": None, "macro_f1": None, "weighted_f1": None}


def test_macro_f1_bootstrap_is_fast() -> None:
    gold, pred = _system(600, 0.6, 0)
    g, p = encode_labels(gold, pred, LABELS)
    start = time.perf_counter()
    bootstrap_ci(partial(f1_from_codes, n_labels=4), g, p, n_resamples=1000, vectorised=True)
    assert time.perf_counter() - start < 0.5


def test_paired_bootstrap_identical_and_clearly_better() -> None:
    gold, pred = _system(300, 0.5, 4)
    f1 = partial(f1_from_codes, n_labels=4)
    g, p = encode_labels(gold, pred, LABELS)
    same = paired_bootstrap(f1, g, p, p, vectorised=True)
    assert same == {"delta": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0}
    _, better = _system(300, 0.9, 4)  # same gold (same seed), far better predictions
    _, b = encode_labels(gold, better, LABELS)
    out = paired_bootstrap(f1, g, b, p, vectorised=True)
    assert out["delta"] > 0.2 and 0 < out["low"] < out["delta"] < out["high"]
    assert out["p_value"] == pytest.approx(2 / 1001)  # no resample flips the sign: the smallest p it reports
    reverse = paired_bootstrap(f1, g, p, b, vectorised=True)
    assert reverse["delta"] == pytest.approx(-out["delta"]) and reverse["p_value"] == out["p_value"]


def test_paired_bootstrap_close_systems_not_significant() -> None:
    gold, a = _system(200, 0.6, 5)
    right = [i for i in range(200) if a[i] == gold[i]]
    wrong = [i for i in range(200) if a[i] != gold[i]]
    b = list(a)
    for i in right[:6]:  # B loses 6 rows A gets right and wins 4 A gets wrong: accuracy 1 point lower
        b[i] = next(lab for lab in LABELS if lab != gold[i])
    for i in wrong[:4]:
        b[i] = gold[i]
    out = paired_bootstrap(accuracy, gold, a, b, vectorised=True)
    assert out["delta"] == pytest.approx(0.01) and out["low"] < 0 < out["high"]
    assert out["p_value"] > 0.3
    assert mcnemar(gold, a, b)["p_value"] == pytest.approx(binomtest(6, 10, 0.5).pvalue)


def test_mcnemar_exact_by_hand() -> None:
    # 10 rows only A gets right, 3 only B, 5 both, 2 neither
    gold = ["y"] * 20
    a = ["y"] * 10 + ["n"] * 3 + ["y"] * 5 + ["n"] * 2
    b = ["n"] * 10 + ["y"] * 3 + ["y"] * 5 + ["n"] * 2
    out = mcnemar(gold, a, b)
    # two-sided exact: 2 * P(X <= 3), X ~ Bin(13, 1/2) = 2 * (1 + 13 + 78 + 286) / 2^13
    assert out == {"b": 10, "c": 3, "statistic": 3.0, "p_value": pytest.approx(756 / 8192), "method": "exact"}
    assert out["p_value"] == pytest.approx(binomtest(10, 13, 0.5).pvalue)


def test_mcnemar_chi2_by_hand() -> None:
    gold = ["y"] * 60
    a = ["y"] * 30 + ["n"] * 10 + ["y"] * 20
    b = ["n"] * 30 + ["y"] * 10 + ["y"] * 20
    out = mcnemar(gold, a, b)
    statistic = (abs(30 - 10) - 1) ** 2 / 40  # 9.025
    assert out["method"] == "chi2" and out["statistic"] == pytest.approx(statistic)
    assert out["p_value"] == pytest.approx(math.erfc(math.sqrt(statistic / 2)))  # chi2(1) survival function


def test_mcnemar_edges() -> None:
    assert mcnemar(["a", "b"], ["a", "b"], ["a", "b"])["p_value"] == 1.0
    gold, a = _system(300, 0.5, 6)
    _, b = _system(300, 0.5, 7)
    for out in (mcnemar(gold, a, a), mcnemar(gold[:30], a[:30], b[:30])):
        expected = binomtest(out["b"], out["b"] + out["c"], 0.5).pvalue if out["b"] + out["c"] else 1.0
        if out["method"] == "exact":
            assert out["p_value"] == pytest.approx(expected)


def test_paired_permutation() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 200)
    same = paired_permutation(a, a, n=2000)
    assert same == {"delta": 0.0, "p_value": 1.0}
    noise = paired_permutation(a, a + rng.normal(0, 0.1, 200), n=2000)
    assert noise["p_value"] > 0.05
    shifted = paired_permutation(a + 0.5, a + rng.normal(0, 0.1, 200), n=2000)
    assert shifted["delta"] == pytest.approx(0.5, abs=0.05) and shifted["p_value"] == pytest.approx(1 / 2001)
    b = a + rng.normal(0, 0.1, 200)
    assert paired_permutation(a, b, n=500, seed=3) == paired_permutation(a, b, n=500, seed=3)


def test_paired_permutation_matches_exact_enumeration() -> None:
    # 4 rows: only the all-plus and all-minus of the 16 sign patterns reach |mean| = 2.5, so the exact p is 2/16
    d = np.array([1.0, 2.0, 3.0, 4.0])
    signs = np.array([[(s >> k) & 1 for k in range(4)] for s in range(16)]) * 2 - 1
    exact = float(np.mean(np.abs((signs * d).mean(axis=1)) >= d.mean() - 1e-12))
    out = paired_permutation(d, np.zeros(4), n=20000, seed=1)
    assert exact == 2 / 16
    assert out["delta"] == 2.5 and out["p_value"] == pytest.approx(exact, abs=0.01)
