"""The dataset profile, the data card (JSON + HTML) and ``tunesmith data inspect``, on tiny hand-made records."""

from __future__ import annotations

import html.parser
import json
import math
from pathlib import Path
from typing import Any

import pytest

from tunesmith.data.card import render_card, write_card
from tunesmith.data.fertility import encode_all
from tunesmith.data.findings import reason_class, rejects_summary
from tunesmith.data.inspect import inspect_files, split_names
from tunesmith.data.profile import SECTIONS, percentiles, profile_dataset, profile_split, split_order, split_role
from tunesmith.data.records import Reject
from tunesmith.errors import DataError

ASSETS = Path(__file__).parents[1] / "assets"
ENGLISH = frozenset(["the", "of", "and", "is", "was", "it", "in", "to", "this", "that"])


class WordListIdentifier:
    """A stub identifier: a word is English when it is in ``ENGLISH``, else Yorùbá; a row with one is English."""

    def predict_words(self, text: str) -> list[tuple[str, str]]:
        return [(w, "eng" if w.lower() in ENGLISH else "yor") for w in text.split()]

    def predict(self, text: str) -> tuple[str, float]:
        return ("eng", 1.0) if any(t == "eng" for _, t in self.predict_words(text)) else ("yor", 1.0)


def rec(text: str, label: str = "positive", line: int = 1, file: str = "train.tsv", **extra: Any) -> dict[str, Any]:
    return {"text": text, "label": label, "groups": {}, "source": {"file": file, "line": line}, **extra}


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(ASSETS / "tiny-tokenizer" / "tokenizer.json"))


LONG = "the committee met on tuesday to discuss the new budget for the regional water and sanitation project"
TRAIN = [
    rec(LONG, line=1),
    rec("omo mi wa nile", "negative", line=2),
    rec("omo mi wa nile", "negative", line=3),  # exact duplicate of line 2
    rec("@user omo mi wa nile", "negative", line=4),  # near duplicate: mentions are ignored
    rec("ile iwe ti a ko", "neutral", line=5),
    rec("<script>alert(1)</script> the end", "neutral", line=6),
    rec("<script>alert(1)</script> the end", "neutral", line=7),
]
TEST = [
    rec("omo mi wa nile", "positive", line=1, file="test.tsv"),  # leaked verbatim (label differs: still a leak)
    rec(LONG.replace("tuesday", "monday"), line=2, file="test.tsv"),  # leaked with one word changed
    rec("oja ti a ra lana", "negative", line=3, file="test.tsv"),
]


@pytest.fixture(scope="module")
def card() -> dict[str, Any]:
    return profile_dataset({"test": TEST, "train": TRAIN}, "classification", identifier=WordListIdentifier())


def test_card_has_every_section_and_orders_splits_by_role(card: dict[str, Any]) -> None:
    assert card["splits"] == ["train", "test"]  # given test first: train is still the earlier split
    assert set(SECTIONS) <= set(card) and card["kind"] == "classification"
    assert card["counts"] == {"train": 7, "test": 3}
    json.dumps(card)  # JSON-ready


def test_an_empty_split_still_makes_a_card() -> None:
    card = profile_dataset({"train": [], "test": TEST}, "classification", identifier=WordListIdentifier())
    assert card["counts"] == {"train": 0, "test": 3} and card["leaks"][0]["rows"] == 0
    assert card["cmi"]["train"]["histogram"][0] == ["0-10", 0]
    assert 'id="fertility"' in render_card(card, "empty")


def test_exact_and_near_duplicates_are_counted(card: dict[str, Any]) -> None:
    train = card["duplicates"]["train"]
    assert train["exact"] == 2  # line 3 repeats line 2, line 7 repeats line 6
    assert train["label_conflicts"] == 0
    assert train["near_clusters"] == 2 and train["near_rows"] == 5
    assert train["largest"][0]["size"] == 3
    assert [e["source"] for e in train["largest"][0]["examples"]] == ["train.tsv:2", "train.tsv:3", "train.tsv:4"]
    assert dict(train["cluster_sizes"])["3"] == 1 and dict(train["cluster_sizes"])["2"] == 1


