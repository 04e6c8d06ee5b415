from __future__ import annotations

import random

import pytest

from tunesmith.data.dedup import near_duplicate_pairs, record_clusters
from tunesmith.data.split import remove_leaks, stratified_split, stratum_warnings

FRACTIONS = {"validation": 0.1, "test": 0.2}
MARKET = "the market in ibadan was full of traders selling yams and pepper this morning"
MARKET_TOMATOES = "the market in ibadan was full of traders selling yams and tomatoes this morning"


def rec(text: str, label: str = "positive", line: int = 1, file: str = "f.tsv", **groups: str) -> dict:
    return {"text": text, "label": label, "groups": groups, "source": {"file": file, "line": line}}


def corpus(n: int = 300) -> list[dict]:
    return [rec(f"t{i}", "a" if i % 4 else "b", line=i, lang="yor" if i % 3 else "hau") for i in range(n)]


def split_of(splits: dict[str, list[dict]]) -> dict[int, str]:
    return {r["source"]["line"]: name for name, rows in splits.items() for r in rows}


def test_singleton_clusters_give_the_same_split_as_no_clusters() -> None:
    records = corpus()
    plain = stratified_split(records, FRACTIONS, ["label", "lang"], seed=5)
    assert stratified_split(records, FRACTIONS, ["label", "lang"], 5, clusters=list(range(300))) == plain


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clusters_never_straddle_splits(seed: int) -> None:
    records = corpus()
    rng = random.Random(seed)
    clusters = [rng.randrange(120) for _ in records]  # clusters of 1-7 rows, across strata
    splits = stratified_split(records, FRACTIONS, ["label"], seed, clusters=clusters)
    assert splits == stratified_split(records, FRACTIONS, ["label"], seed, clusters=clusters)
    where = split_of(splits)
    assert len(where) == len(records)
    for c in set(clusters):
        assert len({where[i] for i, ci in enumerate(clusters) if ci == c}) == 1
    sizes = {name: len(rows) for name, rows in splits.items()}
    assert 15 <= sizes["validation"] <= 30 and 45 <= sizes["test"] <= 60  # near 10% / 20% of 300


def test_near_duplicate_records_land_in_one_split() -> None:
    rng = random.Random(3)
    words = [f"w{i}" for i in range(500)]
    texts = [" ".join(rng.choice(words) for _ in range(15)) for _ in range(150)]
    texts += [t + " ok" for t in texts[:50]] + ["@user " + t.upper() for t in texts[:30]]  # 80 near copies
    records = [rec(t, "a" if i % 2 else "b", line=i) for i, t in enumerate(texts)]
    clusters = record_clusters(records, "classification", 0.8)
    assert len(set(clusters)) == 150
    where = split_of(stratified_split(records, FRACTIONS, ["label"], 0, clusters=clusters))
    assert all(where[i] == where[j] for i, j, _ in near_duplicate_pairs(texts, 0.8))
    assert len(set(where.values())) == 3


def test_clusters_must_match_records() -> None:
    with pytest.raises(ValueError, match="clusters has 2 ids for 300 records"):
        stratified_split(corpus(), FRACTIONS, ["label"], 0, clusters=[0, 1])


def test_stratum_warnings_list_small_and_missing_strata() -> None:
    splits = {
        "train": [rec("a", "positive"), rec("b", "positive"), rec("c", "neutral")],
        "test": [rec("d", "positive"), rec("e", "positive")],
    }
    assert stratum_warnings(splits, ["label"], 2) == [
        "stratum label=neutral has 1 rows in train (minimum 2)",
        "stratum label=neutral has 0 rows in test (minimum 2)",
    ]
    assert stratum_warnings(splits, ["label"], 1) == ["stratum label=neutral has 0 rows in test (minimum 1)"]


def test_exact_leaks_unchanged_and_near_leaks_name_the_other_row() -> None:
    splits = {
        "train": [rec(MARKET, line=7, file="train.tsv"), rec("something else entirely", line=8, file="train.tsv")],
        "validation": [rec("a validation row about the weather in kano", line=3, file="dev.tsv")],
        "test": [
            rec("@user " + MARKET_TOMATOES, "negative", line=2, file="test.tsv"),
            rec("Something  ELSE entirely", line=4, file="test.tsv"),
            rec("a validation row about the weather in kano today", line=5, file="test.tsv"),
            rec("a new row", line=6, file="test.tsv"),
        ],
    }
    exact, exact_rejects = remove_leaks(splits, "classification")
    assert [r["source"]["line"] for r in exact["test"]] == [2, 5, 6]
    assert [r.reason for r in exact_rejects] == [
        "test row also in train (train.tsv:8): removed so scores are not memorisation"
    ]
    out, rejects = remove_leaks(splits, "classification", near=0.7)
    assert [r["source"]["line"] for r in out["test"]] == [6]
    assert out["train"] == splits["train"] and out["validation"] == splits["validation"]
    reasons = {r.line: r.reason for r in rejects}
    assert reasons[2].startswith("test row also in train as a near duplicate (Jaccard 0.7")
    assert "of train.tsv:7:" in reasons[2]
    assert reasons[5].startswith("test row also in validation as a near duplicate") and "dev.tsv:3" in reasons[5]
    assert reasons[4] == exact_rejects[0].reason


def test_marked_leaks_stay_in_the_split_and_are_tagged_for_evaluation(tmp_path) -> None:
    from tunesmith.data.prepare import mark_leaks
    from tunesmith.data.split import remove_leaks
    from tunesmith.eval.summary import group_keys

    def row(text: str, line: int, name: str) -> dict:
        return {"text": text, "label": "x", "groups": {}, "source": {"file": name, "line": line}}

    splits = {
        "train": [row("na so e be", 1, "train.tsv"), row("how far my guy", 2, "train.tsv")],
        "test": [row("Na so e be", 1, "test.tsv"), row("rain don fall for Lagos", 2, "test.tsv")],
    }
    marked = mark_leaks(splits, remove_leaks(splits, "classification")[1])
    assert [r["groups"]["leak"] for r in marked["test"]] == ["exact", "none"]
    assert marked["train"] == splits["train"] and len(marked["test"]) == 2
    assert "leak" in group_keys(marked["test"], [])
