"""Line-aligned parallel files (Moses / NTREX style: line *i* of each file is the same sentence) as records.

Translation data usually ships as one plain-text file per language. :func:`align_files` zips them into
``parallel`` records (``source_text``, ``target_text``, languages, and a ``doc`` group when a document-id
file is given, so ``split.keep_together: doc`` keeps each article inside one split). Files of different
lengths are an error naming both counts: a shifted line would pair every later sentence with the wrong
translation, silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunesmith.errors import DataError
from tunesmith.rundir import atomic_write_text


def _lines(path: Path) -> list[str]:
    """Every physical line of a text file (empty ones too: they hold a position in the alignment)."""
    from tunesmith.data.textio import open_text, read_errors

    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    with open_text(path) as fh, read_errors(path):
        return [line.rstrip("\r\n") for line in fh]


def align_files(
    source: Path, target: Path, source_lang: str, target_lang: str, doc_ids: Path | None = None
) -> Iterator[dict[str, Any]]:
    """One row per aligned line pair (empty pairs skipped); raises when the files' line counts differ."""
    columns = {"source": _lines(source), "target": _lines(target)}
    if doc_ids is not None:
        columns["doc"] = _lines(doc_ids)
    counts = {str(p): len(v) for p, v in zip((source, target, doc_ids), columns.values(), strict=False)}
    if len(set(counts.values())) != 1:
        shown = ", ".join(f"{p}: {n} lines" for p, n in counts.items())
        raise DataError(f"Line-aligned files must have the same number of lines; {shown}.")
    for i, (src, tgt) in enumerate(zip(columns["source"], columns["target"], strict=True)):
        if not src.strip() and not tgt.strip():
            continue
        row: dict[str, Any] = {
            "source": src,
            "target": tgt,
            "source_lang": source_lang,
            "target_lang": target_lang,
            "line": i + 1,
        }
        if "doc" in columns:
            row["doc"] = columns["doc"][i].strip()
        yield row


def write_aligned(rows: Iterator[dict[str, Any]], out: Path) -> int:
    """Write the rows as JSONL (atomically); returns how many."""
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    atomic_write_text(out, "".join(line + "\n" for line in lines))
    return len(lines)
