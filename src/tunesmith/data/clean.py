"""Cleaning steps: pure functions of a record that return the cleaned record, or None with a reason.

Each step is small and testable on its own; :func:`clean_records` composes them, drops exact duplicates,
and reports every drop so that nothing is lost silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from tunesmith.config.schema import CleanConfig
from tunesmith.data.records import Reject, dedup_key, text_fields

# Control characters except tab/newline, and zero-width/bidi marks that break tokenisation.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def normalize_text(text: str, form: str) -> str:
    """Unicode normalisation (``nfc``, ``nfkc``) or ``none``."""
    return text if form == "none" else unicodedata.normalize(form.upper(), text)  # type: ignore[arg-type]


def strip_invisible(text: str) -> str:
    """Remove control and zero-width characters and collapse runs of spaces; keeps newlines."""
    text = _INVISIBLE.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(lines).strip()


def clean_record(record: dict[str, Any], kind: str, config: CleanConfig) -> tuple[dict[str, Any] | None, str | None]:
    """Apply normalisation and stripping to every text field; reject what ends up too short."""
    out = dict(record)
    for name in text_fields(kind):
        if name not in out:
            continue
        value = normalize_text(out[name], config.normalize)
        if config.strip_control:
            value = strip_invisible(value)
        out[name] = value
    main = out.get("text", out.get("instruction", ""))
    if len(main) < config.min_chars:
        return None, f"text shorter than min_chars={config.min_chars} after cleaning"
    return out, None


def clean_records(
    records: Iterable[dict[str, Any]], kind: str, config: CleanConfig
) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Clean every record and drop exact duplicates (first occurrence kept); return kept and rejected."""
    kept: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        cleaned, reason = clean_record(record, kind, config)
        src = record["source"]
        if cleaned is None:
            rejects.append(Reject(src["file"], src["line"], None, reason or "rejected", _row_view(record)))
            continue
        if config.dedup == "exact":
            key = dedup_key(cleaned, kind)
            first = seen.get(key)
            if first is not None:
                where = f"{first['source']['file']}:{first['source']['line']}"
                rejects.append(
                    Reject(src["file"], src["line"], None, f"exact duplicate of {where}", _row_view(record))
                )
                continue
            seen[key] = cleaned
        kept.append(cleaned)
    return kept, rejects


def _row_view(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "source"}
