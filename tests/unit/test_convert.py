from __future__ import annotations

from typing import Any

import pytest

from tunesmith.data.convert import (
    choice_to_pairs,
    language_name,
    parallel_to_instructions,
    ranking_to_pairs,
    rating_to_pairs,
    to_pairs,
)
from tunesmith.data.readers import Row
from tunesmith.data.records import to_record
from tunesmith.errors import DataError


def record(kind: str, line: int = 1, **fields: Any) -> dict[str, Any]:
    out = to_record(Row(fields, "in.jsonl", line), kind, {}, [], None)
    assert isinstance(out, dict), out
    return out


def triples(pairs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs]


def test_ranking_gives_all_implied_pairs_and_skips_ties() -> None:
    rec = record("ranking", line=4, prompt="p", responses=["b", "a", "c", "d"], ranks=[2, 1, 2, 3])
    pairs = ranking_to_pairs(rec)
    assert triples(pairs) == [("p", "a", "b"), ("p", "a", "c"), ("p", "a", "d"), ("p", "b", "d"), ("p", "c", "d")]
    assert all(p["source"] == {"file": "in.jsonl", "line": 4} for p in pairs)
    assert len(ranking_to_pairs(record("ranking", prompt="p", responses=["1", "2", "3", "4", "5"]))) == 10


def test_choice_pairs_the_chosen_with_each_other_candidate() -> None:
    rec = record("choice", line=9, prompt="Capital?", candidates=["Lagos", "Abuja", "Kano"], chosen=1)
    assert triples(choice_to_pairs(rec)) == [("Capital?", "Abuja", "Lagos"), ("Capital?", "Abuja", "Kano")]
    assert choice_to_pairs(rec)[0]["source"]["line"] == 9


def test_rating_pairs_by_margin_within_a_prompt() -> None:
    recs = [
        record("rating", line=1, prompt="p", response="ok", score=3),
        record("rating", line=2, prompt="q", response="only one", score=5),
        record("rating", line=3, prompt="p ", response="great", score=5),
        record("rating", line=4, prompt="p", response="bad", score=1),
        record("rating", line=5, prompt="p", response="great", score=1.5),  # same text as line 3: never paired
    ]
    pairs = rating_to_pairs(recs, margin=2)
    assert triples(pairs) == [("p ", "great", "ok"), ("p ", "great", "bad"), ("p", "ok", "bad")]
    assert (pairs[0]["source"]["line"], pairs[0]["rejected_source"]["line"]) == (3, 1)
    assert len(rating_to_pairs(recs, margin=0.5)) == 5
    with pytest.raises(DataError, match="margin must be positive"):
        rating_to_pairs(recs, margin=0)


def test_parallel_to_translation_instructions() -> None:
    rec = record("parallel", line=3, source="Good morning", target="Ẹ kú àárọ̀", source_lang="eng", target_lang="yor")
    fwd, back = parallel_to_instructions(rec)
    assert fwd["instruction"] == "Translate from English to Yoruba:"
    assert (fwd["input"], fwd["output"]) == ("Good morning", "Ẹ kú àárọ̀")
    assert back["instruction"] == "Translate from Yoruba to English:"
    assert (back["input"], back["output"]) == ("Ẹ kú àárọ̀", "Good morning")
    assert fwd["source"] == back["source"] == {"file": "in.jsonl", "line": 3}
    bare = record("parallel", source="Hello", target="Sannu")
    only = parallel_to_instructions(bare, both_directions=False, source_lang="en", target_lang="hau_Latn")
    assert [i["instruction"] for i in only] == ["Translate from English to Hausa:"]
    with pytest.raises(DataError, match=r"in\.jsonl:1: a parallel record needs source_lang and target_lang"):
        parallel_to_instructions(bare)


def test_language_names() -> None:
    assert [language_name(c) for c in ("pcm", "arq", "ary", "swa", "ibo", "fra", "pt-BR")] == [
        "Nigerian Pidgin",
        "Algerian Arabic",
        "Moroccan Arabic",
        "Swahili",
        "Igbo",
        "French",
        "Portuguese",
    ]
    assert language_name("xyz") == "xyz"


def test_to_pairs_dispatches_by_kind() -> None:
    ranking = [record("ranking", prompt="p", responses=["a", "b", "c"])]
    assert len(to_pairs(ranking, "ranking")) == 3
    pref = [record("preference", prompt="p", chosen="a", rejected="b")]
    assert to_pairs(pref, "preference") == pref
    with pytest.raises(DataError, match="do not imply preference pairs"):
        to_pairs([], "classification")
