from __future__ import annotations

import json
from typing import Any

import pytest

from tunesmith.data.dialogue import parse_hh_dialogue
from tunesmith.data.readers import Row
from tunesmith.data.records import (
    KINDS,
    Reject,
    dedup_key,
    detect_kind,
    map_texts,
    primary_text,
    text_fields,
    to_record,
)
from tunesmith.errors import DataError


def make(kind: str, fields: dict[str, Any], columns: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    out = to_record(Row(fields, "f.jsonl", 7), kind, columns or {}, kw.get("groups", []), kw.get("labels"))
    assert isinstance(out, dict), out
    assert out["source"] == {"file": "f.jsonl", "line": 7}
    json.dumps(out)  # canonical records are JSON-serialisable
    return {k: v for k, v in out.items() if k not in ("source", "groups")}


def reject(kind: str, fields: dict[str, Any], columns: dict[str, str] | None = None, **kw: Any) -> Reject:
    out = to_record(Row(fields, "f.jsonl", 7), kind, columns or {}, kw.get("groups", []), kw.get("labels"))
    assert isinstance(out, Reject), out
    assert (out.file, out.line, out.row) == ("f.jsonl", 7, fields)
    return out


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("columns", "kind"),
    [
        (["text"], "text"),
        (["text", "label", "lang"], "classification"),
        (["tweet", "label"], "classification"),
        (["instruction", "input", "output", "text"], "instruction"),
        (["instruction", "context", "response", "category"], "instruction"),
        (["prompt", "completion"], "prompt_completion"),
        (["inputs", "targets", "language"], "prompt_completion"),
        (["messages"], "messages"),
        (["id", "conversations"], "messages"),
        (["source", "target", "source_lang", "target_lang"], "parallel"),
        (["chosen", "rejected"], "preference"),
        (["prompt", "chosen", "rejected"], "preference"),
        (["prompt", "responses", "ranks"], "ranking"),
        (["prompt", "response", "score"], "rating"),
        (["question", "choices", "answer"], "choice"),
        (["prompt", "completion", "label"], "unpaired"),
    ],
)
def test_detect_kind(columns: list[str], kind: str) -> None:
    assert detect_kind(columns) == kind


def test_detect_kind_explains_ambiguity_and_misfits() -> None:
    with pytest.raises(
        DataError, match=r"several record kinds.*classification: text/tweet/sentence \+ label.*instruction"
    ):
        detect_kind(["text", "label", "instruction", "output"])
    with pytest.raises(DataError, match=r"fit several.*preference.*choice"):
        detect_kind(["prompt", "chosen", "rejected", "candidates"])
    with pytest.raises(
        DataError, match=r"No record kind fits the columns \(body, stars\).*rating: prompt \+ response"
    ):
        detect_kind(["body", "stars"])
    assert detect_kind(["body", "stars"], columns={"text": "body", "label": "stars"}) == "classification"


def test_unknown_kind_is_a_data_error() -> None:
    with pytest.raises(DataError, match="Unknown record kind 'chat'"):
        to_record(Row({"text": "a"}, "f", 1), "chat", {}, [], None)


# ---------------------------------------------------------------- messages


def test_openai_and_sharegpt_messages_become_one_shape() -> None:
    openai = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Sannu"},
        {"role": "assistant", "content": [{"type": "text", "text": "Yaya "}, {"type": "text", "text": "dai?"}]},
        {"role": "user", "content": "Lafiya"},
        {"role": "assistant", "content": "Madalla", "weight": 1},
    ]
    share = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Sannu"}]}
    share["conversations"] += [{"from": "gpt", "value": "Yaya dai?"}, {"from": "human", "value": "Lafiya"}]
    share["conversations"] += [{"from": "gpt", "value": "Madalla"}]
    a, b = make("messages", {"messages": openai}), make("messages", share)
    assert a == b
    assert [m["role"] for m in a["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert a["messages"][2] == {"role": "assistant", "content": "Yaya dai?"}
    csv_cell = json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    assert len(make("messages", {"messages": csv_cell})["messages"]) == 2


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"role": "user", "content": "q"}], "ends with a user turn"),
        ([{"role": "assistant", "content": "a"}], "message 1: expected a user turn first"),
        ([{"role": "system", "content": "s"}], "no user turn"),
        (
            [{"role": "user", "content": "q"}, {"role": "user", "content": "q2"}],
            "message 2: expected an assistant turn after a user turn, got user",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}],
            "message 2: a system prompt is only allowed as the first message",
        ),
        ([{"role": "tool", "content": "x"}], "message 1: unknown role 'tool'"),
        ([{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}], "message 1 (user): empty content"),
        ([{"speaker": "user", "text": "q"}], "neither role/content (OpenAI) nor from/value (ShareGPT)"),
        ([], "the conversation is empty"),
        ("not a list", "expected a list, got str"),
        ("[broken", "starts like a JSON list but is not one"),
        ([{"role": "user", "content": 3}], "content must be text, got int"),
    ],
)
def test_bad_conversations_are_rejected_with_the_turn(messages: Any, reason: str) -> None:
    bad = reject("messages", {"messages": messages})
    assert bad.field == "messages" and reason in bad.reason


