"""Drift: is the traffic a deployed model sees still like the data it was tuned on?

A model tuned on Pidgin tweets degrades quietly when its users start writing Hausa, pasting long news
articles, or talking about a topic the training data never covered; nothing in the server's error rate shows
it. :func:`drift` compares a window of recent prompts with the training texts along five axes. An alert needs
both an effect size over its threshold (:class:`DriftThresholds`) and, where a test fits, a p-value under
``thresholds.p_value``: with hundreds of rows a test alone flags shifts too small to matter, and with a few
dozen an effect size alone is mostly noise (a PSI of 1 between two 20-row samples of one distribution is
common, see :func:`tunesmith.monitor.stats.psi`).

- ``language``: the row language from the shipped identifier (:mod:`tunesmith.data.langid`); JS divergence
  and chi-square. Texts with no word (only emoji, URLs, mentions) are ``und``.
- ``script``: each row's dominant writing system (:func:`tunesmith.data.script.dominant_script`); same tests.
- ``length``: characters and whitespace words per text; PSI and Kolmogorov-Smirnov.
- ``fertility``: tokens per word and the share of byte-fallback or unknown tokens in the served model's
  tokenizer (:mod:`tunesmith.data.fertility`): the cost side of drift, since a prompt in a language the
  tokenizer splits badly is both slower and worse. Ratios pooled over all rows; no test.
- ``semantic``: sentence embeddings (:mod:`tunesmith.monitor.embed`) of at most :data:`SEMANTIC_ROWS` texts a
  side; a domain classifier's AUC for size and an MMD permutation test for significance.

``codemix`` (the code-mixing index of :mod:`tunesmith.data.codemix`) is reported but never alerts: its word
tags are noisy (Pidgin's English words mostly stay ``pcm``), so a shift in it is a reason to read the window,
not evidence on its own.

A window smaller than ``thresholds.min_rows`` is refused with :class:`WindowTooSmall` rather than reported
with an "insufficient" flag: a report whose ``drifted`` is False would read as an all-clear when it only
means "too few rows to tell", and a caller that wants to go on can catch the error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.config.monitor import DriftThresholds
from tunesmith.data.codemix import cmi_summary, row_cmi
from tunesmith.data.fertility import encode_all, token_lengths
from tunesmith.data.profile import LANGUAGE_CHARS, percentiles
from tunesmith.data.script import dominant_script
from tunesmith.errors import DataError, ModelError
from tunesmith.monitor.stats import chi_square, domain_auc, js_divergence, ks, mmd_test, psi

if TYPE_CHECKING:
    from pathlib import Path

    from tunesmith.data.langid import Identifier

__all__ = ["SEMANTIC_ROWS", "UNDETERMINED", "DriftThresholds", "WindowTooSmall", "drift"]

UNDETERMINED = "und"
SEMANTIC_ROWS = 500


class WindowTooSmall(DataError, ValueError):
    """Too few texts on one side to compare distributions; a ``DataError`` so that the CLI prints it plainly."""


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _top(counts: dict[str, int]) -> str:
    name, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return f"{name} {_pct(n / sum(counts.values()))}"


def _categorical(
    reference: Sequence[str], window: Sequence[str], threshold: float, p_value: float, what: str, seed: int
) -> tuple[dict[str, Any], list[str]]:
    """Counts, JS divergence and chi-square of one categorical label per text; the alert sentence if any."""
    ref = dict(Counter(reference).most_common())
    win = dict(Counter(window).most_common())
    resamples = max(2000, math.ceil(2 / p_value))  # the Monte Carlo p-value's floor stays under p_value
    js, test = js_divergence(ref, win), chi_square(ref, win, resamples=resamples, seed=seed)
    alert = js > threshold and test["p_value"] < p_value
    section = {"reference_counts": ref, "window_counts": win, "js": js, "chi_square": test}
    message = (
        f"{what} mix moved: JS {js:.2f} > {threshold:.2f}, chi-square p {test['p_value']:.2g} "
        f"({_top(ref)} -> {_top(win)})"
    )
    return {**section, "alert": alert}, [message] if alert else []


def _languages(texts: Sequence[str], identifier: Identifier) -> list[str]:
    """One language per text (each distinct text predicted once); ``und`` when it has no word at all."""
    from tunesmith.data.langid import text_words

    cache: dict[str, str] = {}
    for text in dict.fromkeys(texts):
        head = text[:LANGUAGE_CHARS]
        cache[text] = identifier.predict(head)[0] if text_words(head) else UNDETERMINED
    return [cache[t] for t in texts]


def _numeric(reference: Sequence[float], window: Sequence[float]) -> dict[str, Any]:
    """PSI with at most one bin per 5 window rows (see :func:`tunesmith.monitor.stats.psi`), KS, percentiles."""
    bins = int(np.clip(len(window) // 5, 2, 10))
    return {
        "psi": psi(reference, window, bins=bins),
        "psi_bins": bins,
        "ks": ks(reference, window),
        "reference_percentiles": percentiles(reference),
        "window_percentiles": percentiles(window),
    }


def _length(
    reference: Sequence[str], window: Sequence[str], thresholds: DriftThresholds
) -> tuple[dict[str, Any], list[str]]:
    """Characters and words per text; alerts when a PSI passes ``length_psi`` with a significant KS test."""
    section: dict[str, Any] = {}
    messages = []
    for unit, measure in (("chars", len), ("words", lambda t: len(t.split()))):
        stats = _numeric([measure(t) for t in reference], [measure(t) for t in window])
        section[unit] = stats
        if stats["psi"] > thresholds.length_psi and stats["ks"]["p_value"] < thresholds.p_value:
            before, after = stats["reference_percentiles"]["p50"], stats["window_percentiles"]["p50"]
            messages.append(
                f"text length moved: PSI {stats['psi']:.2f} > {thresholds.length_psi:.2f}, "
                f"KS p {stats['ks']['p_value']:.2g} "
                f"(median {before} -> {after} {'characters' if unit == 'chars' else 'words'} per text)"
            )
    section["alert"] = bool(messages)
    return section, messages


def _codemix(reference: Sequence[str], window: Sequence[str], identifier: Identifier) -> dict[str, Any]:
    """CMI summaries and a KS test; reported without an alert (see the module docstring)."""
    ref = [row_cmi(t[:LANGUAGE_CHARS], identifier) for t in reference]
    win = [row_cmi(t[:LANGUAGE_CHARS], identifier) for t in window]
    return {"reference": cmi_summary(ref), "window": cmi_summary(win), "ks": ks(ref, win), "alert": False}


def _token_side(texts: Sequence[str], tokenizer: Any) -> dict[str, Any]:
    """Pooled tokens per word, byte-fallback share and unknown-token share of one sample."""
    counts = token_lengths(tokenizer, [{"text": t} for t in texts])
    tokens, partial = sum(counts.lengths["text"]), sum(counts.partial["text"])
    unk_id = getattr(tokenizer, "unk_token_id", None)
    unknown = sum(ids.count(unk_id) for ids in encode_all(tokenizer, texts)) if unk_id is not None else 0
    words = sum(len(t.split()) for t in texts)
    return {
        "words": words,
        "tokens": tokens,
        "tokens_per_word": tokens / words if words else 0.0,
        "byte_fallback_rate": partial / tokens if tokens else 0.0,
        "unk_rate": unknown / tokens if tokens else 0.0,
        "unknown_rate": (partial + unknown) / tokens if tokens else 0.0,
    }


def _fertility(
    reference: Sequence[str], window: Sequence[str], tokenizer: Any, thresholds: DriftThresholds
) -> tuple[dict[str, Any], list[str]]:
    """Tokenizer cost of both samples: relative change of tokens per word, absolute change of unknown share."""
    if tokenizer is None:
        return {"skipped": "no tokenizer given (pass the served model's tokenizer)", "alert": False}, []
    ref, win = _token_side(reference, tokenizer), _token_side(window, tokenizer)
    fertility = ref["tokens_per_word"]
    relative = (win["tokens_per_word"] - fertility) / fertility if fertility else 0.0
    unknown = win["unknown_rate"] - ref["unknown_rate"]
    messages = []
    if abs(relative) > thresholds.fertility_change:
        messages.append(
            f"tokens per word {'rose' if relative > 0 else 'fell'} {abs(relative):.0%} > "
            f"{thresholds.fertility_change:.0%} ({fertility:.2f} -> {win['tokens_per_word']:.2f})"
        )
    if abs(unknown) > thresholds.unknown_rate_change:
        messages.append(
            f"byte-fallback/unknown tokens moved {100 * unknown:+.1f} points > "
            f"{100 * thresholds.unknown_rate_change:.1f} ({ref['unknown_rate']:.1%} -> {win['unknown_rate']:.1%})"
        )
    section = {
        "reference": ref,
        "window": win,
        "tokens_per_word_change": relative,
        "unknown_rate_change": unknown,
        "alert": bool(messages),
    }
    return section, messages


def _sample(texts: Sequence[str], limit: int, rng: np.random.Generator) -> list[str]:
    if len(texts) <= limit:
        return list(texts)
    return [texts[i] for i in np.sort(rng.choice(len(texts), size=limit, replace=False))]


def _semantic(
    reference: Sequence[str],
    window: Sequence[str],
    encoder_dir: str | Path | None,
    thresholds: DriftThresholds,
    seed: int,
) -> tuple[dict[str, Any], list[str]]:
    """MMD test and domain AUC on sentence embeddings of at most :data:`SEMANTIC_ROWS` texts a side."""
    from tunesmith.monitor.embed import DEFAULT_ENCODER, default_encoder_dir, embed_texts

    if encoder_dir is None:
        try:
            encoder_dir = default_encoder_dir()
        except ModelError as exc:
            reason = f"no encoder_dir and the embedded {DEFAULT_ENCODER} is unusable: {exc}"
            return {"skipped": reason, "alert": False}, []
    rng = np.random.default_rng(seed)
    ref, win = _sample(reference, SEMANTIC_ROWS, rng), _sample(window, SEMANTIC_ROWS, rng)
    vectors = embed_texts(ref + win, encoder_dir)
    x, y = vectors[: len(ref)], vectors[len(ref) :]
    permutations = max(200, math.ceil(2 / thresholds.p_value))  # the permutation p-value's floor stays under p_value
    mmd = mmd_test(x, y, permutations=permutations, seed=seed, max_samples=SEMANTIC_ROWS)
    auc = domain_auc(x, y, seed=seed)
    alert = auc["auc"] >= thresholds.semantic_auc and mmd["p_value"] < thresholds.p_value
    section = {"encoder": str(encoder_dir), "rows": {"reference": len(ref), "window": len(win)}}
    section |= {"mmd": mmd, "domain_auc": auc, "alert": alert}
    message = (
        f"prompts moved in embedding space: domain AUC {auc['auc']:.2f} >= {thresholds.semantic_auc:.2f}, "
        f"MMD p {mmd['p_value']:.3f} < {thresholds.p_value:.3f}"
    )
    return section, [message] if alert else []


def drift(
    reference: Sequence[str],
    window: Sequence[str],
    tokenizer: Any = None,
    encoder_dir: str | Path | None = None,
    thresholds: DriftThresholds | None = None,
    seed: int = 0,
    identifier: Identifier | None = None,
    semantic: bool = True,
) -> dict[str, Any]:
    """Compare a window of recent texts (prompts) with reference texts (training data) along five axes.

    Args:
        reference: The texts the model was tuned on (or a sample of them).
        window: Recent texts from the request log.
        tokenizer: The served model's tokenizer (transformers or ``tokenizers``); fertility is skipped without.
        encoder_dir: A BERT-style encoder directory for the semantic test; the embedded MiniLM when None
            (skipped with a reason when it is not installed).
        thresholds: Alert thresholds; :class:`DriftThresholds` defaults when None.
        seed: Seeds subsampling, permutations and folds: the same inputs give the same report.
        identifier: Language identifier for ``language`` and ``codemix``; the shipped model when None.
        semantic: False skips the embedding test (it loads a 22M-parameter encoder: a few seconds per 500 texts).

    Returns:
        A JSON-ready dict: ``rows``, ``thresholds``, one section per axis (``language``, ``script``,
        ``length``, ``codemix``, ``fertility``, ``semantic``; each with ``alert``, or ``skipped`` and the
        reason), ``alerts`` (one sentence per statistic over its threshold, with the values) and ``drifted``.

    Raises:
        WindowTooSmall: When either side has fewer than ``thresholds.min_rows`` texts (also a ValueError).
    """
    limits = thresholds or DriftThresholds()
    for side, texts in (("window", window), ("reference", reference)):
        if len(texts) < limits.min_rows:
            raise WindowTooSmall(
                f"drift needs at least {limits.min_rows} texts on each side; the {side} has {len(texts)} "
                "(widen the window or lower thresholds.min_rows: below about 20 rows every statistic is noise)"
            )
    if identifier is None:
        from tunesmith.data.langid import load_default

        identifier = load_default()
    skipped: tuple[dict[str, Any], list[str]] = ({"skipped": "semantic=False", "alert": False}, [])
    sections = {
        "language": _categorical(
            _languages(reference, identifier),
            _languages(window, identifier),
            limits.language_js,
            limits.p_value,
            "language",
            seed,
        ),
        "script": _categorical(
            [dominant_script(t) for t in reference],
            [dominant_script(t) for t in window],
            limits.script_js,
            limits.p_value,
            "script",
            seed,
        ),
        "length": _length(reference, window, limits),
        "codemix": (_codemix(reference, window, identifier), []),
        "fertility": _fertility(reference, window, tokenizer, limits),
        "semantic": _semantic(reference, window, encoder_dir, limits, seed) if semantic else skipped,
    }
    report: dict[str, Any] = {"rows": {"reference": len(reference), "window": len(window)}}
    report["thresholds"] = limits.model_dump()
    report |= {name: section for name, (section, _) in sections.items()}
    alerts = [message for _, messages in sections.values() for message in messages]
    return {**report, "alerts": alerts, "drifted": bool(alerts)}
