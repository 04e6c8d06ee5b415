"""Field values: check and convert one input value to the type its record field needs, or say why not.

Inputs come from JSON (typed), CSV/TSV (all text), Parquet (typed, sometimes bytes or timestamps), so each
converter accepts the spellings those formats produce (``"3"`` for 3, a JSON list inside a CSV cell,
``"good"`` for True) and rejects the rest with a reason a user can act on. Nothing here raises anything
but :class:`Invalid`, which :func:`tunesmith.data.records.to_record` turns into a reject.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tunesmith.data.dialogue import as_list, normalize_messages

# (kind, field) -> value type; fields not listed are free text.
FIELD_TYPES: dict[tuple[str, str], str] = {
    ("classification", "label"): "label",
    ("messages", "messages"): "messages",
    ("parallel", "source_lang"): "code",
    ("parallel", "target_lang"): "code",
    ("ranking", "responses"): "texts",
    ("ranking", "ranks"): "ranks",
    ("rating", "score"): "score",
    ("choice", "candidates"): "texts",
    ("choice", "chosen"): "index",
    ("unpaired", "label"): "bool",
}
TRUE_WORDS = frozenset({"true", "1", "yes", "good", "desirable", "thumbs_up", "👍"})
FALSE_WORDS = frozenset({"false", "0", "no", "bad", "undesirable", "thumbs_down", "👎"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"[+-]?\d+")


class Invalid(Exception):
    """A value that does not fit its field: the input column and a one-line reason."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


def is_null(value: Any) -> bool:
    """None, or a float NaN (how pandas and Parquet spell a missing value)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def as_text(value: Any, column: str, required: bool = True, what: str = "value") -> str:
    """A scalar as text (numbers from JSON become their decimal spelling); lists and objects are rejected."""
    if not isinstance(value, (str, int, float, bool)) or is_null(value):
        got = "null" if is_null(value) else type(value).__name__
        raise Invalid(column, f"expected text, got {got}" + ("" if what == "value" else f" ({what})"))
    text = str(value)
    if _SURROGATE.search(text):
        raise Invalid(column, f"{what} holds an unpaired surrogate (a broken \\u escape), which is not valid text")
    if required and not text.strip():
        raise Invalid(column, "empty value" if what == "value" else f"{what} is empty")
    return text


def _items(value: Any, column: str) -> list[Any]:
    """A list field's items (a JSON list, or a JSON string holding one), or the reason it is not one."""
    try:
        return as_list(value)
    except ValueError as exc:
        raise Invalid(column, str(exc)) from None


def _texts(value: Any, column: str) -> list[str]:
    items = _items(value, column)
    if len(items) < 2:
        raise Invalid(column, f"needs at least 2 items, got {len(items)}")
    texts = [as_text(item, column, what=f"item {i}") for i, item in enumerate(items)]
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        if text.strip() in seen:
            raise Invalid(column, f"item {i} repeats item {seen[text.strip()]}")
        seen[text.strip()] = i
    return texts


def as_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a decimal string; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()) and len(value.strip()) < 20:
        return int(value.strip())
    return None


def _ranks(value: Any, column: str) -> list[int]:
    items = _items(value, column)
    ranks = []
    for i, item in enumerate(items):
        rank = as_int(item)
        if rank is None:
            raise Invalid(column, f"rank {i} is not an integer ({item!r})")
        ranks.append(rank)
    return ranks


def _score(value: Any, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Invalid(column, f"expected a number, got {type(value).__name__}")
    try:
        score = float(value)
    except (ValueError, OverflowError):
        raise Invalid(column, f"expected a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(score):
        raise Invalid(column, f"score must be finite, got {score}")
    return score


def _bool(value: Any, column: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise Invalid(column, f"{str(value)[:40]!r} is not a good/bad label (use true/false, 1/0 or good/bad)")


def convert(kind: str, value: Any, column: str, required: bool) -> Any:
    """``value`` (not null) converted to the field type ``kind`` (see :data:`FIELD_TYPES`).

    Raises:
        Invalid: the value does not fit.
    """
    if kind == "text":
        return as_text(value, column, required)
    if kind in ("label", "code"):
        return as_text(value, column).strip()
    if kind == "messages":
        try:
            return normalize_messages(value)
        except ValueError as exc:
            raise Invalid(column, str(exc)) from None
    if kind == "texts":
        return _texts(value, column)
    if kind == "ranks":
        return _ranks(value, column)
    if kind == "score":
        return _score(value, column)
    if kind == "bool":
        return _bool(value, column)
    if kind == "index":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Invalid(column, f"expected an index or a candidate, got {type(value).__name__}")
        return value
    raise ValueError(f"unknown field type {kind!r}")  # pragma: no cover - FIELD_TYPES is fixed


def resolve_index(value: int | float | str, candidates: list[str], column: str) -> int:
    """The 0-based index of the chosen candidate, given as an index, the candidate's text, or a letter A-Z.

    A string that is both a candidate's text and a valid index of a different candidate is rejected:
    guessing would silently train on the wrong answer.
    """
    n = len(candidates)
    by_text = [i for i, c in enumerate(candidates) if isinstance(value, str) and c.strip() == value.strip()]
    index = as_int(value)
    if by_text and index is not None and 0 <= index < n and index != by_text[0]:
        raise Invalid(column, f"'{value}' is both candidate {by_text[0]} and index {index}; give an integer index")
    if by_text:
        return by_text[0]
    if index is None and isinstance(value, str) and len(value.strip()) == 1 and "A" <= value.strip() <= "Z":
        index = ord(value.strip()) - ord("A")
    if index is None:
        raise Invalid(column, f"{str(value)[:40]!r} is neither a candidate, a 0-based index, nor a letter A-Z")
    if not 0 <= index < n:
        raise Invalid(column, f"index {index} is out of range for {n} candidates (0-based)")
    return index


def json_safe(value: Any) -> Any:
    """A JSON-writable copy: bytes decoded leniently, other objects as text, broken surrogates replaced."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if _SURROGATE.search(value) else value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)
