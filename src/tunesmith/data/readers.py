"""Read rows from data files, each with the file and line it came from.

Every reader is a generator yielding :class:`Row` objects, so a multi-GB file streams through in bounded
memory. A file that cannot be read at all raises a :class:`DataError` naming the file (and line where it
can), never a bare traceback. Rows that are readable but wrong are not judged here: validation
(:func:`tunesmith.data.records.to_record`) does that and turns them into rejects.

Formats (by suffix, optionally compressed as ``.gz``/``.bz2``/``.xz``): JSONL, JSON (an array of objects,
streamed item by item, or an object of equal-length arrays), CSV, TSV, plain text (a document per line or
per blank-line paragraph), Parquet and Arrow (batch by batch), folders written by ``datasets.save_to_disk``,
and directories holding any of these. Text may be UTF-8 (with or without BOM) or UTF-16 (BOM or not),
with LF or CRLF line endings.

``Row.line`` is the 1-based line of the row in text files (the first line of a paragraph, the line a CSV
record starts on) and the 1-based item or row number in JSON, Parquet and Arrow files.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tunesmith.data.textio import COMPRESSED, data_suffix, detect_encoding, open_text, read_errors
from tunesmith.errors import DataError

__all__ = ["SUFFIXES", "TEXT_MODES", "Row", "detect_encoding", "read_rows"]

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".arrow")
TEXT_MODES = ("line", "paragraph")
csv.field_size_limit(2**31 - 1)

_CHUNK = 1 << 16
_NON_SPACE = re.compile(r"[^ \t\r\n]")


@dataclass
class Row:
    """One input row: its fields, and where it came from (for rejects and lineage).

    ``extra["error"]`` marks a row that was found but could not be parsed (bad JSON, wrong column count):
    it still flows on so that validation counts it as a reject instead of it vanishing.
    """

    fields: dict[str, Any]
    file: str
    line: int
    extra: dict[str, Any] = field(default_factory=dict)


def read_jsonl(path: Path) -> Iterator[Row]:
    """One JSON object per non-blank line; a line that is not one becomes an error row, not an abort."""
    with open_text(path) as fh, read_errors(path):
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Row({}, str(path), lineno, {"error": f"invalid JSON: {exc.msg} at column {exc.colno}"})
                continue
            except (ValueError, RecursionError) as exc:  # over-long integers, absurd nesting
                yield Row({}, str(path), lineno, {"error": f"invalid JSON: {exc}"})
                continue
            if not isinstance(value, dict):
                yield Row({}, str(path), lineno, {"error": f"expected a JSON object, got {type(value).__name__}"})
                continue
            yield Row(value, str(path), lineno)


class _JsonStream:
    """Incremental JSON values from a text stream, so a JSON array is read one item at a time.

    The buffer holds the current item and at most one chunk beyond it; consumed text is dropped as it is
    passed, with its newlines counted so that errors still report the right line.
    """

    def __init__(self, fh: IO[str], path: Path) -> None:
        self.fh, self.path = fh, path
        self.decoder = json.JSONDecoder()
        self.buf, self.pos, self.eof, self.base_line = "", 0, False, 1

    def _more(self) -> bool:
        if self.eof:
            return False
        if self.pos:
            self.base_line += self.buf.count("\n", 0, self.pos)
            self.buf, self.pos = self.buf[self.pos :], 0
        chunk = self.fh.read(max(_CHUNK, len(self.buf)))  # doubling keeps re-parsing a huge item linear
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def line(self, pos: int | None = None) -> int:
        return self.base_line + self.buf.count("\n", 0, self.pos if pos is None else pos)

    def peek(self) -> str | None:
        """The next non-whitespace character (not consumed), or None at the end of the file."""
        while True:
            match = _NON_SPACE.search(self.buf, self.pos)
            if match:
                self.pos = match.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self._more():
                return None

    def value(self) -> Any:
        """The next JSON value; a value that ends at the buffer's end may be cut short, so read on."""
        self.peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise DataError(f"{self.path}: invalid JSON at line {self.line(exc.pos)}: {exc.msg}.") from None
            except (ValueError, RecursionError) as exc:
                raise DataError(f"{self.path}: invalid JSON at line {self.line()}: {exc}.") from None
            self._more()


def _column_layout(path: Path, value: dict[str, Any]) -> list[dict[str, Any]]:
    if not value or not all(isinstance(v, list) for v in value.values()):
        raise DataError(f"{path}: expected a JSON array of objects or an object of equal-length arrays.")
    lengths = {len(v) for v in value.values()}
    if len(lengths) != 1:
        raise DataError(f"{path}: column arrays have different lengths {sorted(lengths)}.")
    keys = list(value)
    return [dict(zip(keys, items, strict=True)) for items in zip(*value.values(), strict=True)]


def read_json(path: Path) -> Iterator[Row]:
    """A JSON array of objects (streamed item by item), or an object of equal-length arrays (column layout).

    The column layout has to be loaded whole; it is what ``pandas.to_json(orient="list")`` writes for
    small tables, while large exports are arrays or JSONL.
    """
    with open_text(path) as fh, read_errors(path):
        stream = _JsonStream(fh, path)
        first = stream.peek()
        if first is None:
            return
        if first == "{":
            value = stream.value()
            items: Any = _column_layout(path, value)
        elif first == "[":
            stream.pos += 1
            items = _array_items(stream)
        else:
            raise DataError(f"{path}: line {stream.line()}: expected a JSON array or object, found '{first}'.")
        for i, item in enumerate(items, start=1):
            if isinstance(item, dict):
                yield Row(item, str(path), i)
            else:
                yield Row({}, str(path), i, {"error": f"item {i} is {type(item).__name__}, not an object"})
        if stream.peek() is not None:
            raise DataError(f"{path}: line {stream.line()}: unexpected text after the JSON value.")


