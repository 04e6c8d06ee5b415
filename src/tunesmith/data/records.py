"""Typed records from raw rows: each kind names its fields, and a row that does not fit is rejected with why.

Records are plain dicts with canonical keys so that they serialise to JSONL unchanged, whatever the input
called its columns:

- ``text``: ``text``
- ``classification``: ``text``, ``label``
- ``instruction``: ``instruction``, ``input`` (optional), ``output``
- ``prompt_completion``: ``prompt``, ``completion``
- ``messages``: ``messages`` = ``[{"role": "system"|"user"|"assistant", "content"}]`` (ShareGPT mapped to it)
- ``parallel``: ``source_text``, ``target_text``, ``source_lang``/``target_lang`` (optional ISO codes)
- ``preference``: ``prompt``, ``chosen``, ``rejected`` (HH-RLHF dialogues without a prompt are split)
- ``ranking``: ``prompt``, ``responses`` (list), ``ranks`` (ints, 1 = best, ties equal; default: list order)
- ``rating``: ``prompt``, ``response``, ``score`` (float)
- ``choice``: ``prompt``, ``candidates`` (list), ``chosen`` (0-based index)
- ``unpaired``: ``prompt``, ``response``, ``label`` (bool: good/bad)

Every record also carries ``groups`` (group column values) and ``source`` = ``{"file", "line"}`` for
lineage and rejects; that is why parallel text uses ``source_text``, not ``source``. Input columns are
found through ``columns`` (field -> column) or, failing that, the usual names in :data:`FIELD_ALIASES`.
How each field's value is checked and converted lives in :mod:`tunesmith.data.fields`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tunesmith.data.dialogue import split_hh_pair
from tunesmith.data.fields import FIELD_TYPES, Invalid, convert, is_null, json_safe, resolve_index
from tunesmith.data.readers import Row
from tunesmith.errors import DataError

KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required fields, optional fields)
    "classification": (("text", "label"), ()),
    "instruction": (("instruction", "output"), ("input",)),
    "text": (("text",), ()),
    "prompt_completion": (("prompt", "completion"), ()),
    "messages": (("messages",), ()),
    "parallel": (("source_text", "target_text"), ("source_lang", "target_lang")),
    "preference": (("chosen", "rejected"), ("prompt",)),
    "ranking": (("prompt", "responses"), ("ranks",)),
    "rating": (("prompt", "response", "score"), ()),
    "choice": (("prompt", "candidates", "chosen"), ()),
    "unpaired": (("prompt", "response", "label"), ()),
}
KINDS = tuple(KIND_FIELDS)

# Input column names tried in order for a field that ``columns`` does not map (default: the field's name).
# They are the names popular public datasets use (AfriSenti's tweet, Dolly's context/response, Aya's
# inputs/targets, KTO's completion, MMLU's question/choices/answer), so those load without a column map.
FIELD_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "classification": {"text": ("text", "tweet", "sentence")},
    "instruction": {"input": ("input", "context"), "output": ("output", "response")},
    "prompt_completion": {"prompt": ("prompt", "inputs"), "completion": ("completion", "targets", "response")},
    "messages": {"messages": ("messages", "conversations")},
    "parallel": {
        "source_text": ("source_text", "source", "src"),
        "target_text": ("target_text", "target", "tgt"),
        "source_lang": ("source_lang", "src_lang"),
        "target_lang": ("target_lang", "tgt_lang"),
    },
    "ranking": {"responses": ("responses", "completions")},
    "choice": {
        "prompt": ("prompt", "question"),
        "candidates": ("candidates", "choices"),
        "chosen": ("chosen", "answer"),
    },
    "unpaired": {"response": ("response", "completion")},
}
# Keys accepted in ``columns`` besides the field name (users think of parallel text as source/target).
FIELD_SYNONYMS: dict[str, dict[str, str]] = {"parallel": {"source": "source_text", "target": "target_text"}}

# The fields that identify a record for duplicate and leak detection: the input side, not the answer or
# judgement (labels, outputs, scores, ranks are excluded on purpose: the same input with two different
# answers is a duplicate, or a leak across splits).
_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("text",),
    "instruction": ("instruction", "input"),
    "text": ("text",),
    "prompt_completion": ("prompt",),
    "parallel": ("source_lang", "target_lang", "source_text"),
    "preference": ("prompt", "chosen", "rejected"),
    "ranking": ("prompt", "responses"),
    "rating": ("prompt", "response"),
    "choice": ("prompt", "candidates"),
    "unpaired": ("prompt", "response"),
}
_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("text",),
    "instruction": ("instruction", "input", "output"),
    "text": ("text",),
    "prompt_completion": ("prompt", "completion"),
    "messages": ("messages",),
    "parallel": ("source_text", "target_text"),
    "preference": ("prompt", "chosen", "rejected"),
    "ranking": ("prompt", "responses"),
    "rating": ("prompt", "response"),
    "choice": ("prompt", "candidates"),
    "unpaired": ("prompt", "response"),
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
        """JSON-ready (Parquet rows may hold bytes or timestamps, which are written as text)."""
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "reason": self.reason,
            "row": json_safe(self.row),
        }


def _check_kind(kind: str) -> None:
    if kind not in KIND_FIELDS:
        raise DataError(f"Unknown record kind '{kind}'. Kinds: {', '.join(KINDS)}.")


def _mapped(kind: str, name: str, columns: Mapping[str, str] | None) -> str | None:
    """The column ``columns`` maps field ``name`` to, under its own name or a synonym."""
    columns = columns or {}
    if name in columns:
        return columns[name]
    return next((columns[k] for k, v in FIELD_SYNONYMS.get(kind, {}).items() if v == name and k in columns), None)


def _column(kind: str, name: str, present: Iterable[str], columns: Mapping[str, str] | None) -> str | None:
    """The input column holding field ``name``: mapped in ``columns``, else the first alias present."""
    mapped = _mapped(kind, name, columns)
    if mapped is not None:
        return mapped if mapped in present else None
    return next((c for c in FIELD_ALIASES.get(kind, {}).get(name, (name,)) if c in present), None)


def _wanted(kind: str, name: str, columns: Mapping[str, str]) -> str:
    """How to name a missing field's column in a reject: the mapped column, or the aliases."""
    return _mapped(kind, name, columns) or "' or '".join(FIELD_ALIASES.get(kind, {}).get(name, (name,)))


