"""Cleaning steps: pure functions of a record that return the cleaned record, or None with a reason.

Each step is small and testable on its own; :func:`clean_records` composes them over a split, drops exact
and near duplicates, and reports every drop (a :class:`Reject`) and every repair (a :class:`Change`) so
that nothing is lost or altered silently. Steps apply to every free text of a record whatever its kind
(message contents and ranked responses too), through :func:`tunesmith.data.records.map_texts`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tunesmith.config.data import CleanConfig
from tunesmith.data.records import Reject, dedup_key, map_texts, primary_text

# Control characters except tab/newline, and zero-width/bidi marks that break tokenisation.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
# Personal data, replaced by placeholders (the order matters: emails before users, urls before both).
MASKS: dict[str, tuple[re.Pattern[str], str]] = {
    "urls": (re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE), "<URL>"),
    "emails": (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<EMAIL>"),
    "users": (re.compile(r"(?<![\w@])@\w{1,30}"), "@user"),
    "phones": (re.compile(r"(?<![\w+])\+?\d[\d\s().-]{7,}\d(?!\w)"), "<PHONE>"),
}


@dataclass(frozen=True)
class Change:
    """A row that was kept but altered by a step worth reviewing (written to ``changes.jsonl``)."""

    file: str
    line: int
    step: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "step": self.step, "note": self.note}


def normalize_text(text: str, form: str) -> str:
    """Unicode normalisation (``nfc``, ``nfkc``) or ``none``."""
    return text if form == "none" else unicodedata.normalize(form.upper(), text)  # type: ignore[arg-type]


def strip_invisible(text: str) -> str:
    """Remove control and zero-width characters and collapse runs of spaces; keeps newlines."""
    text = _INVISIBLE.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return "\n".join(lines).strip()


def mask_personal(text: str, kinds: Iterable[str]) -> str:
    """Replace URLs, emails, @user handles and phone numbers (those in ``kinds``) with placeholders."""
    for name in ("urls", "emails", "users", "phones"):
        if name in kinds:
            pattern, placeholder = MASKS[name]
            text = pattern.sub(placeholder, text)
    return text


def homoglyph_step(record: dict[str, Any], kind: str, mode: str) -> tuple[dict[str, Any], str | None]:
    """Homoglyph step: repair (or only find) Greek/Cyrillic look-alikes inside Latin words."""
    from tunesmith.data.homoglyph import (
        find_mixed_script_words,
        homoglyph_reason,
        mixed_script_reason,
        repair_homoglyphs,
    )

    if mode == "off":
        return record, None
    if mode == "flag":
        found: list[Any] = []

        def look(text: str) -> str:
            found.extend(find_mixed_script_words(text))
            return text

        map_texts(record, kind, look)
        return record, mixed_script_reason(found) if found else None
    changes: list[tuple[str, str]] = []

    def fix(text: str) -> str:
        repaired, changed = repair_homoglyphs(text)
        changes.extend(changed)
        return repaired

    out = map_texts(record, kind, fix)
    return out, homoglyph_reason(changes) if changes else None


def clean_record(record: dict[str, Any], kind: str, config: CleanConfig) -> tuple[dict[str, Any] | None, str | None]:
    """Normalise, strip and mask every text field; reject what ends up too short."""

    def clean(text: str) -> str:
        text = normalize_text(text, config.normalize)
        if config.strip_control:
            text = strip_invisible(text)
        return mask_personal(text, config.mask) if config.mask else text

    out = map_texts(record, kind, clean)
    if len(primary_text(out, kind)) < config.min_chars:
        return None, f"text shorter than min_chars={config.min_chars} after cleaning"
    return out, None


def clean_records(
    records: Iterable[dict[str, Any]], kind: str, config: CleanConfig, changes: list[Change] | None = None
) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Clean every record, drop exact then near duplicates (first occurrence kept); return kept and rejected.

    Repairs and flags of the homoglyph step are appended to ``changes`` when a list is given.
    """
    kept: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    seen: dict[str, dict[str, Any]] = {}
    for record in records:
        cleaned, reason = clean_record(record, kind, config)
        src = record["source"]
        if cleaned is None:
            rejects.append(Reject(src["file"], src["line"], None, reason or "rejected", _row_view(record)))
            continue
        cleaned, note = homoglyph_step(cleaned, kind, config.homoglyphs)
        if note and changes is not None:
            changes.append(Change(src["file"], src["line"], f"homoglyphs ({config.homoglyphs})", note))
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
    if config.near_dup is not None and len(kept) > 1:
        from tunesmith.data.dedup import dedup_near

        kept, near = dedup_near(kept, kind, config.near_dup)
        rejects += near
    return kept, rejects


def _row_view(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "source"}