def _array_items(stream: _JsonStream) -> Iterator[Any]:
    if stream.peek() == "]":
        stream.pos += 1
        return
    index = 0
    while True:
        index += 1
        yield stream.value()
        sep = stream.peek()
        if sep == ",":
            stream.pos += 1
        elif sep == "]":
            stream.pos += 1
            return
        else:
            where = "the end of the file" if sep is None else f"'{sep}'"
            raise DataError(
                f"{stream.path}: line {stream.line()}: expected ',' or ']' after item {index}, found {where}."
            )


def read_delimited(path: Path, delimiter: str) -> Iterator[Row]:
    """CSV/TSV with a header row. Quoted and raw rows may mix (as in AfriSenti arq/ary)."""
    with open_text(path) as fh, read_errors(path):
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
                    fields: dict[str, Any] = dict(zip(header, cells, strict=False))
                    if len(cells) > len(header):  # nothing is lost: the cells past the header go to the reject
                        fields["_extra_cells"] = cells[len(header) :]
                    yield Row(
                        fields,
                        str(path),
                        lineno,
                        {"error": f"expected {len(header)} columns ({', '.join(header)}), found {len(cells)}"},
                    )
                    continue
                yield Row(dict(zip(header, cells, strict=True)), str(path), lineno)
        except csv.Error as exc:
            raise DataError(f"{path}: line {reader.line_num}: cannot parse: {exc}.") from None


def read_text(path: Path, mode: str = "line") -> Iterator[Row]:
    """One document per non-empty line, or per paragraph (lines between blank lines) with ``mode="paragraph"``.

    Paragraph mode suits books and articles, where a line break is layout and a blank line ends a unit;
    a paragraph's line number is that of its first line.
    """
    with open_text(path) as fh, read_errors(path):
        if mode == "line":
            for lineno, line in enumerate(fh, start=1):
                text = line.rstrip("\r\n")
                if text.strip():
                    yield Row({"text": text}, str(path), lineno)
            return
        lines: list[str] = []
        first = 0
        for lineno, line in enumerate(fh, start=1):
            text = line.rstrip("\r\n")
            if text.strip():
                if not lines:
                    first = lineno
                lines.append(text)
            elif lines:
                yield Row({"text": "\n".join(lines)}, str(path), first)
                lines = []
        if lines:
            yield Row({"text": "\n".join(lines)}, str(path), first)


def _directory_entries(path: Path) -> list[Path]:
    """Supported files and ``save_to_disk`` folders under a directory, by name; hidden entries skipped."""
    from tunesmith.data.arrowio import is_saved_dataset

    entries: list[Path] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            entries.extend([child] if is_saved_dataset(child) else _directory_entries(child))
        elif data_suffix(child) in SUFFIXES:
            entries.append(child)
    return entries


def read_rows(path: str | Path, text_mode: str = "line", split: str | None = None) -> Iterator[Row]:
    """Rows of a file, of a ``save_to_disk`` folder, or of every supported file in a directory (by name).

    Args:
        path: A data file, a directory of them, or a ``datasets.save_to_disk`` folder.
        text_mode: ``"line"`` (a document per line) or ``"paragraph"`` (per blank-line paragraph) for ``.txt``.
        split: The split to read from a saved ``DatasetDict`` (not needed when it holds one split).

    Raises:
        DataError: the path is missing, of an unsupported type, binary, undecodable or unparseable.
    """
    path = Path(path)
    if text_mode not in TEXT_MODES:
        raise DataError(f"text_mode must be one of {', '.join(TEXT_MODES)}, not '{text_mode}'.")
    if path.is_dir():
        from tunesmith.data.arrowio import is_saved_dataset, read_saved_dataset

        if is_saved_dataset(path):
            yield from read_saved_dataset(path, split)
            return
        entries = _directory_entries(path)
        if not entries:
            raise DataError(f"{path}: the directory holds no {'/'.join(SUFFIXES)} files or save_to_disk folders.")
        for entry in entries:
            yield from read_rows(entry, text_mode, split)
        return
    if not path.exists():
        raise DataError(f"Data file not found: {path}. Paths in a config are relative to the config file.")
    yield from _read_file(path, text_mode)


def _read_file(path: Path, text_mode: str) -> Iterator[Row]:
    suffix = data_suffix(path)
    if suffix in (".parquet", ".arrow"):
        if path.suffix.lower() in COMPRESSED:
            raise DataError(f"{path}: decompress {suffix} files first (they are compressed inside already).")
        from tunesmith.data.arrowio import read_arrow, read_parquet

        yield from read_parquet(path) if suffix == ".parquet" else read_arrow(path)
    elif suffix == ".jsonl":
        yield from read_jsonl(path)
    elif suffix == ".json":
        yield from read_json(path)
    elif suffix in (".csv", ".tsv"):
        yield from read_delimited(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".txt":
        yield from read_text(path, text_mode)
    else:
        raise DataError(f"{path}: unsupported file type '{suffix}'. Supported: {', '.join(SUFFIXES)}.")
