"""The dataset profile behind the data card and ``tunesmith data inspect``: what is in each split, and what is wrong.

A fine-tuning run on a few thousand tweets is decided by facts a training loss never shows: which languages and
scripts the rows are really in, how code-mixed they are, how many rows repeat (verbatim or with a changed
``@user``), whether test rows already sit in train, whether a broken keyboard layout put Greek letters into
Yorùbá words, and how many tokens a word costs in the chosen tokenizer. :func:`profile_dataset` measures all of
these per split and returns one JSON-ready dict (the card); :mod:`tunesmith.data.card` draws it.

What each figure looks at:

- A row's *text* is all its free-text fields joined by newlines (chat turns, ranked responses and choice
  candidates included). Parallel rows are two texts, source and target, each with its own language; their
  language is written ``src→tgt``.
- Language and CMI read the first :data:`LANGUAGE_CHARS` characters of a text: the language is settled by
  then, and a long dialogue would otherwise cost milliseconds per row. Records prepared by stage 1 carry
  ``detected = {language, confidence, script, cmi}`` (:mod:`tunesmith.data.annotate`, on the primary text):
  their language, and their CMI when every row of the split has one, are used as they are, so the card shows
  the annotation that evaluation later groups scores by, at no extra cost.
- CMI (Das and Gambäck 2014, see :mod:`tunesmith.data.codemix`) is measured on at most ``cmi_rows`` rows and
  about :data:`CMI_MAX_WORDS` words per split, evenly spaced through it: tagging every word costs about twice a
  row prediction (~250 µs a tweet, ~1.5 ms a long dialogue), and the share of rows in a CMI bin is then known to
  one or two percentage points, which is all a card needs.
  ``cmi.rows`` says how many rows were measured, ``cmi.of_rows`` of how many.
- Duplicates and leaks compare :func:`tunesmith.data.records.dedup_key` (the input side: labels and answers
  excluded), exactly and as near-duplicates (character 5-gram Jaccard >= ``near_threshold``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tunesmith.data.codemix import cmi_histogram, cmi_summary, row_cmi
from tunesmith.data.fertility import fertility_counts, pool_fertility, token_lengths
from tunesmith.data.findings import duplicates, homoglyphs, leaks, rejects_summary
from tunesmith.data.records import dedup_key, text_fields
from tunesmith.data.script import COMMON, IGNORED, script_counts

if TYPE_CHECKING:
    from tunesmith.data.langid import Identifier

__all__ = [
    "CARD_SCHEMA",
    "CARD_VERSION",
    "LANGUAGE_CHARS",
    "SECTIONS",
    "field_texts",
    "percentiles",
    "profile_dataset",
    "profile_split",
    "split_order",
    "split_role",
]

CARD_SCHEMA = "tunesmith-data-card"
CARD_VERSION = 1
SECTIONS = (
    "counts",
    "languages",
    "scripts",
    "cmi",
    "lengths",
    "labels",
    "label_by_language",
    "groups",
    "duplicates",
    "leaks",
    "homoglyphs",
    "rejects",
    "fertility",
)
LANGUAGE_CHARS = 400
CMI_MAX_ROWS = 2000
CMI_MAX_WORDS = 40_000
TOP_GROUP_VALUES = 30
ROLES = ("train", "validation", "test")
_ROLE_WORDS = {"train": "train", "dev": "validation", "val": "validation", "valid": "validation"}
_ROLE_WORDS |= {"validation": "validation", "test": "test"}


def field_texts(record: Mapping[str, Any], kind: str) -> dict[str, str]:
    """Each free-text field of a record as one string; chat turns and list items are joined by newlines."""
    out: dict[str, str] = {}
    for name in text_fields(kind):
        value = record.get(name)
        if isinstance(value, str):
            out[name] = value
        elif name == "messages" and isinstance(value, list):
            out[name] = "\n".join(str(m.get("content", "")) for m in value)
        elif isinstance(value, list):
            out[name] = "\n".join(map(str, value))
    return out


def _segments(record: Mapping[str, Any], kind: str, texts: Mapping[str, str]) -> list[str]:
    """The texts that carry one language each: source and target of a parallel row, otherwise the whole row."""
    if kind == "parallel":
        return [texts.get("source_text", ""), texts.get("target_text", "")]
    return ["\n".join(texts.values())]


def _languages(record: Mapping[str, Any], kind: str, segments: Sequence[str], identifier: Identifier) -> list[str]:
    """One language per segment: stage 1's tag, the given ``source_lang``/``target_lang``, or a prediction."""
    detected = record.get("detected")
    if isinstance(detected, Mapping) and detected.get("language") and len(segments) == 1:
        return [str(detected["language"])]
    given = [record.get("source_lang"), record.get("target_lang")] if kind == "parallel" else [None]
    return [str(g) if g else identifier.predict(s[:LANGUAGE_CHARS])[0] for g, s in zip(given, segments, strict=True)]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p5/p50/p95/max and mean by the nearest-rank rule (every reported value is one that occurs)."""
    if not values:
        return {"p5": 0, "p50": 0, "p95": 0, "max": 0, "mean": 0.0}
    ordered = sorted(values)
    n = len(ordered)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * n) - 1)]

    return {"p5": rank(5), "p50": rank(50), "p95": rank(95), "max": ordered[-1], "mean": round(sum(ordered) / n, 1)}


def split_role(name: str) -> str | None:
    """``train``/``validation``/``test`` when a word of the split's name says so (``dev`` counts as validation).

    Names are split into words so that ``newstest2019`` is not mistaken for a test split.
    """
    roles = {_ROLE_WORDS[w] for w in re.split(r"[^a-z]+", name.lower()) if w in _ROLE_WORDS}
    return roles.pop() if len(roles) == 1 else None


def split_order(names: Iterable[str]) -> list[str]:
    """The order leaks are checked in: train -> validation -> test when every name has a role, else as given.

    A row of a later split that occurs in an earlier one is a leak (the earlier split is the one a model
    learns from); with unknown roles the caller's order states which file is the earlier one.
    """
    names = list(names)
    roles = [split_role(n) for n in names]
    if all(roles):
        return [
            n for _, n in sorted(zip([ROLES.index(r) for r in roles if r], names, strict=True), key=lambda p: p[0])
        ]
    return names


class _Cached:
    """An identifier that answers each distinct text once: duplicates and test rows leaked from train are common.

    Composition rather than a subclass, so that it wraps any :class:`tunesmith.data.langid.Identifier`.
    """

    def __init__(self, identifier: Identifier) -> None:
        self.identifier = identifier
        self.rows: dict[str, tuple[str, float]] = {}
        self.words: dict[str, list[tuple[str, str]]] = {}

    def predict(self, text: str) -> tuple[str, float]:
        if text not in self.rows:
            self.rows[text] = self.identifier.predict(text)
        return self.rows[text]

    def predict_words(self, text: str) -> list[tuple[str, str]]:
        if text not in self.words:
            self.words[text] = self.identifier.predict_words(text)
        return self.words[text]


def _identifier(identifier: Identifier | None) -> Identifier:
    """The caller's identifier, or the shipped model (loaded on first use: numpy and a 2 MB JSON file), cached."""
    if isinstance(identifier, _Cached):
        return identifier
    if identifier is None:
        from tunesmith.data.langid import load_default

        identifier = load_default()
    return _Cached(identifier)


