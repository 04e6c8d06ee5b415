"""Typed records from raw rows: each kind names its fields, and a row that does not fit is rejected with why.

Records are plain dicts with canonical keys so that they serialise to JSONL unchanged:

- ``classification``: ``text``, ``label`` (+ ``groups``)
- ``instruction``: ``instruction``, ``input`` (optional), ``output`` (+ ``groups``)
- ``text``: ``text`` (+ ``groups``)

Every record also carries ``source`` = ``{"file", "line"}`` for lineage and rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunesmith.data.readers import Row

KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required fields, optional fields)
    "classification": (("text", "label"), ()),
    "instruction": (("instruction", "output"), ("input",)),
    "text": (("text",), ()),
}


@dataclass(frozen=True)
class Reject:
    """Why a row was not kept: written to rejects.jsonl with the row's origin."""

    file: str
    line: int
    field: str | None
    reason: str
    row: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason, "row": self.row}


def to_record(
    row: Row, kind: str, columns: dict[str, str], groups: list[str], labels: list[str] | None
) -> dict[str, Any] | Reject:
    """Map a row to a record of ``kind``, or a Reject naming the field and reason."""
    if "error" in row.extra:
        return Reject(row.file, row.line, None, row.extra["error"], row.fields)
    required, optional = KIND_FIELDS[kind]
    record: dict[str, Any] = {}
    for name in (*required, *optional):
        column = columns.get(name, name)
        if column not in row.fields:
            if name in required:
                have = ", ".join(map(str, row.fields)) or "none"
                return Reject(
                    row.file, row.line, column, f"missing column '{column}' (columns here: {have})", row.fields
                )
            continue
        value = row.fields[column]
        if value is None or (isinstance(value, float) and value != value):
            if name in required:
                return Reject(row.file, row.line, column, "value is null", row.fields)
            continue
        if not isinstance(value, (str, int, float, bool)):
            return Reject(row.file, row.line, column, f"expected text, got {type(value).__name__}", row.fields)
        record[name] = str(value)
        if name in required and not record[name].strip():
            return Reject(row.file, row.line, column, "empty value", row.fields)
    if kind == "classification":
        record["label"] = record["label"].strip()
        if labels is not None and record["label"] not in labels:
            return Reject(
                row.file,
                row.line,
                columns.get("label", "label"),
                f"label '{record['label']}' is not in the label set {labels}",
                row.fields,
            )
    group_values: dict[str, str] = {}
    for g in groups:
        column = columns.get(g, g)
        value = row.fields.get(column)
        if value is None or not str(value).strip():
            return Reject(row.file, row.line, column, f"group column '{column}' is missing or empty", row.fields)
        group_values[g] = str(value).strip()
    record["groups"] = group_values
    record["source"] = {"file": row.file, "line": row.line}
    return record


def text_fields(kind: str) -> tuple[str, ...]:
    """The free-text fields of a kind, which cleaning normalises."""
    return {"classification": ("text",), "instruction": ("instruction", "input", "output"), "text": ("text",)}[kind]


def dedup_key(record: dict[str, Any], kind: str) -> str:
    """The text that identifies a record for duplicate and leak detection (labels excluded on purpose)."""
    parts = [record.get(f, "") for f in text_fields(kind) if f != "output"]
    return "\x1f".join(" ".join(p.lower().split()) for p in parts)