def test_planted_test_to_train_leaks_are_found(card: dict[str, Any]) -> None:
    (leak,) = card["leaks"]
    assert (leak["earlier"], leak["later"]) == ("train", "test")
    assert (leak["exact"], leak["near"], leak["rows"], leak["of_rows"]) == (1, 1, 2, 3)
    assert leak["exact_examples"][0]["source"] == "test.tsv:1"
    assert leak["exact_examples"][0]["earlier"] == "train.tsv:2"
    near = leak["near_examples"][0]
    assert near["source"] == "test.tsv:2" and near["earlier"] == "train.tsv:1" and 0.8 <= near["jaccard"] < 1


def test_labels_and_label_by_language_table(card: dict[str, Any]) -> None:
    assert card["labels"]["train"] == {"negative": 3, "neutral": 3, "positive": 1}
    assert card["languages"]["train"] == {"yor": 4, "eng": 3}
    assert card["label_by_language"]["train"] == {
        "yor": {"negative": 3, "neutral": 1},
        "eng": {"neutral": 2, "positive": 1},
    }
    assert card["label_by_language"]["test"] == {"yor": {"negative": 1, "positive": 1}, "eng": {"positive": 1}}


def test_a_text_repeated_with_another_label_is_a_conflict() -> None:
    rows = [rec("omo mi", "positive"), rec("omo  MI", "negative"), rec("ile", "neutral"), rec("ile", "neutral")]
    dups = profile_split(rows, "classification", identifier=WordListIdentifier())["duplicates"]
    assert (dups["exact"], dups["label_conflicts"]) == (2, 1)


def test_detected_language_on_a_record_is_used_instead_of_predicting() -> None:
    rows = [rec("omo mi", detected={"language": "pcm"}), rec("omo mi")]
    split = profile_split(rows, "classification", identifier=WordListIdentifier())
    assert split["languages"] == {"pcm": 1, "yor": 1}


def test_cmi_histogram_sums_to_rows_and_bins_mixed_rows() -> None:
    rows = [rec("omo mi wa"), rec("the omo"), rec("the omo mi wa"), rec("123 !!")]
    cmi = profile_split(rows, "classification", identifier=WordListIdentifier())["cmi"]
    assert sum(n for _, n in cmi["histogram"]) == cmi["rows"] == 4
    hist = dict(cmi["histogram"])
    assert hist["0-10"] == 2 and hist["50-60"] == 1 and hist["20-30"] == 1  # CMI 0, 0, 50, 25
    assert cmi["mixed_fraction"] == 0.5


def test_stage_one_cmi_is_used_when_every_row_has_one() -> None:
    rows = [
        rec("the omo", detected={"language": "yor", "cmi": 33.3}),
        rec("omo", detected={"language": "yor", "cmi": 0}),
    ]
    cmi = profile_split(rows, "classification", identifier=WordListIdentifier(), cmi_rows=1)["cmi"]
    assert cmi["rows"] == 2 and dict(cmi["histogram"])["30-40"] == 1  # not re-measured (that would give 50)


def test_cmi_is_measured_on_an_even_sample_when_capped() -> None:
    rows = [rec(f"omo {i}") for i in range(10)]
    cmi = profile_split(rows, "classification", identifier=WordListIdentifier(), cmi_rows=4)["cmi"]
    assert (cmi["rows"], cmi["of_rows"]) == (4, 10) and sum(n for _, n in cmi["histogram"]) == 4


def test_lengths_scripts_and_homoglyphs() -> None:
    rows = [rec("ab cd"), rec("ϙmϙ mi"), rec("ሰላም ነው")]
    split = profile_split(rows, "classification", identifier=WordListIdentifier())
    assert split["lengths"]["text"]["words"] == {"p5": 2, "p50": 2, "p95": 2, "max": 2, "mean": 2.0}
    assert split["scripts"]["dominant"] == {"Latin": 2, "Ethiopic": 1}
    assert split["homoglyphs"]["rows"] == 1
    assert split["homoglyphs"]["top"][0] | {"first": ""} == {
        "word": "ϙmϙ",
        "count": 1,
        "scripts": ["GREEK", "LATIN"],
        "suggestion": "ọmọ",
        "first": "",
    }