def _dominant(counts: Counter[str]) -> str:
    """The script with most letters (ties alphabetical), as :func:`tunesmith.data.script.dominant_script`."""
    letters = [(-n, s) for s, n in counts.items() if s not in IGNORED and n]
    return min(letters)[1] if letters else COMMON


def _scripts(counts: Sequence[Sequence[Counter[str]]]) -> dict[str, Any]:
    """Rows per dominant script (``Latin→Ethiopic`` for a parallel row) and each script's share of all letters."""
    dominant: Counter[str] = Counter()
    pooled: Counter[str] = Counter()
    for per in counts:
        dominant["→".join(_dominant(c) for c in per)] += 1
        for c in per:
            pooled.update({s: n for s, n in c.items() if s not in IGNORED})
    letters = sum(pooled.values())
    shares = {s: round(n / letters, 6) for s, n in sorted(pooled.items(), key=lambda kv: (-kv[1], kv[0]))}
    return {"dominant": dict(dominant.most_common()), "shares": shares if letters else {}}


def _multi_script(counts: Sequence[Counter[str]]) -> bool:
    """Whether a text has letters of two scripts: a precondition for a mixed-script word, and cheap to test."""
    return any(sum(1 for s, n in c.items() if n and s not in IGNORED) > 1 for c in counts)