# ---------------------------------------------------------------- other kinds


def test_simple_kinds_and_column_aliases() -> None:
    assert make("prompt_completion", {"inputs": "Q", "targets": "A"}) == {"prompt": "Q", "completion": "A"}
    assert make("instruction", {"instruction": "Do", "context": "", "response": "Done"}) == {
        "instruction": "Do",
        "input": "",
        "output": "Done",
    }
    par = make("parallel", {"source": "Hello", "target": "Sannu", "source_lang": "eng", "target_lang": " hau "})
    assert par == {"source_text": "Hello", "target_text": "Sannu", "source_lang": "eng", "target_lang": "hau"}
    mapped = make("parallel", {"en": "Hello", "ha": "Sannu"}, columns={"source": "en", "target_text": "ha"})
    assert mapped == {"source_text": "Hello", "target_text": "Sannu"}
    missing = reject("parallel", {"en": "Hello"}, columns={"source": "en"})
    assert missing.field == "target_text" and "missing column 'target_text' or 'target' or 'tgt'" in missing.reason
    grouped = to_record(
        Row({"prompt": "p", "completion": "c", "lang": "yor"}, "f", 1), "prompt_completion", {}, ["lang"], None
    )
    assert isinstance(grouped, dict) and grouped["groups"] == {"lang": "yor"}


def test_preference_explicit_and_hh_rlhf_dialogues() -> None:
    assert make("preference", {"prompt": "p", "chosen": "good", "rejected": "bad"}) == {
        "prompt": "p",
        "chosen": "good",
        "rejected": "bad",
    }
    hh = {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: A short one.",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: No.",
    }
    rec = make("preference", hh)
    assert rec == {
        "prompt": "Human: Hi\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant:",
        "chosen": "A short one.",
        "rejected": "No.",
    }
    assert parse_hh_dialogue(rec["prompt"]) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke"},
    ]
    # an irregular pair (an inline "Human:" in one answer) still splits where the dialogues diverge
    odd = {"chosen": hh["chosen"] + " Human: more?", "rejected": hh["rejected"]}
    assert make("preference", odd)["chosen"] == "A short one. Human: more?"
    assert "not HH-RLHF dialogues" in reject("preference", {"chosen": "a", "rejected": "b"}).reason
    empty = reject("preference", {"chosen": hh["chosen"], "rejected": hh["rejected"].replace(" No.", " ")})
    assert empty.field == "rejected" and "rejected answer is empty" in empty.reason
    same = reject("preference", {"prompt": "p", "chosen": "x", "rejected": " x"})
    assert same.reason == "chosen and rejected are the same text"


def test_ranking_rating_choice_unpaired() -> None:
    ranked = make("ranking", {"prompt": "p", "responses": ["a", "b", "c"]})
    assert ranked == {"prompt": "p", "responses": ["a", "b", "c"], "ranks": [1, 2, 3]}
    assert make("ranking", {"prompt": "p", "responses": '["a", "b"]', "ranks": ["2", 1.0]})["ranks"] == [2, 1]
    assert (
        "2 ranks for 3 responses"
        in reject("ranking", {"prompt": "p", "responses": ["a", "b", "c"], "ranks": [1, 2]}).reason
    )
    assert "all responses tie" in reject("ranking", {"prompt": "p", "responses": ["a", "b"], "ranks": [1, 1]}).reason
    assert "item 2 repeats item 0" in reject("ranking", {"prompt": "p", "responses": ["a", "b", " a"]}).reason
    assert "at least 2 items" in reject("ranking", {"prompt": "p", "responses": ["a"]}).reason
    assert (
        "rank 0 is not an integer"
        in reject("ranking", {"prompt": "p", "responses": ["a", "b"], "ranks": [True, 2]}).reason
    )

    assert make("rating", {"prompt": "p", "response": "r", "score": " 4.5"})["score"] == 4.5
    for bad in ("high", True, float("inf"), [1]):
        assert reject("rating", {"prompt": "p", "response": "r", "score": bad}).field == "score"

    cands = ["Abuja", "Lagos", "Kano"]
    for chosen, index in ((1, 1), ("2", 2), ("Kano", 2), ("B", 1), (0.0, 0)):
        assert make("choice", {"question": "q", "choices": cands, "answer": chosen})["chosen"] == index
    assert "out of range" in reject("choice", {"prompt": "q", "candidates": cands, "chosen": 3}).reason
    assert "neither a candidate" in reject("choice", {"prompt": "q", "candidates": cands, "chosen": "Ibadan"}).reason
    numeric = reject("choice", {"prompt": "q", "candidates": ["1", "2"], "chosen": "1"})
    assert "both candidate 0 and index 1" in numeric.reason

    for label, value in ((True, True), ("good", True), (0, False), ("BAD", False), ("1", True)):
        assert make("unpaired", {"prompt": "p", "completion": "r", "label": label})["label"] is value
    assert "not a good/bad label" in reject("unpaired", {"prompt": "p", "response": "r", "label": "maybe"}).reason