def test_literal_escapes_are_counted_and_not_taken_for_mixed_script_words() -> None:
    rows = [rec("ههههه كل يوم\\nوعلاه ما نقصوش"), rec("plain")]  # arq: a backslash and n, written out
    split = profile_split(rows, "classification", identifier=WordListIdentifier())
    assert split["homoglyphs"]["literal_escapes"] == 1 and split["homoglyphs"]["rows"] == 0


def test_percentiles_use_nearest_rank() -> None:
    assert percentiles(list(range(1, 101))) == {"p5": 5, "p50": 50, "p95": 95, "max": 100, "mean": 50.5}
    assert percentiles([]) == {"p5": 0, "p50": 0, "p95": 0, "max": 0, "mean": 0.0}


def test_fertility_on_the_tiny_byte_level_tokenizer() -> None:
    tokenizer = tiny_tokenizer()
    assert "ByteLevel" in tokenizer.to_str()  # the definition below relies on byte-level BPE
    rows = [
        rec("the cat sat on the mat", detected={"language": "eng"}),
        rec("ọmọ ẹgbẹ́ ṣé", detected={"language": "yor"}),
    ]
    split = profile_split(rows, "classification", identifier=WordListIdentifier(), tokenizer=tokenizer)
    card = profile_dataset({"train": rows}, "classification", identifier=WordListIdentifier(), tokenizer=tokenizer)
    for fert in (split["fertility"]["languages"], card["fertility"]["languages"]):
        assert set(fert) == {"eng", "yor"}
        assert all(math.isfinite(v["tokens_per_word"]) and v["tokens_per_word"] >= 1 for v in fert.values())
        assert fert["eng"]["byte_fallback_rate"] == 0.0  # ASCII: every token decodes to whole characters
        assert fert["yor"]["byte_fallback_rate"] > 0  # ọ, ẹ, ṣ are split into byte pieces
        assert fert["yor"]["tokens_per_word"] > fert["eng"]["tokens_per_word"]
    assert "definition" in card["fertility"]
    assert split["lengths"]["text"]["tokens"]["max"] >= split["lengths"]["text"]["words"]["max"]


def test_encode_all_takes_a_transformers_style_tokenizer() -> None:
    backend = tiny_tokenizer()

    class FastLike:  # what transformers' fast tokenizers expose
        backend_tokenizer = backend

    class SlowLike:  # encode/decode only
        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return backend.encode(text, add_special_tokens=add_special_tokens).ids

    expected = [backend.encode("omo mi", add_special_tokens=False).ids]
    assert encode_all(FastLike(), ["omo mi"]) == encode_all(SlowLike(), ["omo mi"]) == expected


def test_parallel_rows_have_a_language_per_side() -> None:
    rows = [
        {
            "source_text": "the house",
            "target_text": "ilé náà",
            "source_lang": "eng",
            "target_lang": "yor",
            "groups": {},
            "source": {"file": "p.jsonl", "line": 1},
        }
    ]
    split = profile_split(rows, "parallel", identifier=WordListIdentifier(), tokenizer=tiny_tokenizer())
    assert split["languages"] == {"eng→yor": 1}
    assert set(split["fertility"]["languages"]) == {"eng", "yor"}
    assert set(split["lengths"]) == {"source_text", "target_text"}


def test_rejects_are_counted_by_reason_class() -> None:
    rejects = [
        Reject("a.tsv", 3, None, "exact duplicate of a.tsv:1", {}),
        Reject("a.tsv", 4, None, "exact duplicate of a.tsv:2", {}),
        Reject("a.tsv", 5, "label", "label 'x' is not in the label set ['a']", {}),
    ]
    summary = rejects_summary(rejects)
    assert summary["total"] == 3
    assert summary["by_reason"] == {"exact duplicate": 2, "label not in the label set": 1}
    assert summary["examples"]["exact duplicate"][1]["source"] == "a.tsv:4"
    assert rejects_summary({"too short": 2})["by_reason"] == {"too short": 2}
    assert reason_class("near duplicate (Jaccard 0.91) of x.tsv:3") == "near duplicate"


