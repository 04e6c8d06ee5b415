"""Script detection, the character n-gram language identifier, and the code-mixing index (Das and Gambäck 2014)."""

from __future__ import annotations

import csv
import importlib
from pathlib import Path

import numpy as np
import pytest

from tunesmith.data import langid_backends
from tunesmith.data.codemix import cmi, cmi_histogram, cmi_summary, corpus_cmi, row_cmi
from tunesmith.data.langid import UNIV, NgramIdentifier, load_default, tokens, word_features
from tunesmith.data.script import dominant_script, file_script_shares, script_of, script_shares


@pytest.fixture(scope="module")
def afrisenti_rows(assets: Path) -> list[dict[str, str]]:
    with (assets / "langid_afrisenti.tsv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def tiny_model(afrisenti_rows: list[dict[str, str]]) -> NgramIdentifier:
    train = [(r["text"], r["lang"]) for r in afrisenti_rows if r["split"] == "train"]
    return NgramIdentifier.fit(train, min_count=1)


# --- script ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("char", "script"),
    [
        ("a", "Latin"),
        ("ɗ", "Latin"),  # Hausa hooked d
        ("ب", "Arabic"),
        ("ሀ", "Ethiopic"),
        ("ж", "Cyrillic"),
        ("λ", "Greek"),
        ("中", "Han"),
        ("क", "Devanagari"),
        ("ߊ", "Nko"),
        ("ⴰ", "Tifinagh"),
        ("𞤀", "Adlam"),
        ("𝐇", "Latin"),  # mathematical bold: a fancy font for Latin text
        ("7", "Common"),
        ("!", "Common"),
        ("😂", "Common"),
        (" ", "Common"),
        ("\u0301", "Inherited"),  # combining acute (Yorùbá tone)
    ],
)
def test_script_of(char: str, script: str) -> None:
    assert script_of(char) == script


def test_script_shares_latin_ignores_digits_punctuation_emoji() -> None:
    assert script_shares("lol 😂😂 123 !!!") == {"Latin": 1.0}


def test_script_shares_yoruba_with_combining_marks_is_all_latin() -> None:
    assert script_shares("ọ̀tún tòsì ẹyẹlé") == {"Latin": 1.0}


def test_script_shares_arabic_and_ethiopic() -> None:
    assert script_shares("تبهليل هاذا") == {"Arabic": 1.0}
    assert script_shares("ሰላም ነው") == {"Ethiopic": 1.0}


def test_script_shares_mixed_counts_letters() -> None:
    shares = script_shares("سلام hi 2")  # 4 Arabic letters, 2 Latin letters
    assert list(shares) == ["Arabic", "Latin"]
    assert shares["Arabic"] == pytest.approx(4 / 6)
    assert shares["Latin"] == pytest.approx(2 / 6)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_dominant_script() -> None:
    assert dominant_script("ana ga3ma سلام") == "Latin"  # 7 Latin letters against 4 Arabic
    assert dominant_script("ab سل") == "Arabic"  # a 2-2 tie goes to the alphabetically first script
    assert dominant_script("123 😂") == "Common"
    assert script_shares("") == {}


def test_file_script_shares_pools_rows() -> None:
    assert file_script_shares(["ab", "ሰላ", "7"]) == {"Ethiopic": 0.5, "Latin": 0.5}


# --- tokens and features ----------------------------------------------------------------------------------------


def test_univ_tokens() -> None:
    text = "@user #Buhari https://t.co/x www.bbc.com 2023 12:30 😂 !!! wetin,"
    assert [w for _, w in tokens(text)] == [None] * 8 + ["wetin"]
    assert tokens("wahala!!😂")[0] == ("wahala", "wahala")


def test_word_features_boundaries_and_whole_word() -> None:
    feats = word_features("dey")
    assert {"d", " d", "ey ", " de", "dey ", " dey "} <= set(feats)
    assert " " not in feats
    assert word_features("na").count(" na ") == 1  # a 2-letter word is its own 4-gram, not counted twice


# --- identifier -------------------------------------------------------------------------------------------------


def test_identifier_predicts_held_out_tweets(
    tiny_model: NgramIdentifier, afrisenti_rows: list[dict[str, str]]
) -> None:
    test = [r for r in afrisenti_rows if r["split"] == "test"]
    hits = {lang: 0 for lang in tiny_model.languages}
    for row in test:
        lang, prob = tiny_model.predict(row["text"])
        assert 0.0 < prob <= 1.0
        hits[row["lang"]] += lang == row["lang"]
    assert sum(hits.values()) / len(test) >= 0.85
    assert all(hits[lang] >= 9 for lang in ("hau", "ibo", "pcm", "yor"))  # 10 held-out tweets each


def test_predict_proba_sums_to_one_and_featureless_text_is_uniform(tiny_model: NgramIdentifier) -> None:
    proba = tiny_model.predict_proba("Ina kwana, yaya aiki?")
    assert sum(proba.values()) == pytest.approx(1.0)
    uniform = tiny_model.predict_proba("@user 123 😂")
    assert set(np.round(list(uniform.values()), 6)) == {round(1 / len(tiny_model.languages), 6)}


def test_save_load_round_trip(tiny_model: NgramIdentifier, tmp_path: Path) -> None:
    loaded = NgramIdentifier.load(tiny_model.save(tmp_path / "langid.json"))
    assert loaded.languages == tiny_model.languages
    for text in ["Allah ya isa wallahi", "wetin dey happen @user", "تبهليل هاذا", "ẹ kú àárọ̀ o"]:
        assert loaded.predict_proba(text) == tiny_model.predict_proba(text)
        assert loaded.predict_words(text) == tiny_model.predict_words(text)