def test_type_and_emptiness_checks() -> None:
    assert reject("text", {"text": ["a"]}).reason == "expected text, got list"
    assert reject("text", {"text": None}).reason == "value is null"
    assert reject("text", {"text": float("nan")}).reason == "value is null"
    assert "unpaired surrogate" in reject("text", {"text": "bad \ud800"}).reason
    assert reject("prompt_completion", {"prompt": "p", "completion": "  "}).reason == "empty value"
    assert make("text", {"text": 12}) == {"text": "12"}
    assert reject("classification", {"text": "t", "label": "x"}, labels=["pos"]).field == "label"


def test_reject_rows_are_json_safe() -> None:
    bad = reject("text", {"text": b"\xff bytes", "when": object(), "s": "\udc80"})
    encoded = json.dumps(bad.to_json(), ensure_ascii=False).encode("utf-8")
    assert b"bytes" in encoded


# ---------------------------------------------------------------- text fields, dedup keys


SAMPLES: dict[str, dict[str, Any]] = {
    "text": {"text": "A b"},
    "classification": {"text": "A b", "label": "pos"},
    "instruction": {"instruction": "Do", "input": "X", "output": "Y"},
    "prompt_completion": {"prompt": "P", "completion": "C"},
    "messages": {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
    "parallel": {"source": "Hi", "target": "Sannu", "source_lang": "eng", "target_lang": "hau"},
    "preference": {"prompt": "P", "chosen": "C", "rejected": "R"},
    "ranking": {"prompt": "P", "responses": ["x", "y"]},
    "rating": {"prompt": "P", "response": "R", "score": 3},
    "choice": {"prompt": "P", "candidates": ["x", "y"], "chosen": 0},
    "unpaired": {"prompt": "P", "response": "R", "label": True},
}

# free texts in each sample (roles, languages, labels, scores are not)
TEXT_COUNTS = {"text": 1, "classification": 1, "instruction": 3, "prompt_completion": 2, "messages": 2, "parallel": 2}
TEXT_COUNTS |= {"preference": 3, "ranking": 3, "rating": 2, "choice": 3, "unpaired": 2}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_text_fields_keys_and_text_mapping(kind: str) -> None:
    record = make(kind, SAMPLES[kind])
    assert set(text_fields(kind)) <= set(record)
    assert dedup_key(record, kind) and dedup_key(record, kind) == dedup_key(map_texts(record, kind, str.upper), kind)
    marked = map_texts(record, kind, lambda s: f"<{s}>")
    assert json.dumps(marked).count("<") == TEXT_COUNTS[kind]
    assert primary_text(marked, kind).startswith("<")


def test_dedup_keys_ignore_answers_and_judgements() -> None:
    chat = make("messages", SAMPLES["messages"])
    other = {"messages": [*chat["messages"][:-1], {"role": "assistant", "content": "different"}]}
    assert dedup_key(chat, "messages") == dedup_key(other, "messages")
    r1 = make("ranking", {"prompt": "P", "responses": ["x", "y"]})
    r2 = make("ranking", {"prompt": "p", "responses": ["y", "X"], "ranks": [1, 2]})
    assert dedup_key(r1, "ranking") == dedup_key(r2, "ranking")
    assert dedup_key({"instruction": "Do", "input": "X", "output": "1"}, "instruction") == dedup_key(
        {"instruction": "do", "input": "x", "output": "2"}, "instruction"
    )