def test_split_roles_and_order() -> None:
    assert split_role("newstest2019-ref.yor") is None  # a word, not a substring
    assert split_role("pcm/dev") == "validation" and split_role("data_test") == "test"
    assert split_order(["test", "dev", "train"]) == ["train", "dev", "test"]
    assert split_order(["b", "train"]) == ["b", "train"]  # unknown roles: the order given
    assert split_names(["x/newstest2019-src.eng.txt", "x/newstest2019-ref.yor.txt"]) == ["src.eng", "ref.yor"]
    assert split_names(["pcm/train.tsv", "hau/train.tsv"]) == ["pcm/train", "hau/train"]


class _Checker(html.parser.HTMLParser):
    """Fails on a closing tag that does not match the open one (the HTML must be well nested)."""

    VOID = frozenset({"meta", "rect", "circle", "line"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            assert self.stack.pop() == tag


def test_card_html_has_every_section_and_escapes_row_text(card: dict[str, Any]) -> None:
    page = render_card(card, "pcm <b>card</b>")
    checker = _Checker()
    checker.feed(page)
    assert checker.stack == [] and checker.ids == list(SECTIONS)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>pcm &lt;b&gt;card&lt;/b&gt;</title>" in page
    assert "http" not in page.replace("http://www.w3.org", "")  # self-contained: nothing to fetch
    assert page.count("<svg") >= 5


def test_write_card_writes_json_and_html(card: dict[str, Any], tmp_path: Path) -> None:
    json_path, html_path = write_card(card, tmp_path / "data", "run")
    assert json.loads(json_path.read_text(encoding="utf-8")) == card
    assert html_path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["card.html", "card.json"]  # no temp files


def test_inspect_real_afrisenti_slices(tmp_path: Path) -> None:
    result = inspect_files([ASSETS / "pcm_train.tsv", ASSETS / "pcm_test.tsv"])
    assert result["kind"] == "classification" and result["splits"] == ["train", "test"]
    assert result["files"]["train"]["rows"] == 60 and result["counts"] == {"train": 60, "test": 30}
    assert result["leaks"][0]["rows"] == 0  # the slices are disjoint samples
    assert result["languages"]["train"]["pcm"] >= 50
    # plant two train tweets in the test file, one verbatim and one as a reply (with an @mention)
    train_lines = (ASSETS / "pcm_train.tsv").read_text(encoding="utf-8").splitlines()
    test_text = (ASSETS / "pcm_test.tsv").read_text(encoding="utf-8")
    planted = tmp_path / "test.tsv"
    planted.write_text(test_text + train_lines[1] + "\n@user " + train_lines[2] + "\n", encoding="utf-8")
    result = inspect_files([ASSETS / "pcm_train.tsv", planted])
    leak = result["leaks"][0]
    assert (leak["exact"], leak["near"]) == (1, 1)
    assert leak["exact_examples"][0]["source"].endswith("test.tsv:32")


def test_inspect_finds_ntrex_homoglyphs() -> None:
    result = inspect_files([ASSETS / "ntrex_yor_homoglyphs.txt"])
    assert result["kind"] == "text" and result["leaks"] == []
    (split,) = result["homoglyphs"].values()
    assert split["rows"] == 4 and {"word": "ϙmϙ", "suggestion": "ọmọ"}.items() <= split["top"][0].items()


def test_inspect_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        inspect_files([tmp_path / "missing.tsv"])
    other = tmp_path / "prefs.jsonl"
    other.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="different record kinds"):
        inspect_files([ASSETS / "pcm_train.tsv", other])


def test_cli_data_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tunesmith.cli.main import main

    out_json, out_html = tmp_path / "card.json", tmp_path / "card.html"
    args = ["data", "inspect", str(ASSETS / "pcm_train.tsv"), str(ASSETS / "pcm_test.tsv")]
    assert main([*args, "--json", str(out_json), "--html", str(out_html), "--column", "text=tweet"]) == 0
    printed = capsys.readouterr().out
    assert "classification records" in printed and "label × language" in printed and "leaks" in printed
    assert json.loads(out_json.read_text(encoding="utf-8"))["counts"] == {"train": 60, "test": 30}
    assert 'id="leaks"' in out_html.read_text(encoding="utf-8")
    assert main([*args, "--column", "text"]) == 2  # a user error: one line, no traceback