def test_load_rejects_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a tunesmith-langid-ngram model"):
        NgramIdentifier.from_json({"format": "something-else", "version": 1})


def test_predict_words_tags_univ_and_languages(tiny_model: NgramIdentifier) -> None:
    tagged = tiny_model.predict_words("@user Allah ya isa wallahi 😂 https://t.co/x")
    assert [t for _, t in tagged] == [UNIV, "hau", "hau", "hau", "hau", UNIV, UNIV]
    assert tiny_model.predict_words("") == []


def test_two_script_language_is_not_penalised_per_ngram() -> None:
    # "b" writes the same Arabic-script words as "a", plus as many Latin ones. On a 4-word Arabic text "a"
    # should win only by P(Arabic | a) / P(Arabic | b) = 2 per word (odds 2**4), not by 2 per n-gram.
    arabic = ["سلام عليكم خويا", "واش راك لاباس"] * 5
    latin = ["salam 3likom khouya", "wach rak labas"] * 5
    model = NgramIdentifier.fit([(t, "a") for t in arabic] + [(t, "b") for t in arabic + latin], min_count=1)
    proba = model.predict_proba("سلام خويا واش راك")
    assert np.log(proba["a"] / proba["b"]) == pytest.approx(4 * np.log(2), abs=0.5)
    assert model.predict("salam khouya")[0] == "b"


def test_default_model_ships_and_tags_code_mixing() -> None:
    model = load_default()
    assert set(model.languages) == {"hau", "ibo", "pcm", "yor", "arq", "ary", "eng"}
    assert model.predict("abeg wetin dey happen for this country, una no dey hear word")[0] == "pcm"
    assert model.predict("Ina kwana, yaya aiki? Allah ya kiyaye")[0] == "hau"
    assert model.predict("The committee will publish its report on Thursday")[0] == "eng"
    assert dict(model.predict_words("abeg wetin dey happen for this country"))["wetin"] == "pcm"
    tagged = model.predict_words("Ẹ kú àárọ̀ o, the government has failed us completely")
    assert [t for _, t in tagged[:4]] == ["yor"] * 4
    assert row_cmi("Ẹ kú àárọ̀ o, the government has failed us completely", model) > 0


# --- code-mixing index ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], 0.0),  # n = u = 0
        ([UNIV, UNIV], 0.0),  # n = u
        (["hau", "hau", "hau", UNIV], 0.0),  # monolingual
        (["pcm", "eng", "pcm", "eng"], 50.0),  # 100 * (1 - 2/4)
        (["hau", "hau", "eng", UNIV, UNIV], 100 * (1 - 2 / 3)),  # n=5, u=2, max=2
        (["yor", "yor", "yor", "eng", "pcm", UNIV], 40.0),  # n=6, u=1, max=3: 100 * (1 - 3/5)
    ],
)
def test_cmi_matches_das_gamback_formula(tags: list[str], expected: float) -> None:
    assert cmi(tags) == pytest.approx(expected)


class _StubIdentifier:
    """Tags a word ``eng`` when it is in a small English list, else ``pcm``; ``univ`` as langid does."""

    english = frozenset({"the", "is", "would"})

    def predict(self, text: str) -> tuple[str, float]:
        return "pcm", 1.0

    def predict_words(self, text: str) -> list[tuple[str, str]]:
        return [(s, UNIV if w is None else ("eng" if w in self.english else "pcm")) for s, w in tokens(text)]


def test_row_cmi_uses_word_tags() -> None:
    stub = _StubIdentifier()
    assert row_cmi("the matter is wahala o 😂 @user", stub) == pytest.approx(100 * (1 - 3 / 5))
    assert corpus_cmi(["wetin dey", "the is", "123"], stub) == [0.0, 0.0, 0.0]


def test_cmi_histogram_bins_of_ten() -> None:
    hist = cmi_histogram([0.0, 0.0, 5.0, 10.0, 33.3, 50.0, 100.0])
    assert len(hist) == 10
    assert hist[0] == ("0-10", 3)
    assert hist[1] == ("10-20", 1)
    assert hist[3] == ("30-40", 1)
    assert hist[5] == ("50-60", 1)
    assert hist[9] == ("90-100", 1)
    assert sum(n for _, n in hist) == 7
    with pytest.raises(ValueError):
        cmi_histogram([120.0])


def test_cmi_summary() -> None:
    summary = cmi_summary([0.0, 0.0, 50.0, 25.0])
    assert summary == {"rows": 4.0, "mixed_fraction": 0.5, "mean_cmi": 18.75, "mean_cmi_mixed": 37.5}
    assert cmi_summary([])["mean_cmi"] == 0.0


# --- off-the-shelf adapters -------------------------------------------------------------------------------------


def test_backend_codes_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert langid_backends.to_iso3("ha") == "hau"
    assert langid_backends.to_iso3("__label__yo") == "yor"
    assert langid_backends.to_iso3("pcm") == "pcm"
    with pytest.raises(ValueError, match="unknown language-ID backend"):
        langid_backends.load_backend("nope")

    def missing(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(ImportError, match="pip install py3langid"):
        langid_backends.load_backend("py3langid")


def test_external_identifier_wraps_a_classifier() -> None:
    ident = langid_backends.ExternalIdentifier("fake", lambda text: ("yo", 0.9))
    assert ident.predict("ẹ kú àárọ̀") == ("yor", 0.9)
    assert ident.predict_words("ẹ kú 😂") == [("ẹ", "yor"), ("kú", "yor"), ("😂", UNIV)]
