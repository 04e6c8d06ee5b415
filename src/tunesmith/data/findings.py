"""What is wrong in a dataset, for the data card: duplicates, leaks between splits, homoglyphs, rejected rows.

Each finding comes with counts and a few examples that name the row (``file:line``), because a count alone
("926 test rows leak") invites doubt, while the rows themselves settle it. Duplicates and leaks compare
:func:`tunesmith.data.records.dedup_key` (the input side of a record: labels and answers excluded, so the same
tweet with two labels is a duplicate), exactly and as near-duplicates (:mod:`tunesmith.data.dedup`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tunesmith.data.dedup import cross_near_duplicates, near_duplicate_clusters
from tunesmith.data.homoglyph import find_mixed_script_words
from tunesmith.data.records import dedup_key, primary_text

__all__ = ["duplicates", "homoglyphs", "leaks", "reason_class", "rejects_summary"]

EXAMPLE_CHARS = 200
TOP = 10
_ESCAPE = re.compile(r"\\[nrt]")  # a backslash and n/r/t written out: an escape that was never decoded
_CLUSTER_BINS = ((2, 2, "2"), (3, 3, "3"), (4, 4, "4"), (5, 9, "5-9"), (10, math.inf, "10+"))


def _where(record: Mapping[str, Any]) -> str:
    source = record.get("source") or {}
    return f"{source.get('file', '?')}:{source.get('line', '?')}"


def _example(record: Mapping[str, Any], kind: str) -> dict[str, str]:
    text = primary_text(dict(record), kind)
    return {"text": text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…", "source": _where(record)}


def duplicates(records: Sequence[Mapping[str, Any]], kind: str, keys: Sequence[str], threshold: float) -> dict:
    """Exact repeats of an earlier row's key, and near-duplicate clusters (largest first, with examples).

    ``label_conflicts`` counts keys repeated with different labels: the same tweet marked both positive and
    negative teaches a classifier noise, and caps the accuracy any model can reach on it.
    """
    exact = len(keys) - len(set(keys))
    labels: dict[str, set[str]] = {}
    for key, record in zip(keys, records, strict=True):
        if "label" in record:
            labels.setdefault(key, set()).add(str(record["label"]))
    members: dict[int, list[int]] = {}
    for i, c in enumerate(near_duplicate_clusters(keys, threshold) if keys else []):
        members.setdefault(c, []).append(i)
    clusters = sorted((m for m in members.values() if len(m) > 1), key=lambda m: (-len(m), m[0]))
    sizes = [len(m) for m in clusters]
    return {
        "exact": exact,
        "label_conflicts": sum(len(v) > 1 for v in labels.values()),
        "near_clusters": len(clusters),
        "near_rows": sum(sizes),
        "cluster_sizes": [[label, sum(lo <= s <= hi for s in sizes)] for lo, hi, label in _CLUSTER_BINS],
        "largest": [{"size": len(m), "examples": [_example(records[i], kind) for i in m[:3]]} for m in clusters[:TOP]],
    }


def homoglyphs(
    records: Sequence[Mapping[str, Any]], texts: Sequence[Mapping[str, str]], candidates: Sequence[bool]
) -> dict[str, Any]:
    """Text that is not what it looks like: mixed-script words (look-alike letters) and literal ``\\n`` escapes.

    Mixed-script words are listed most frequent first, each with its Latin repair when one is known. A literal
    backslash-n (AfriSenti arq has 327 train rows with one) is an escaped newline that a scraper wrote as two
    characters: the tokenizer sees ``\\`` and ``n``, and the word after it would otherwise be reported as
    mixed-script (``nوعلاه``), so escapes are counted apart and read as spaces in the word search.

    Only ``candidates`` (rows with letters of two scripts) are searched word by word: that skips almost every
    row, which matters because the word search costs about as much as language identification.
    """
    rows = escaped = 0
    words: Counter[str] = Counter()
    info: dict[str, dict[str, Any]] = {}
    for record, fields, candidate in zip(records, texts, candidates, strict=True):
        text = "\n".join(fields.values())
        has_escape = "\\" in text and _ESCAPE.search(text) is not None
        escaped += has_escape
        if not candidate:
            continue
        found = find_mixed_script_words(_ESCAPE.sub(" ", text) if has_escape else text)
        rows += bool(found)
        for w in found:
            words[w.word] += 1
            info.setdefault(w.word, {"scripts": list(w.scripts), "suggestion": w.suggestion, "first": _where(record)})
    top = [{"word": w, "count": n, **info[w]} for w, n in words.most_common(TOP)]
    return {"rows": rows, "words": len(words), "top": top, "literal_escapes": escaped}


def leaks(earlier: Sequence[Mapping[str, Any]], later: Sequence[Mapping[str, Any]], kind: str, t: float) -> dict:
    """Rows of ``later`` whose key occurs in ``earlier`` (exact) or nearly does (near, exact ones excluded)."""
    ref = [dedup_key(dict(r), kind) for r in earlier]
    query = [dedup_key(dict(r), kind) for r in later]
    first: dict[str, int] = {}
    for i, k in enumerate(ref):
        first.setdefault(k, i)
    exact = [(i, first[k], 1.0) for i, k in enumerate(query) if k in first]
    matches = cross_near_duplicates(query, ref, t) if ref and query else []
    near = [(i, m[0], m[1]) for i, m in enumerate(matches) if m is not None and query[i] not in first]

    def show(pairs: list[tuple[int, int, float]]) -> list[dict[str, Any]]:
        return [
            {**_example(later[i], kind), "earlier": _where(earlier[j]), "jaccard": round(jac, 3)}
            for i, j, jac in pairs[:5]
        ]

    return {
        "exact": len(exact),
        "near": len(near),
        "rows": len(exact) + len(near),
        "of_rows": len(later),
        "exact_examples": show(exact),
        "near_examples": show(near),
    }


SPLIT_NAMES = ("train", "validation", "test")


def reason_class(reason: str) -> str:
    """The stable part of a reject reason (no file:line, Jaccard or column list), for counting by reason.

    The prepare summary, the manifest and the data card all count by this one rule.
    """
    if reason.startswith("exact duplicate"):
        return "exact duplicate"
    if reason.startswith("near duplicate"):
        return "near duplicate"
    for name in SPLIT_NAMES:
        if reason.startswith(f"{name} row also in"):
            how = "near-duplicate" if "as a near duplicate" in reason else "exact"
            return f"{name} row leaked from an earlier split ({how})"
    if reason.startswith("missing column"):
        return reason.split(" (")[0]
    if reason.startswith("label '"):
        return "label not in the label set"
    if reason.startswith("invalid JSON"):
        return "invalid JSON"
    reason = re.sub(r" (?:of|in|from) \S+:\d+\S*$", "", reason)
    return re.sub(r" \([^)]*\)", "", reason).strip()


def _field(reject: Any, name: str) -> Any:
    return reject.get(name) if isinstance(reject, Mapping) else getattr(reject, name, None)


def rejects_summary(rejects: Mapping[str, int] | Sequence[Any] | None) -> dict[str, Any]:
    """Counts by reason (and up to 3 examples each when the rejects themselves are given)."""
    if rejects is None:
        return {}
    counts: Counter[str] = Counter()
    examples: dict[str, list[dict[str, Any]]] = {}
    if isinstance(rejects, Mapping):
        counts.update({str(k): int(v) for k, v in rejects.items()})
    for r in [] if isinstance(rejects, Mapping) else rejects:
        reason = str(_field(r, "reason"))
        cls = reason_class(reason)
        counts[cls] += 1
        shown = examples.setdefault(cls, [])
        if len(shown) < 3:
            where = f"{_field(r, 'file')}:{_field(r, 'line')}"
            shown.append({"source": where, "field": _field(r, "field"), "reason": reason})
    return {"total": sum(counts.values()), "by_reason": dict(counts.most_common()), "examples": examples}
