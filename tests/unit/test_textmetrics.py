"""Generation metrics: the same numbers as sacrebleu called directly, exact match and length ratio by hand."""

from __future__ import annotations

import pytest
from sacrebleu.metrics import BLEU, CHRF

from tunesmith.eval.textmetrics import generation_metrics, normalise, row_chrf, row_exact_match

HYPS = ["Ina son ka sosai.", "the cat sat on the mat", "  Ruwa   YANA  sanyi ", "ƙasa"]
REFS = ["Ina son ki sosai.", "the cat is on the mat", "ruwa yana sanyi", "Ƙasar"]


def test_scores_equal_sacrebleu_called_directly() -> None:
    m = generation_metrics(HYPS, REFS)
    chrf, chrf_pp, bleu_metric = CHRF(), CHRF(word_order=2), BLEU()
    assert m["chrf"] == pytest.approx(chrf.corpus_score(HYPS, [REFS]).score)
    assert m["chrf_pp"] == pytest.approx(chrf_pp.corpus_score(HYPS, [REFS]).score)
    bleu = bleu_metric.corpus_score(HYPS, [REFS])
    assert m["bleu"] == pytest.approx(bleu.score)
    assert m["bleu_length_ratio"] == pytest.approx(bleu.sys_len / bleu.ref_len)
    assert m["n"] == 4
    assert m["signatures"] == {
        "chrf": str(chrf.get_signature()),
        "chrf_pp": str(chrf_pp.get_signature()),
        "bleu": str(bleu_metric.get_signature()),
    }
    assert "nw:2" in m["signatures"]["chrf_pp"] and "tok:13a" in m["signatures"]["bleu"]


def test_exact_match_and_length_ratio_by_hand() -> None:
    m = generation_metrics(HYPS, REFS)
    # Only row 3 matches: whitespace runs collapse and case folds; "ƙasa" is not "ƙasar".
    assert row_exact_match(HYPS, REFS) == [0.0, 0.0, 1.0, 0.0]
    assert m["exact_match"] == pytest.approx(1 / 4)
    # Characters as written (whitespace included): 17 + 22 + 21 + 4 hypothesis, 17 + 21 + 15 + 5 reference.
    assert m["length_ratio"] == pytest.approx((17 + 22 + 21 + 4) / (17 + 21 + 15 + 5))


def test_normalise() -> None:
    assert normalise(" A\tb\n\nC ") == "a b c"
    assert normalise("Ɗan") == normalise("ɗan")
    assert normalise("e\u0301") == normalise("\u00e9")  # combining accent equals the precomposed letter


def test_perfect_and_empty() -> None:
    m = generation_metrics(REFS, REFS)
    assert m["chrf"] == pytest.approx(100.0) and m["bleu"] == pytest.approx(100.0) and m["exact_match"] == 1.0
    assert m["length_ratio"] == 1.0
    empty = generation_metrics([], [])
    assert empty["n"] == 0 and empty["chrf"] is None and empty["exact_match"] is None
    assert empty["signatures"] == {"chrf": None, "chrf_pp": None, "bleu": None}


def test_row_chrf_is_sentence_chrf() -> None:
    rows = row_chrf(HYPS, REFS)
    assert rows == [pytest.approx(CHRF().sentence_score(h, [r]).score) for h, r in zip(HYPS, REFS, strict=True)]
    assert rows[2] < 100.0  # chrF is case-sensitive by default; exact match is not


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        generation_metrics(["a", "b"], ["a"])
