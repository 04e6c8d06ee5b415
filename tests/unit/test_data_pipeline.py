from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tunesmith.config.schema import CleanConfig, DataConfig
from tunesmith.data.clean import clean_records, normalize_text, strip_invisible
from tunesmith.data.format import IGNORE_INDEX, load_template, to_example, tokenize_example
from tunesmith.data.prepare import prepare_data
from tunesmith.data.readers import Row
from tunesmith.data.records import Reject, to_record
from tunesmith.data.split import remove_leaks, stratified_split
from tunesmith.errors import ConfigError, DataError
from tunesmith.rundir import RunDir, read_jsonl


def rec(text: str, label: str = "positive", line: int = 1, **groups: str) -> dict:
    return {"text": text, "label": label, "groups": groups, "source": {"file": "f.tsv", "line": line}}


def test_to_record_maps_columns_and_rejects_with_field_and_reason() -> None:
    cols = {"text": "tweet"}
    ok = to_record(Row({"tweet": "hi", "label": " positive "}, "f", 2), "classification", cols, [], None)
    assert isinstance(ok, dict) and ok["text"] == "hi" and ok["label"] == "positive"
    missing = to_record(Row({"text": "hi", "label": "x"}, "f", 3), "classification", cols, [], None)
    assert isinstance(missing, Reject) and missing.field == "tweet" and "missing column" in missing.reason
    empty = to_record(Row({"tweet": "  ", "label": "x"}, "f", 4), "classification", cols, [], None)
    assert isinstance(empty, Reject) and empty.reason == "empty value" and empty.line == 4
    bad_label = to_record(Row({"tweet": "a", "label": "meh"}, "f", 5), "classification", cols, [], ["pos", "neg"])
    assert isinstance(bad_label, Reject) and "not in the label set" in bad_label.reason
    no_group = to_record(Row({"tweet": "a", "label": "pos"}, "f", 6), "classification", cols, ["language"], None)
    assert isinstance(no_group, Reject) and no_group.field == "language"


def test_cleaning_steps() -> None:
    assert normalize_text("e\u0301", "nfc") == "\u00e9"
    assert strip_invisible("a\u200b b\x07  c\u00a0d") == "a b c d"
    kept, rejects = clean_records(
        [rec("Hello  world", line=1), rec("hello world", line=2), rec("x", line=3), rec("other", line=4)],
        "classification",
        CleanConfig(min_chars=2),
    )
    assert [r["text"] for r in kept] == ["Hello world", "other"]
    reasons = sorted(r.reason for r in rejects)
    assert reasons[0].startswith("exact duplicate of f.tsv:1") and "min_chars" in reasons[1]


def test_stratified_split_is_deterministic_and_stratified() -> None:
    records = [rec(f"t{i}", "a" if i % 4 else "b", line=i) for i in range(200)]
    one = stratified_split(records, {"validation": 0.1, "test": 0.2}, ["label"], seed=3)
    two = stratified_split(records, {"validation": 0.1, "test": 0.2}, ["label"], seed=3)
    other = stratified_split(records, {"validation": 0.1, "test": 0.2}, ["label"], seed=4)
    assert one == two and one != other
    assert {k: len(v) for k, v in one.items()} == {"train": 140, "validation": 20, "test": 40}
    assert Counter(r["label"] for r in one["test"]) == {"a": 30, "b": 10}
    assert sum(len(v) for v in one.values()) == 200


def test_leak_removal_keeps_train_and_reports_eval_copies() -> None:
    splits = {
        "train": [rec("Same text", line=1)],
        "test": [rec("same  TEXT", "negative", line=9), rec("new", line=10)],
    }
    out, rejects = remove_leaks(splits, "classification")
    assert [r["text"] for r in out["test"]] == ["new"]
    assert len(rejects) == 1 and rejects[0].line == 9 and "also in train" in rejects[0].reason


def test_template_rendering_and_missing_template() -> None:
    t = load_template("sentiment")
    ex = to_example(rec("na wa o"), "classification", t, ["negative", "neutral", "positive"])
    assert "negative, neutral or positive" in ex["prompt"] and ex["prompt"].endswith("Tweet: na wa o")
    assert ex["completion"] == "positive"
    with pytest.raises(ConfigError, match="neither a file nor a shipped template"):
        load_template("no-such-template")