def _read_fields(row: Row, kind: str, columns: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The kind's fields converted to their types, and the column each came from (for rejects)."""
    required, optional = KIND_FIELDS[kind]
    record: dict[str, Any] = {}
    used: dict[str, str] = {}
    for name in (*required, *optional):
        column = _column(kind, name, row.fields, columns)
        if column is None:
            if name in required:
                have = ", ".join(map(str, row.fields)) or "none"
                wanted = _wanted(kind, name, columns)
                raise Invalid(wanted.split("'")[0], f"missing column '{wanted}' (columns here: {have})")
            continue
        used[name] = column
        value = row.fields[column]
        if is_null(value):
            if name in required:
                raise Invalid(column, "value is null")
            continue
        record[name] = convert(FIELD_TYPES.get((kind, name), "text"), value, column, name in required)
    return record, used


def _classification(record: dict[str, Any], used: dict[str, str], labels: list[str] | None) -> None:
    if labels is not None and record["label"] not in labels:
        raise Invalid(used["label"], f"label '{record['label']}' is not in the label set {labels}")


def _preference(record: dict[str, Any], used: dict[str, str], labels: list[str] | None) -> None:
    if "prompt" not in record:
        try:
            record["prompt"], record["chosen"], record["rejected"] = split_hh_pair(
                record["chosen"], record["rejected"]
            )
        except ValueError as exc:
            raise Invalid(used["rejected" if str(exc).startswith("the rejected") else "chosen"], str(exc)) from None
    elif not record["prompt"].strip():
        raise Invalid(used["prompt"], "empty value")
    if record["chosen"].strip() == record["rejected"].strip():
        raise Invalid(used["rejected"], "chosen and rejected are the same text")
    record.update({k: record.pop(k) for k in ("prompt", "chosen", "rejected")})  # canonical key order


def _ranking(record: dict[str, Any], used: dict[str, str], labels: list[str] | None) -> None:
    n = len(record["responses"])
    ranks = record.setdefault("ranks", list(range(1, n + 1)))
    if len(ranks) != n:
        raise Invalid(used.get("ranks", "ranks"), f"{len(ranks)} ranks for {n} responses")
    if len(set(ranks)) == 1:
        raise Invalid(used.get("ranks", "ranks"), "all responses tie, so the ranking states no preference")


def _choice(record: dict[str, Any], used: dict[str, str], labels: list[str] | None) -> None:
    record["chosen"] = resolve_index(record["chosen"], record["candidates"], used["chosen"])


_CHECKS: dict[str, Callable[[dict[str, Any], dict[str, str], list[str] | None], None]] = {
    "classification": _classification,
    "preference": _preference,
    "ranking": _ranking,
    "choice": _choice,
}


def to_record(
    row: Row, kind: str, columns: dict[str, str], groups: list[str], labels: list[str] | None
) -> dict[str, Any] | Reject:
    """Map a row to a record of ``kind``, or a Reject naming the field (input column) and reason.

    Never raises for bad data: every row read becomes exactly one record or one reject, so counts add up.

    Raises:
        DataError: ``kind`` is not a known record kind (a config error, not a data one).
    """
    _check_kind(kind)
    if "error" in row.extra:
        return Reject(row.file, row.line, None, row.extra["error"], row.fields)
    try:
        record, used = _read_fields(row, kind, columns)
        check = _CHECKS.get(kind)
        if check is not None:
            check(record, used, labels)
        group_values: dict[str, str] = {}
        for g in groups:
            column = columns.get(g, g)
            value = row.fields.get(column)
            if is_null(value) or not str(value).strip():
                raise Invalid(column, f"group column '{column}' is missing or empty")
            group_values[g] = str(value).strip()
    except Invalid as bad:
        return Reject(row.file, row.line, bad.column, bad.reason, row.fields)
    record["groups"] = group_values
    record["source"] = {"file": row.file, "line": row.line}
    return record


def text_fields(kind: str) -> tuple[str, ...]:
    """The free-text fields of a kind, which cleaning normalises.

    For ``messages``, ``ranking`` and ``choice`` some of these hold lists (of messages or texts); use
    :func:`map_texts` to transform every text of a record whatever its kind.
    """
    _check_kind(kind)
    return _TEXT_FIELDS[kind]


def map_texts(record: dict[str, Any], kind: str, fn: Callable[[str], str]) -> dict[str, Any]:
    """A copy of ``record`` with ``fn`` applied to every free text (message contents and list items too)."""
    out = dict(record)
    for name in text_fields(kind):
        value = out.get(name)
        if isinstance(value, str):
            out[name] = fn(value)
        elif name == "messages" and isinstance(value, list):
            out[name] = [{**m, "content": fn(m["content"])} for m in value]
        elif isinstance(value, list):
            out[name] = [fn(v) for v in value]
    return out


def primary_text(record: dict[str, Any], kind: str) -> str:
    """The text a length filter should look at: the input a model is given (first user turn for chats)."""
    if kind == "messages":
        return next((m["content"] for m in record.get("messages", []) if m["role"] == "user"), "")
    name = {"text": "text", "classification": "text", "instruction": "instruction", "parallel": "source_text"}
    return str(record.get(name.get(kind, "prompt"), ""))


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def dedup_key(record: dict[str, Any], kind: str) -> str:
    """The text that identifies a record for duplicate and leak detection (answers and labels excluded).

    A chat is keyed by every turn but the final assistant answer; ranked responses are keyed as a set.
    """
    if kind == "messages":
        turns = record.get("messages", [])
        if turns and turns[-1]["role"] == "assistant":
            turns = turns[:-1]
        return "\x1f".join(f"{m['role']}:{_norm(m['content'])}" for m in turns)
    _check_kind(kind)
    parts: list[str] = []
    for name in _KEY_FIELDS[kind]:
        value = record.get(name, "")
        if isinstance(value, list):
            items = sorted(_norm(v) for v in value) if kind == "ranking" else [_norm(v) for v in value]
            parts.append("\x1e".join(items))
        else:
            parts.append(_norm(str(value)))
    return "\x1f".join(parts)


def _describe(kind: str) -> str:
    required, optional = KIND_FIELDS[kind]
    aliases = FIELD_ALIASES.get(kind, {})
    need = " + ".join("/".join(aliases.get(n, (n,))) for n in required)
    extra = f" (optional: {', '.join('/'.join(aliases.get(n, (n,))) for n in optional)})" if optional else ""
    return f"{kind}: {need}{extra}"


def detect_kind(fields: Iterable[str], *, columns: Mapping[str, str] | None = None) -> str:
    """The record kind that the column names fit, preferring the kind that uses the most of them.

    ``{text, label}`` is ``classification`` (text alone would ignore the label), ``{prompt, completion,
    label}`` is ``unpaired``; a tie between kinds is reported rather than guessed.

    Raises:
        DataError: no kind fits, or several fit equally well; the message lists what each kind needs.
    """
    present = [str(f) for f in fields]
    fits: dict[str, int] = {}
    for kind, (required, optional) in KIND_FIELDS.items():
        found = [_column(kind, name, present, columns) for name in (*required, *optional)]
        if all(found[: len(required)]):
            fits[kind] = sum(1 for c in found if c is not None)
    shown = ", ".join(present) or "none"
    if not fits:
        needs = "; ".join(_describe(k) for k in KINDS)
        raise DataError(
            f"No record kind fits the columns ({shown}). Each kind needs: {needs}. "
            "Rename the columns or map them with data.columns."
        )
    best = max(fits.values())
    top = [k for k, v in fits.items() if v == best]
    if len(top) > 1:
        options = "; ".join(_describe(k) for k in top)
        raise DataError(
            f"The columns ({shown}) fit several record kinds equally well: {options}. "
            f"Set data.format to one of {', '.join(top)}."
        )
    return top[0]
