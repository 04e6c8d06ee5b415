"""Code-mixing index (CMI) per row, from word-level language tags, and a histogram for the data card.

Das and Gambäck (2014), "Identifying Languages at the Word Level in Code-Mixed Indian Social Media Text"
(ICON 2014), define for an utterance of ``n`` tokens of which ``u`` are language independent::

    CMI = 100 * (1 - max_i(w_i) / (n - u))   if n > u
    CMI = 0                                  if n = u

where ``w_i`` is the number of tokens tagged with language ``i``. A monolingual row scores 0; a row split evenly
between two languages scores 50 (the maximum with k languages is ``100 * (1 - 1/k)``). The data card shows the
histogram because a corpus of mostly monolingual rows and a few heavily mixed ones has the same mean as one of
uniformly light mixing, and the two need different preparation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from tunesmith.data.langid import UNIV, Identifier


def cmi(tags: Sequence[str]) -> float:
    """Code-mixing index of one utterance from its per-token tags (``univ`` = language independent).

    Args:
        tags: One tag per token: a language code, or ``"univ"`` for numbers, punctuation, emoji, mentions,
            URLs and hashtags.

    Returns:
        A value in ``[0, 100)``: ``100 * (1 - max_lang_count / (n - u))``, or 0 when every token is ``univ``
        (including an empty row).
    """
    counts = Counter(tag for tag in tags if tag != UNIV)
    language_tokens = sum(counts.values())  # n - u
    if not language_tokens:
        return 0.0
    return 100.0 * (1.0 - max(counts.values()) / language_tokens)


def row_cmi(text: str, identifier: Identifier) -> float:
    """CMI of one row, tagging its words with ``identifier.predict_words``."""
    return cmi([tag for _, tag in identifier.predict_words(text)])


def corpus_cmi(texts: Iterable[str], identifier: Identifier) -> list[float]:
    """CMI of every row, in order: the per-row values a data card or a filter step needs."""
    return [row_cmi(text, identifier) for text in texts]


def cmi_histogram(values: Iterable[float], bin_width: float = 10.0) -> list[tuple[str, int]]:
    """Counts of CMI values in bins of ``bin_width`` over ``[0, 100]``, as ``(label, count)`` pairs.

    Every bin is listed, empty ones included, so that two data cards' histograms line up. Bins are closed
    on the left (``"10-20"`` holds 10 <= CMI < 20); the last bin also holds 100. Monolingual rows (CMI 0) land
    in the first bin; :func:`cmi_summary` reports their share separately.
    """
    if bin_width <= 0 or 100 % bin_width:
        raise ValueError(f"bin_width must divide 100, got {bin_width}")
    n_bins = int(100 // bin_width)
    counts = [0] * n_bins
    for value in values:
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"a CMI lies in [0, 100], got {value}")
        counts[min(int(value // bin_width), n_bins - 1)] += 1
    return [(f"{_fmt(i * bin_width)}-{_fmt((i + 1) * bin_width)}", n) for i, n in enumerate(counts)]


def cmi_summary(values: Sequence[float]) -> dict[str, float]:
    """Corpus-level figures in the paper's style: mean CMI over all rows and over mixed rows only.

    Returns:
        ``rows``, ``mixed_fraction`` (share of rows with CMI > 0), ``mean_cmi`` (all rows) and
        ``mean_cmi_mixed`` (rows with CMI > 0; 0 when there are none).
    """
    mixed = [v for v in values if v > 0]
    return {
        "rows": float(len(values)),
        "mixed_fraction": len(mixed) / len(values) if values else 0.0,
        "mean_cmi": sum(values) / len(values) if values else 0.0,
        "mean_cmi_mixed": sum(mixed) / len(mixed) if mixed else 0.0,
    }


def _fmt(edge: float) -> str:
    return str(int(edge)) if float(edge).is_integer() else f"{edge:g}"
