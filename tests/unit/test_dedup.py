from __future__ import annotations

import random

import pytest

from tunesmith.data import dedup
from tunesmith.data.dedup import (
    MinHashConfig,
    cross_near_duplicates,
    dedup_near,
    lsh_bands,
    near_duplicate_clusters,
    near_duplicate_of,
    near_duplicate_pairs,
    normalize_for_dedup,
    record_clusters,
)

MARKET = "the market in ibadan was full of traders selling yams and pepper this morning"
MARKET_TOMATOES = "the market in ibadan was full of traders selling yams and tomatoes this morning"
MARKET_LAGOS = "the market in lagos was full of traders selling yams and tomatoes this morning"
UNRELATED = [
    "rain fell all night on the football pitch and the match was postponed",
    "my phone battery dies before noon every single day now",
    "ẹ kú àárọ̀ o, ṣé dáadáa ni gbogbo ilé",
    "ina son wannan waka sosai saboda tana da dadi",
]


def rec(text: str, line: int, label: str = "positive") -> dict:
    return {"text": text, "label": label, "groups": {}, "source": {"file": "f.tsv", "line": line}}


def test_normalisation_drops_mentions_urls_case_and_spacing() -> None:
    assert normalize_for_dedup("@user  Hello\tWORLD https://t.co/x1 www.a.b") == "hello world"
    assert normalize_for_dedup("@user Hi", strip_mentions=False) == "@user hi"


def test_near_duplicates_found_at_threshold_and_unrelated_texts_not_merged() -> None:
    texts = [MARKET, *UNRELATED, "@user " + MARKET_TOMATOES + " https://t.co/abc"]
    pairs = near_duplicate_pairs(texts, threshold=0.7)
    assert [(i, j) for i, j, _ in pairs] == [(0, 5)]
    assert 0.7 <= pairs[0][2] < 1.0
    assert near_duplicate_pairs(texts, threshold=0.9) == []
    assert near_duplicate_clusters(texts, threshold=0.7) == [0, 1, 2, 3, 4, 0]


def test_texts_equal_after_normalisation_pair_with_jaccard_one() -> None:
    texts = ["Good  morning Lagos", "@user good morning lagos", "good evening abuja"]
    assert near_duplicate_pairs(texts) == [(0, 1, 1.0)]
    assert near_duplicate_of(texts) == [None, (0, 1.0), None]


def test_texts_empty_after_normalisation_are_not_duplicates_of_each_other() -> None:
    texts = ["@user", "@other https://t.co/x", "@user"]
    assert near_duplicate_pairs(texts) == []
    assert near_duplicate_clusters(texts) == [0, 1, 2]


def test_clusters_are_transitive_but_greedy_dedup_keeps_the_far_end_of_a_chain() -> None:
    # J(a, b) = 0.74, J(b, c) = 0.77, J(a, c) = 0.56: one component at 0.7, but c is not like any kept row.
    texts = [MARKET, MARKET_TOMATOES, MARKET_LAGOS]
    assert near_duplicate_clusters(texts, threshold=0.7) == [0, 0, 0]
    dropped = near_duplicate_of(texts, threshold=0.7)
    assert dropped[0] is None and dropped[2] is None
    assert dropped[1] is not None and dropped[1][0] == 0


def test_results_are_deterministic_and_stable_across_seeds_for_clear_cases() -> None:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    base = [" ".join(rng.choice(words) for _ in range(20)) for _ in range(200)]
    edited = [t.rsplit(" ", 1)[0] + " zz" for t in base[:50]]  # one word of 20 changed
    texts = base + edited
    one = near_duplicate_clusters(texts, 0.8)
    assert one == near_duplicate_clusters(texts, 0.8)
    assert one == near_duplicate_clusters(texts, 0.8, MinHashConfig(seed=7))
    assert all(one[200 + i] == i for i in range(50)) and len(set(one)) == 200


def test_word_shingles_and_lsh_bands() -> None:
    texts = ["a b c d e f g h i j", "a b c d e f g h i k", "k l m n o p"]
    assert near_duplicate_pairs(texts, 0.6, MinHashConfig(unit="word", ngram=2))[0][:2] == (0, 1)
    bands, rows = lsh_bands(0.8, 128)
    assert bands * rows <= 128
    assert 1 - (1 - 0.8**rows) ** bands >= 0.98  # a pair at the threshold is almost always a candidate


def test_cross_near_duplicates_names_the_most_similar_reference() -> None:
    refs = [UNRELATED[0], MARKET_LAGOS, MARKET]
    queries = ["@user " + MARKET, MARKET_TOMATOES, UNRELATED[1]]
    got = cross_near_duplicates(queries, refs, threshold=0.7)
    assert got[0] == (2, 1.0)
    assert got[1] is not None and got[1][0] == 1 and got[1][1] >= 0.7  # Lagos (0.77) beats pepper (0.74)
    assert got[2] is None


def test_dedup_near_rejects_name_the_kept_row_and_similarity() -> None:
    records = [rec(MARKET, 2), rec(UNRELATED[0], 3), rec("@user " + MARKET_TOMATOES, 4, "negative")]
    kept, rejects = dedup_near(records, "classification", threshold=0.7)
    assert [r["source"]["line"] for r in kept] == [2, 3]
    assert len(rejects) == 1 and rejects[0].line == 4
    assert rejects[0].reason.startswith("near duplicate (Jaccard 0.7") and rejects[0].reason.endswith("of f.tsv:2")
    assert record_clusters(records, "classification", 0.7) == [0, 1, 0]


def test_small_hashing_windows_give_the_same_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    # Long texts span several hashing windows and shingling batches; the result must not depend on them.
    rng = random.Random(1)
    words = [f"w{i}" for i in range(400)]
    long_text = " ".join(rng.choice(words) for _ in range(3000))
    texts = [
        long_text,
        "@user",
        "short",
        long_text[:-30] + " tail",
        *(" ".join(rng.sample(words, 9)) for _ in range(40)),
    ]
    config = MinHashConfig()
    expected = dedup._signatures(dedup._shingle(texts, config), config)
    monkeypatch.setattr(dedup, "_CHUNK", 97)
    monkeypatch.setattr(dedup, "_BATCH", 50)
    assert (dedup._signatures(dedup._shingle(texts, config), config) == expected).all()
    assert near_duplicate_pairs(texts)[0][:2] == (0, 3)


def test_threshold_must_be_a_similarity() -> None:
    with pytest.raises(ValueError, match="threshold must be in"):
        near_duplicate_pairs(["a b c", "a b d"], threshold=0.0)
