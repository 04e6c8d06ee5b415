"""Read rows from data files, each with the file and line it came from.

Every reader yields :class:`Row` objects; a file that cannot be read at all raises a :class:`DataError`
naming the file (and line where it can), never a bare traceback. Rows that are readable but wrong are
not judged here: validation does that and writes them to ``rejects.jsonl``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet")
csv.field_size_limit(2**31 - 1)


@dataclass
class Row:
    """One input row: its fields, and where it came from (for rejects and lineage)."""

    fields: dict[str, Any]
    file: str
    line: int
    extra: dict[str, Any] = field(default_factory=dict)


def detect_encoding(head: bytes) -> str:
    """UTF-8 with or without BOM, or UTF-16 with a BOM."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _text_stream(path: Path) -> io.TextIOWrapper:
    with path.open("rb") as fh:
        head = fh.read(4)
    return open(path, encoding=detect_encoding(head), newline="")


def _decode_error(path: Path, exc: UnicodeDecodeError, stream: io.TextIOBase | None = None) -> DataError:
    return DataError(
        f"{path}: cannot decode as {exc.encoding} (byte offset {exc.start}): {exc.reason}. "
        "Re-save the file as UTF-8 (or UTF-16 with a BOM)."
    )


def read_jsonl(path: Path) -> Iterator[Row]:
    with _text_stream(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Row({}, str(path), lineno, {"error": f"invalid JSON: {exc.msg} at column {exc.colno}"})
                    continue
                if not isinstance(value, dict):
                    yield Row({}, str(path), lineno, {"error": f"expected a JSON object, got {type(value).__name__}"})
                    continue
                yield Row(value, str(path), lineno)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, exc) from None


def read_json(path: Path) -> Iterator[Row]:
    """A JSON array of objects, or an object of equal-length arrays (column layout)."""
    try:
        with _text_stream(path) as fh:
            value = json.load(fh)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    if isinstance(value, dict) and value and all(isinstance(v, list) for v in value.values()):
        lengths = {len(v) for v in value.values()}
        if len(lengths) != 1:
            raise DataError(f"{path}: column arrays have different lengths {sorted(lengths)}.")
        keys = list(value)
        value = [dict(zip(keys, items, strict=True)) for items in zip(*value.values(), strict=True)]
    if not isinstance(value, list):
        raise DataError(f"{path}: expected a JSON array of objects or an object of arrays.")
    for i, item in enumerate(value, start=1):
        if isinstance(item, dict):
            yield Row(item, str(path), i)
        else:
            yield Row({}, str(path), i, {"error": f"item {i} is {type(item).__name__}, not an object"})


def read_delimited(path: Path, delimiter: str) -> Iterator[Row]:
    """CSV/TSV with a header row. Quoted and raw rows may mix (as in AfriSenti arq/ary)."""
    with _text_stream(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            if len(set(header)) != len(header):
                raise DataError(f"{path}: line 1: the header repeats a column name: {header}.")
            start = reader.line_num
            for cells in reader:
                lineno = start + 1 if start else reader.line_num
                start = reader.line_num
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if len(cells) != len(header):
                    yield Row(
                        dict(zip(header, cells, strict=False)),
                        str(path),
                        lineno,
                        {"error": f"expected {len(header)} columns ({', '.join(header)}), found {len(cells)}"},
                    )
                    continue
                yield Row(dict(zip(header, cells, strict=True)), str(path), lineno)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, exc) from None
        except csv.Error as exc:
            raise DataError(f"{path}: line {reader.line_num}: cannot parse: {exc}.") from None


def read_text(path: Path) -> Iterator[Row]:
    """One document per non-empty line."""
    with _text_stream(path) as fh:
        try:
            for lineno, line in enumerate(fh, start=1):
                text = line.rstrip("\r\n")
                if text.strip():
                    yield Row({"text": text}, str(path), lineno)
        except UnicodeDecodeError as exc:
            raise _decode_error(path, exc) from None


def read_parquet(path: Path) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow comes with datasets
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow).") from exc
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc}).") from None
    for i, item in enumerate(table.to_pylist(), start=1):
        yield Row(item, str(path), i)


def read_rows(path: str | Path) -> Iterator[Row]:
    """Rows of a file or of every supported file in a directory (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
        if not files:
            raise DataError(f"{path}: the directory holds no {'/'.join(SUFFIXES)} files.")
        for f in files:
            yield from read_rows(f)
        return
    if not path.exists():
        raise DataError(f"Data file not found: {path}. Paths in a config are relative to the config file.")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from read_jsonl(path)
    elif suffix == ".json":
        yield from read_json(path)
    elif suffix in (".csv", ".tsv"):
        yield from read_delimited(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".txt":
        yield from read_text(path)
    elif suffix == ".parquet":
        yield from read_parquet(path)
    else:
        raise DataError(f"{path}: unsupported file type '{suffix}'. Supported: {', '.join(SUFFIXES)}.")
