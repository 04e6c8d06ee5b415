"""Two-sample drift statistics against known distributions, hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from tunesmith.monitor.stats import chi_square, domain_auc, js_divergence, ks, mmd_test, psi


@pytest.fixture(scope="module")
def normals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "a": rng.normal(size=400),
        "b": rng.normal(size=400),
        "shifted": rng.normal(loc=1.0, size=400),
        "va": rng.normal(size=(150, 8)),
        "vb": rng.normal(size=(150, 8)),
        "vshift": rng.normal(size=(150, 8)) + np.r_[1.0, np.zeros(7)],
    }


def test_js_identical_disjoint_and_hand_computed() -> None:
    assert js_divergence({"pcm": 30, "eng": 10}, {"pcm": 3, "eng": 1}) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence({"pcm": 30}, {"hau": 5, "yor": 2}) == pytest.approx(1.0)
    # P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4): KL(P||M) = log2(4/3), KL(Q||M) = (log2(2/3) + log2(2)) / 2
    expected = (math.log2(4 / 3) + (math.log2(2 / 3) + 1) / 2) / 2
    assert js_divergence({"a": 4}, {"a": 2, "b": 2}) == pytest.approx(expected)
    assert js_divergence({"a": 4}, {"a": 2, "b": 2}) == pytest.approx(js_divergence({"a": 2, "b": 2}, {"a": 4}))
    assert js_divergence({"a": 4, "zero": 0}, {"a": 4}) == pytest.approx(0.0, abs=1e-12)  # zero counts are safe
    with pytest.raises(ValueError, match="no observations"):
        js_divergence({}, {"a": 1})


def test_chi_square_matches_scipy_on_a_dense_table() -> None:
    p, q = {"hau": 40, "pcm": 30, "yor": 30}, {"hau": 20, "pcm": 50, "yor": 30}
    ours = chi_square(p, q)
    ref = chi2_contingency(np.array([[40, 30, 30], [20, 50, 30]]), correction=False)
    assert ours["method"] == "asymptotic"
    assert ours["statistic"] == pytest.approx(ref.statistic)
    assert ours["dof"] == ref.dof == 2
    assert ours["p_value"] == pytest.approx(ref.pvalue)


def test_chi_square_sparse_tables() -> None:
    # Two rare categories (fewer than 5 in all) are pooled into "other"; one rare category alone is kept.
    pooled = chi_square({"pcm": 50, "yor": 1, "ibo": 2}, {"pcm": 50, "yor": 1})
    assert pooled["pooled"] == ["ibo", "yor"] and pooled["dof"] == 1
    assert chi_square({"pcm": 50, "yor": 1}, {"pcm": 50})["pooled"] == []
    # A small window against a large reference: expected counts under 5, so a Monte Carlo p-value, still tiny.
    small = chi_square({"pcm": 1000}, {"hau": 20}, resamples=999, seed=1)
    assert small["method"] == "monte_carlo" and small["p_value"] == pytest.approx(1 / 1000)
    same = chi_square({"pcm": 95, "eng": 5}, {"pcm": 19, "eng": 1}, seed=1)
    assert same["method"] == "monte_carlo" and same["p_value"] > 0.5
    assert chi_square({"pcm": 5}, {"pcm": 9}) == {
        "statistic": 0.0,
        "dof": 0,
        "p_value": 1.0,
        "method": "asymptotic",
        "pooled": [],
    }


def test_psi_hand_computed_and_identical() -> None:
    reference = [1, 2, 3, 4]  # two quantile bins split at the median 2.5: shares (1/2, 1/2)
    current = [1, 1, 1, 4]  # shares (3/4, 1/4)
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi(reference, current, bins=2) == pytest.approx(expected)
    assert psi([1, 2, 3, 4], [1, 2, 3, 4], bins=2) == pytest.approx(0.0, abs=1e-12)
    # An empty current bin is floored at epsilon instead of giving an infinite index.
    assert math.isfinite(psi(reference, [1, 1, 1, 1], bins=2))
    with pytest.raises(ValueError):
        psi([], [1.0])


def test_psi_on_normals(normals: dict[str, np.ndarray]) -> None:
    assert psi(normals["a"], normals["a"]) == pytest.approx(0.0, abs=1e-9)
    assert psi(normals["a"], normals["b"]) < 0.1
    assert psi(normals["a"], normals["shifted"]) > 0.25


def test_ks_on_normals(normals: dict[str, np.ndarray]) -> None:
    same = ks(normals["a"], normals["a"])
    assert same["statistic"] == 0.0 and same["p_value"] > 0.99
    assert ks(normals["a"], normals["b"])["p_value"] > 0.01
    shifted = ks(normals["a"], normals["shifted"])
    assert shifted["p_value"] < 1e-6 and shifted["statistic"] > 0.3


def test_mmd_on_vectors(normals: dict[str, np.ndarray]) -> None:
    same = mmd_test(normals["va"], normals["vb"], permutations=100)
    assert same["p_value"] > 0.05 and abs(same["mmd2"]) < 0.02 and same["bandwidth"] > 0
    identical = mmd_test(normals["va"], normals["va"], permutations=100)
    assert identical["p_value"] > 0.5
    shifted = mmd_test(normals["va"], normals["vshift"], permutations=100)
    assert shifted["p_value"] < 0.05 and shifted["mmd2"] > same["mmd2"]
    assert shifted == mmd_test(normals["va"], normals["vshift"], permutations=100)  # seeded
    capped = mmd_test(normals["va"], normals["vshift"], permutations=20, max_samples=50)
    assert capped["n_reference"] == capped["n_current"] == 50


def test_mmd_one_dimensional_and_bad_shapes(normals: dict[str, np.ndarray]) -> None:
    assert mmd_test(normals["a"][:100], normals["shifted"][:100], permutations=100)["p_value"] < 0.05
    with pytest.raises(ValueError, match="widths"):
        mmd_test(np.zeros((5, 2)), np.zeros((5, 3)))


def test_domain_auc(normals: dict[str, np.ndarray]) -> None:
    assert domain_auc(normals["va"], normals["vb"])["auc"] == pytest.approx(0.5, abs=0.12)
    assert domain_auc(normals["va"], normals["va"])["auc"] == pytest.approx(0.5, abs=0.12)
    shifted = domain_auc(normals["va"], normals["vshift"] + np.r_[1.0, np.zeros(7)])  # mean gap 2 on one axis
    assert shifted["auc"] > 0.8 and shifted["folds"] == 5
    assert domain_auc(normals["va"][:3], normals["vb"][:30])["folds"] == 3


def test_domain_auc_duplicates_stay_in_one_fold() -> None:
    # Without grouping, a row present on both sides is trained with one label and scored with the other.
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(60, 4))
    assert domain_auc(shared, shared)["auc"] == pytest.approx(0.5, abs=0.05)
    degenerate = domain_auc(np.ones((5, 3)), np.ones((6, 3)))  # every row the same vector
    assert (degenerate["auc"], degenerate["folds"]) == (0.5, 0)