def test_tokenize_masks_the_prompt(tiny_model) -> None:
    _, tok = tiny_model
    ex = tokenize_example({"prompt": "Tweet: hi", "completion": "positive"}, tok, "completion")
    labelled = [t for t, lab in zip(ex["input_ids"], ex["labels"], strict=True) if lab != IGNORE_INDEX]
    assert tok.decode(labelled).startswith("positive<|im_end|>")
    assert ex["labels"][0] == IGNORE_INDEX
    everything = tokenize_example({"prompt": "Tweet: hi", "completion": "positive"}, tok, "all")
    assert everything["labels"] == everything["input_ids"]
    text = tokenize_example({"text": "raw words"}, tok, "completion")
    assert text["labels"] == text["input_ids"] and text["input_ids"][-1] == tok.eos_token_id


def test_prepare_writes_splits_manifest_and_every_reject(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_text(
        "tweet\tlabel\na good day\tpositive\nbad day\tnegative\nA  good day\tpositive\n\tnegative\n"
        "x\tneutral\nfine\tpositive\nawful\tnegative\nok\tpositive\nmeh\tnegative\n"
    )
    test = tmp_path / "test.tsv"
    test.write_text("tweet\tlabel\nbad day\tnegative\nunseen\tpositive\n")
    config = DataConfig(
        train=str(train),
        test=str(test),
        columns={"text": "tweet"},
        clean=CleanConfig(min_chars=2),
        split={"validation": 0.0},
    )
    run = RunDir(tmp_path / "run")
    result = prepare_data(config, run, seed=0)
    manifest = json.loads(run.manifest.read_text())
    rejects = read_jsonl(run.rejects)
    kept = sum(manifest["splits"][s]["rows"] for s in manifest["splits"])
    assert manifest["input_rows"] == 11 == kept + len(rejects)  # nothing lost silently
    reasons = {r["line"]: r["reason"] for r in rejects}
    assert "empty value" in reasons[5] and "exact duplicate" in reasons[4] and "min_chars" in reasons[6]
    assert "also in train" in reasons[2]  # the leaked test row (line 2 of test.tsv)
    assert result.counts["test"] == 1 and result.labels == ["negative", "positive"]
    first = read_jsonl(run.split("train"))[0]
    assert {"prompt", "completion", "source", "text", "label"} <= set(first)


def test_prepare_fails_clearly_when_no_row_is_valid(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_text("text\tsentiment\na\tpositive\n")
    with pytest.raises(DataError, match="missing column 'label'"):
        prepare_data(DataConfig(train=str(train)), RunDir(tmp_path / "run"))


def test_eval_label_unseen_in_train_is_kept_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "tr.tsv").write_text("text\tlabel\na\tpositive\nb\tpositive\n")
    (tmp_path / "te.tsv").write_text("text\tlabel\nc\tnegative\n")
    config = DataConfig(train=str(tmp_path / "tr.tsv"), test=str(tmp_path / "te.tsv"), split={"validation": 0})
    result = prepare_data(config, RunDir(tmp_path / "run"))
    assert result.labels == ["negative", "positive"] and result.counts["test"] == 1
    assert any("never occur in train (label shift)" in w for w in result.warnings)
    labelled = DataConfig(**{**config.model_dump(), "labels": ["positive"]})
    assert prepare_data(labelled, RunDir(tmp_path / "run2")).counts["test"] == 0  # an explicit set rejects it


def test_replay_rows_are_mixed_into_train_only(tmp_path: Path) -> None:
    from tunesmith.config.schema import ReplayConfig

    train = tmp_path / "train.tsv"
    train.write_text(
        "tweet\tlabel\n" + "".join(f"tweet {i}\t{'positive' if i % 2 else 'negative'}\n" for i in range(20))
    )
    general = tmp_path / "general.txt"
    general.write_text("".join(f"general sentence number {i}\n" for i in range(50)) + "x\n")
    config = DataConfig(
        train=str(train),
        columns={"text": "tweet"},
        clean=CleanConfig(min_chars=2, near_dup=None),  # the templated replay sentences are near duplicates
        split={"validation": 0.2, "test": 0.0},
        replay=ReplayConfig(path=str(general), ratio=0.25),
    )
    run = RunDir(tmp_path / "run")
    prepare_data(config, run, seed=0)
    rows = read_jsonl(run.split("train"))
    replayed = [r for r in rows if r.get("replay")]
    assert len(rows) - len(replayed) == 16 and len(replayed) == 4  # 0.25 x 16 train rows
    assert all("text" in r and "prompt" not in r for r in replayed)
    assert not any(r.get("replay") for r in read_jsonl(run.split("validation")))
    manifest = json.loads(run.manifest.read_text())
    assert manifest["replay"]["rows"] == 4 and manifest["replay"]["available"] == 50
    assert any("general.txt" in r["file"] for r in read_jsonl(run.rejects))  # the 1-char line, on file