def _given_cmi(record: Mapping[str, Any]) -> float | None:
    """Stage 1's CMI of a record (``detected.cmi``), when it has one."""
    detected = record.get("detected")
    value = detected.get("cmi") if isinstance(detected, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cmi(
    records: Sequence[Mapping[str, Any]],
    segments: Sequence[Sequence[str]],
    identifier: Identifier,
    max_rows: int | None,
) -> dict[str, Any]:
    """CMI summary and histogram: stage 1's values when every row has one, else measured on evenly spaced rows.

    Measuring takes at most ``max_rows`` rows and about :data:`CMI_MAX_WORDS` words.
    """
    n = len(segments)
    given = [_given_cmi(r) for r in records]
    if n and all(v is not None for v in given):
        values = [float(v or 0.0) for v in given]
    else:
        cut = [[s[:LANGUAGE_CHARS] for s in segs] for segs in segments]
        m = n
        if max_rows is not None:
            words = sum(len(s.split()) for segs in cut for s in segs)
            m = min(n, max_rows, max(1, n * CMI_MAX_WORDS // max(1, words)))
        picked = range(n) if m == n else [i * n // m for i in range(m)]
        values = [max(row_cmi(s, identifier) for s in cut[i]) for i in picked]
    summary = {k: round(v, 4) for k, v in cmi_summary(values).items() if k != "rows"}
    return {"rows": len(values), "of_rows": n, **summary, "histogram": [list(b) for b in cmi_histogram(values)]}


def _lengths(texts: Sequence[Mapping[str, str]], tokens: Mapping[str, list[int]] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dict.fromkeys(k for t in texts for k in t):
        values = [t.get(name, "") for t in texts]
        entry = {
            "chars": percentiles([len(v) for v in values]),
            "words": percentiles([len(v.split()) for v in values]),
        }
        if tokens is not None:
            entry["tokens"] = percentiles(tokens[name])
        out[name] = entry
    return out


def _label(value: Any) -> str:
    return ("good" if value else "bad") if isinstance(value, bool) else str(value)


def _label_tables(records: Sequence[Mapping[str, Any]], languages: Sequence[str]) -> tuple[dict, dict]:
    """Label counts and the language x label table, for kinds whose records carry a ``label``."""
    if not records or "label" not in records[0]:
        return {}, {}
    labels = [_label(r.get("label")) for r in records]
    table: dict[str, Counter[str]] = {}
    for lang, label in zip(languages, labels, strict=True):
        table.setdefault(lang, Counter())[label] += 1
    ordered = sorted(table, key=lambda lang: (-sum(table[lang].values()), lang))
    return dict(Counter(labels).most_common()), {lang: dict(sorted(table[lang].items())) for lang in ordered}


def _groups(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Rows per value of each group column; past the most common values the rest are summed as ``(other)``."""
    per: dict[str, Counter[str]] = {}
    for r in records:
        for column, value in (r.get("groups") or {}).items():
            per.setdefault(column, Counter())[str(value)] += 1
    out: dict[str, dict[str, int]] = {}
    for column, counts in per.items():
        top = dict(counts.most_common(TOP_GROUP_VALUES))
        rest = sum(counts.values()) - sum(top.values())
        out[column] = {**top, "(other)": rest} if rest else top
    return out


def profile_split(
    records: Sequence[Mapping[str, Any]],
    kind: str,
    *,
    identifier: Identifier | None = None,
    tokenizer: Any = None,
    near_threshold: float = 0.8,
    cmi_rows: int | None = CMI_MAX_ROWS,
) -> dict[str, Any]:
    """Profile one split: every per-split section of the card (all but ``leaks`` and ``rejects``).

    Args:
        records: Records of one kind (:func:`tunesmith.data.records.to_record`), optionally with ``detected``.
        kind: Their record kind.
        identifier: Language identifier (``predict`` and ``predict_words``); the shipped model when None.
        tokenizer: A ``tokenizers.Tokenizer`` or a transformers tokenizer; adds token lengths and fertility.
        near_threshold: Jaccard at or above which two rows are near-duplicates.
        cmi_rows: Rows measured for CMI (evenly spaced); None measures every row.

    Returns:
        A JSON-ready dict keyed by section name.
    """
    identifier = _identifier(identifier)
    texts = [field_texts(r, kind) for r in records]
    segments = [_segments(r, kind, t) for r, t in zip(records, texts, strict=True)]
    seg_langs = [_languages(r, kind, s, identifier) for r, s in zip(records, segments, strict=True)]
    languages = ["→".join(langs) for langs in seg_langs]
    labels, by_language = _label_tables(records, languages)
    keys = [dedup_key(dict(r), kind) for r in records]
    scripts = [[script_counts(s) for s in segs] for segs in segments]
    out: dict[str, Any] = {
        "counts": len(records),
        "languages": dict(Counter(languages).most_common()),
        "scripts": _scripts(scripts),
        "cmi": _cmi(records, segments, identifier, cmi_rows),
        "lengths": {},
        "labels": labels,
        "label_by_language": by_language,
        "groups": _groups(records),
        "duplicates": duplicates(records, kind, keys, near_threshold),
        "homoglyphs": homoglyphs(records, texts, [_multi_script(c) for c in scripts]),
        "fertility": {},
    }
    tokens = token_lengths(tokenizer, texts) if tokenizer is not None else None
    out["lengths"] = _lengths(texts, None if tokens is None else tokens.lengths)
    if tokens is not None:
        out["fertility"] = fertility_counts(tokens, texts, seg_langs, kind == "parallel")
    return out


def profile_dataset(
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    kind: str,
    *,
    identifier: Identifier | None = None,
    tokenizer: Any = None,
    rejects: Mapping[str, int] | Sequence[Any] | None = None,
    near_threshold: float = 0.8,
    cmi_rows: int | None = CMI_MAX_ROWS,
) -> dict[str, Any]:
    """The data card: every section of :data:`SECTIONS` for all splits, plus leaks between them.

    Args:
        splits: Records per split name. Leaks are checked from earlier to later splits in
            :func:`split_order` (train -> validation -> test when the names say so).
        kind: The record kind of every split.
        identifier: Language identifier; the shipped model when None.
        tokenizer: Adds token lengths and per-language fertility (see :mod:`tunesmith.data.fertility`).
        rejects: Rows not kept: ``Reject`` objects (or their ``to_json`` dicts), or counts by reason.
        near_threshold: Jaccard at or above which rows are near-duplicates (within a split and across splits).
        cmi_rows: Rows per split measured for CMI; None measures every row.

    Returns:
        A JSON-ready dict: ``schema``, ``version``, ``kind``, ``splits`` (in leak order), ``settings`` and the
        sections. Per-split sections map split name -> value; ``leaks`` is a list of split pairs, ``rejects``
        and ``fertility`` are pooled over splits.
    """
    identifier = _identifier(identifier)  # one cache for all splits: leaked rows are predicted once
    order = split_order(splits)
    per = {
        name: profile_split(
            splits[name],
            kind,
            identifier=identifier,
            tokenizer=tokenizer,
            near_threshold=near_threshold,
            cmi_rows=cmi_rows,
        )
        for name in order
    }
    card: dict[str, Any] = {
        "schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "kind": kind,
        "splits": order,
        "settings": {
            "near_threshold": near_threshold,
            "language_chars": LANGUAGE_CHARS,
            "cmi_max_rows": cmi_rows,
            "tokenizer": _tokenizer_name(tokenizer),
            "identifier_languages": _known_languages(identifier),
        },
    }
    for section in SECTIONS:
        card[section] = {name: per[name][section] for name in order if section in per[name]}
    card["leaks"] = [
        {"earlier": a, "later": b, **leaks(splits[a], splits[b], kind, near_threshold)}
        for k, b in enumerate(order)
        for a in order[:k]
    ]
    card["rejects"] = rejects_summary(rejects)
    card["fertility"] = pool_fertility([per[name]["fertility"] for name in order]) if tokenizer is not None else {}
    return card


def _known_languages(identifier: Identifier) -> list[str] | None:
    """The languages the identifier can answer (a language it lacks shows up as its nearest neighbour)."""
    inner = identifier.identifier if isinstance(identifier, _Cached) else identifier
    languages = getattr(inner, "languages", None)
    return sorted(map(str, languages)) if isinstance(languages, list | tuple) else None


def _tokenizer_name(tokenizer: Any) -> str | None:
    if tokenizer is None:
        return None
    return str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
