"""Generation and translation metrics as pure functions of hypothesis and reference strings.

chrF (Popović 2015, "chrF: character n-gram F-score for automatic MT evaluation") is the headline score:
character n-grams need no word tokenizer and give partial credit for a correct stem with a wrong affix,
which matters for the agglutinative and tonal languages this toolkit targets, where word-level BLEU
(Papineni et al. 2002) is near zero and noisy. chrF++ (Popović 2017) adds word unigrams and bigrams. All
three come from sacrebleu (Post 2018, "A Call for Clarity in Reporting BLEU Scores") with its default
settings, and each score's signature is returned so a reported number says exactly how it was computed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The form compared by exact match: Unicode NFC, whitespace runs collapsed to one space and stripped,
    then ``str.casefold`` (full Unicode case folding, so ``"Ɗ"`` matches ``"ɗ"``).

    NFC makes a tone mark typed as a combining character equal to the precomposed letter; a model is not
    wrong for choosing the other encoding of the same text.
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip().casefold()


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")


def row_exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """1.0 where a hypothesis equals its reference after :func:`normalise`, else 0.0 (one per row)."""
    _check(hypotheses, references)
    return [float(normalise(h) == normalise(r)) for h, r in zip(hypotheses, references, strict=True)]


def row_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """Sentence-level chrF (0-100) of each row, for bootstrap intervals and per-group breakdowns.

    The mean of these is not the corpus chrF of :func:`generation_metrics`: corpus chrF pools the n-gram
    statistics of every row before computing one F-score, so short rows weigh less there.
    """
    from sacrebleu.metrics import CHRF

    _check(hypotheses, references)
    metric = CHRF()
    return [float(metric.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references, strict=True)]


def generation_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus chrF, chrF++ and BLEU (sacrebleu defaults, one reference per row), exact match and length ratio.

    Returns:
        ``{n, chrf, chrf_pp, bleu, exact_match, length_ratio, bleu_length_ratio, signatures: {chrf, chrf_pp,
        bleu}}``. Scores are 0-100 as sacrebleu reports them; ``exact_match`` is a fraction (0-1) of rows
        equal after :func:`normalise`. ``length_ratio`` is total hypothesis characters over total reference
        characters: below 1 flags truncated or empty outputs, far above 1 rambling ones, which chrF alone
        does not separate. ``bleu_length_ratio`` is BLEU's own hypothesis/reference ratio in its 13a
        tokens, the quantity behind its brevity penalty. With no rows every score and signature is None.
    """
    from sacrebleu.metrics import BLEU, CHRF

    _check(hypotheses, references)
    hyps, refs = [str(h) for h in hypotheses], [str(r) for r in references]
    metrics = {"chrf": CHRF(), "chrf_pp": CHRF(word_order=2), "bleu": BLEU()}
    if not hyps:
        empty = ("chrf", "chrf_pp", "bleu", "exact_match", "length_ratio", "bleu_length_ratio")
        return {"n": 0, **dict.fromkeys(empty), "signatures": dict.fromkeys(metrics)}
    scores = {name: metric.corpus_score(hyps, [refs]) for name, metric in metrics.items()}
    # A signature includes the number of references, which sacrebleu only knows after scoring.
    signatures = {name: str(metric.get_signature()) for name, metric in metrics.items()}
    bleu = scores["bleu"]
    ref_chars = sum(len(r) for r in refs)
    exact = row_exact_match(hyps, refs)
    return {
        "n": len(hyps),
        "chrf": float(scores["chrf"].score),
        "chrf_pp": float(scores["chrf_pp"].score),
        "bleu": float(bleu.score),
        "exact_match": sum(exact) / len(exact),
        "length_ratio": sum(len(h) for h in hyps) / ref_chars if ref_chars else None,
        "bleu_length_ratio": bleu.sys_len / bleu.ref_len if bleu.ref_len else None,
        "signatures": signatures,
    }
