"""`prepare_data` across record kinds: detection, cleaning with repairs, language tags, conversions, chats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.config.schema import CleanConfig, DataConfig, RunConfig
from tunesmith.data.clean import mask_personal
from tunesmith.data.format import IGNORE_INDEX, tokenize_example
from tunesmith.data.prepare import prepare_data
from tunesmith.errors import ConfigError, DataError
from tunesmith.rundir import RunDir, read_jsonl

PIDGIN = [
    "how una dey this morning my people",
    "dis film sweet well well, I go watch am again",
    "wetin dey happen for Lagos today abeg",
    "na so dem dey do am for here",
    "e no easy at all, but we go survive",
    "make una no vex, I dey come back",
]
HAUSA = [
    "ina kwana yaya aiki da iyali",
    "allah ya kiyaye mu daga sharrin zamani",
    "wannan fim din yana da kyau sosai",
    "mun gode da wannan labari mai dadi",
    "yau akwai ruwan sama a kano",
    "ba zan iya zuwa gobe ba saboda aiki",
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_auto_detects_classification_tags_languages_and_stratifies_by_them(tmp_path: Path) -> None:
    rows = [{"tweet": t, "label": "positive" if i % 2 else "negative"} for i, t in enumerate(PIDGIN * 3 + HAUSA * 3)]
    rows = [{**r, "tweet": f"{r['tweet']} {i} {'x' * (i % 7)}"} for i, r in enumerate(rows)]  # distinct rows
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    config = DataConfig(
        train=str(train),
        format="auto",
        clean=CleanConfig(near_dup=None),
        split={"validation": 0.25, "test": 0.25, "stratify": ["language"], "min_per_stratum": 5},
    )
    run = RunDir(tmp_path / "run")
    result = prepare_data(config, run)
    manifest = json.loads(run.manifest.read_text())
    assert result.kind == manifest["format"] == "classification"
    prepared = read_jsonl(run.split("train"))
    assert {r["detected"]["script"] for r in prepared} == {"Latin"}
    for name in ("train", "validation", "test"):
        langs = manifest["languages"][name]
        assert set(langs) == {"pcm", "hau"}, (name, langs)  # stratified: both languages in every split
    assert any("minimum 5" in w for w in manifest["warnings"])  # 4-5 rows per language in the held-out splits


def test_homoglyph_repairs_are_listed_and_flag_mode_changes_nothing(tmp_path: Path) -> None:
    greek_o = "\u03bf"  # Greek omicron inside Latin words
    rows = [{"text": f"\u1ecdm{greek_o} mi wa nibi {i}"} for i in range(6)]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    for mode, expect_greek in (("repair", False), ("flag", True)):
        run = RunDir(tmp_path / mode)
        config = DataConfig(
            train=str(train), format="text", clean=CleanConfig(homoglyphs=mode, near_dup=None), split={"test": 0.0}
        )
        prepare_data(config, run)
        texts = [r["text"] for name in ("train", "validation") for r in read_jsonl(run.split(name))]
        assert any(greek_o in t for t in texts) is expect_greek
        changes = read_jsonl(run.data / "changes.jsonl")
        assert len(changes) == 6 and all(c["line"] >= 1 and mode in c["step"] for c in changes)


def test_near_duplicate_rows_and_leaks_are_rejected_with_the_other_row(tmp_path: Path) -> None:
    base = "the new phone from this company is really good value for money"
    train = _write_jsonl(
        tmp_path / "train.jsonl",
        [{"text": base, "label": "positive"}, {"text": base + "!!", "label": "positive"}]
        + [{"text": f"{t} {i}", "label": "negative"} for i, t in enumerate(PIDGIN)],
    )
    test = _write_jsonl(tmp_path / "test.jsonl", [{"text": "@user " + base + " !", "label": "positive"}])
    run = RunDir(tmp_path / "run")
    result = prepare_data(DataConfig(train=str(train), test=str(test), split={"validation": 0.0}), run)
    reasons = [r["reason"] for r in read_jsonl(run.rejects)]
    assert any(r.startswith("near duplicate (Jaccard") and "train.jsonl:1" in r for r in reasons)
    # the test row is gone: it is a near-duplicate leak of train row 1
    assert result.counts["test"] == 0 and "test.jsonl" not in json.dumps(read_jsonl(run.split("train")))
    assert any("test row also in train as a near duplicate" in r for r in reasons)


def test_ranking_converts_to_preference_pairs_within_one_split(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"question {i}: {t}", "responses": [f"best {i}", f"middle {i}", f"worst {i}"]}
        for i, t in enumerate(PIDGIN + HAUSA)
    ]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    run = RunDir(tmp_path / "run")
    config = DataConfig(
        train=str(train), format="ranking", convert="pairs", clean=CleanConfig(near_dup=None), split={"test": 0.25}
    )
    result = prepare_data(config, run)
    assert result.kind == "preference"
    pairs = [p for name in ("train", "validation", "test") for p in read_jsonl(run.split(name))]
    assert len(pairs) == 3 * len(rows)  # every implied pair of a 3-way ranking
    assert all({"prompt", "chosen", "rejected", "detected"} <= set(p) for p in pairs)
    for name in ("validation", "test"):  # the pairs of one ranking never straddle splits
        held = {p["source"]["line"] for p in read_jsonl(run.split(name))}
        assert not held & {p["source"]["line"] for p in read_jsonl(run.split("train"))}


def test_preference_data_is_refused_by_sft_with_a_hint() -> None:
    with pytest.raises(ConfigError, match="data.convert: pairs"):
        RunConfig.model_validate(
            {"name": "x", "data": {"train": "x.jsonl", "format": "ranking"}, "train": {"objective": "sft"}}
        ).check_trainable()


def test_chat_turns_are_labelled_per_loss_on(tiny_model) -> None:
    _, tokenizer = tiny_model
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "hi there"},
        {"role": "user", "content": "how are you"},
        {"role": "assistant", "content": "fine thanks"},
    ]
    full = tokenize_example({"messages": messages}, tokenizer, "completion")
    last = tokenize_example({"messages": messages}, tokenizer, "last_turn")
    every = tokenize_example({"messages": messages}, tokenizer, "all")
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer.decode(full["input_ids"]) == tokenizer.decode(
        tokenizer(rendered, add_special_tokens=False)["input_ids"]
    )
    labelled = tokenizer.decode([t for t in full["labels"] if t != IGNORE_INDEX])
    assert "hi there" in labelled and "fine thanks" in labelled and "hello" not in labelled and "brief" not in labelled
    only_last = tokenizer.decode([t for t in last["labels"] if t != IGNORE_INDEX])
    assert "fine thanks" in only_last and "hi there" not in only_last
    assert every["labels"] == every["input_ids"]


def test_messages_prepare_gives_prompt_and_completion_for_evaluation(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": f"{t} ?"}, {"role": "assistant", "content": f"answer {i}"}]}
        for i, t in enumerate(PIDGIN + HAUSA)
    ]
    train = _write_jsonl(tmp_path / "chat.jsonl", rows)
    run = RunDir(tmp_path / "run")
    result = prepare_data(DataConfig(train=str(train), format="auto", split={"test": 0.2}), run)
    assert result.kind == "messages"
    row = read_jsonl(run.split("train"))[0]
    assert row["prompt"] == row["messages"][:-1] and row["completion"] == row["messages"][-1]["content"]


def test_mask_personal_data() -> None:
    text = "mail me at ade.b@example.com or +234 803 123 4567, see https://x.co/a @tunde"
    masked = mask_personal(text, ["urls", "emails", "users", "phones"])
    assert masked == "mail me at <EMAIL> or <PHONE>, see <URL> @user"
    assert mask_personal(text, []) == text


def test_auto_detection_names_the_file_when_no_kind_fits(tmp_path: Path) -> None:
    train = _write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1, "bar": 2}])
    with pytest.raises(DataError, match=r"odd\.jsonl: data\.format auto: No record kind fits"):
        prepare_data(DataConfig(train=str(train), format="auto"), RunDir(tmp_path / "run"))


def test_streaming_prepare_keeps_every_row_accounted_for(tmp_path: Path) -> None:
    lines = ["tweet\tlabel"]
    for i in range(300):
        text = PIDGIN[i % 6] if i % 10 == 0 else f"{PIDGIN[i % 6]} number {i}"  # every 10th row repeats
        lines.append(f"{text}\t{'positive' if i % 3 else 'negative'}")
    lines.append("no label column here")
    train = tmp_path / "big.tsv"
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = DataConfig(train=str(train), stream="on", split={"validation": 0.1, "test": 0.1})
    run = RunDir(tmp_path / "run")
    result = prepare_data(config, run, seed=3)
    manifest = json.loads(run.manifest.read_text())
    assert result.streamed and manifest["streamed"] and manifest["input_rows"] == 301
    kept = {name: read_jsonl(run.split(name)) for name in ("train", "validation", "test")}
    rejects = read_jsonl(run.rejects)
    assert sum(map(len, kept.values())) + len(rejects) == 301  # rows in == kept + rejected
    assert sum(1 for r in rejects if "exact duplicate" in r["reason"]) == 30 - 3  # 30 rows of 3 texts
    assert 15 <= len(kept["validation"]) <= 45 and 15 <= len(kept["test"]) <= 45
    assert all(r["prompt"] and r["completion"] in ("positive", "negative") for r in kept["train"])
    assert set(manifest["languages_in_sample"]) and sum(manifest["languages_in_sample"].values()) == 273
    again = RunDir(tmp_path / "again")
    prepare_data(config, again, seed=3)
    assert run.split("test").read_bytes() == again.split("test").read_bytes()  # seeded: same split


def test_strict_fails_on_rejects_and_splits_are_also_arrow(tmp_path: Path) -> None:
    rows = [{"text": f"{t} {i}", "label": "positive" if i % 2 else "negative"} for i, t in enumerate(PIDGIN + HAUSA)]
    train = _write_jsonl(tmp_path / "train.jsonl", [*rows, {"text": "", "label": "positive"}])
    config = DataConfig(train=str(train), split={"test": 0.25})
    run = RunDir(tmp_path / "run")
    prepare_data(config, run)  # one empty row: rejected, not fatal
    from datasets import Dataset

    arrow = Dataset.from_file(str(run.split("train").with_suffix(".arrow")))
    assert arrow.num_rows == len(read_jsonl(run.split("train"))) and "prompt" in arrow.column_names
    with pytest.raises(DataError, match=r"data.strict: 1 rows were rejected: empty value \(1\)"):
        prepare_data(config.model_copy(update={"strict": True}), RunDir(tmp_path / "strict"))
    assert read_jsonl(RunDir(tmp_path / "strict").rejects)  # written before failing


def test_keep_together_puts_each_document_in_one_split(tmp_path: Path) -> None:
    rows = [{"text": f"{t} sentence {i}", "doc": f"d{i // 4}"} for i, t in enumerate((PIDGIN + HAUSA) * 4)]
    train = _write_jsonl(tmp_path / "docs.jsonl", rows)
    config = DataConfig(
        train=str(train),
        format="text",
        groups=["doc"],
        clean=CleanConfig(near_dup=None),
        split={"validation": 0.2, "test": 0.2, "stratify": [], "keep_together": "doc"},
    )
    run = RunDir(tmp_path / "run")
    prepare_data(config, run)
    where: dict[str, set[str]] = {}
    for name in ("train", "validation", "test"):
        for r in read_jsonl(run.split(name)):
            where.setdefault(r["groups"]["doc"], set()).add(name)
    assert len(where) == 12 and all(len(splits) == 1 for splits in where.values())
    assert {n for s in where.values() for n in s} == {"train", "validation", "test"}


def test_align_pairs_line_aligned_files_and_refuses_a_shift(tmp_path: Path) -> None:
    from tunesmith.data.align import align_files

    src, tgt, docs = tmp_path / "a.eng.txt", tmp_path / "a.hau.txt", tmp_path / "docs.tsv"
    src.write_bytes(b"Good morning\r\nThank you\r\n\r\nSee you\r\n")  # CRLF, as NTREX ships
    tgt.write_bytes(b"Ina kwana\r\nNa gode\r\n\r\nSai an jima\r\n")
    docs.write_text("d1\nd1\nd2\nd2\n")
    rows = list(align_files(src, tgt, "eng", "hau", docs))
    assert [(r["source"], r["target"], r["doc"], r["line"]) for r in rows] == [
        ("Good morning", "Ina kwana", "d1", 1),
        ("Thank you", "Na gode", "d1", 2),
        ("See you", "Sai an jima", "d2", 4),
    ]
    tgt.write_text("Ina kwana\nNa gode\n")
    with pytest.raises(DataError, match=r"a\.eng\.txt: 4 lines, .*a\.hau\.txt: 2 lines"):
        list(align_files(src, tgt, "eng", "hau"))
