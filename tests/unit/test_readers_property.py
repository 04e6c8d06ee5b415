"""Property tests: whatever bytes a file holds, reading either yields rows or stops with a DataError, and
validation accounts for every row read (rows in == records kept + rows rejected)."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.data.readers import Row, read_rows
from tunesmith.data.records import KINDS, Reject, to_record
from tunesmith.errors import DataError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".arrow", ".jsonl.gz")
PREFIXES = (
    b"",
    codecs.BOM_UTF8,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
    b"\x1f\x8b\x08",
    b"PAR1",
    b"\x89PNG\r\n\x1a\n",
    b'{"text": "',
    b'[{"a": 1}, ',
    b"text,label\n",
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Rows whose keys are the fields kinds look for, so validation paths beyond "missing column" are exercised.
FIELD_NAMES = [
    "text",
    "label",
    "prompt",
    "completion",
    "response",
    "chosen",
    "rejected",
    "responses",
    "ranks",
    "score",
    "candidates",
    "messages",
    "conversations",
    "source",
    "target",
    "instruction",
    "output",
]
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "human", "gpt", "tool", 3]), "content": json_values}
)
field_values = json_values | st.lists(message, max_size=5) | st.lists(st.text(max_size=5), max_size=4)
rows_strategy = st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=5)


def read_all(path: Path) -> list[Row] | None:
    """The rows of ``path``, or None when reading stopped with a DataError (which must name the file)."""
    try:
        return list(read_rows(path))
    except DataError as exc:
        assert path.name in str(exc), str(exc)
        return None


def account(rows: list[Row]) -> None:
    """Every row becomes exactly one record or one reject, for every kind, and both serialise."""
    for kind in KINDS:
        kept = rejected = 0
        for row in rows:
            out = to_record(row, kind, {}, [], None)
            if isinstance(out, Reject):
                rejected += 1
                json.dumps(out.to_json(), ensure_ascii=False).encode("utf-8")
            else:
                kept += 1
                json.dumps(out, ensure_ascii=False).encode("utf-8")
        assert kept + rejected == len(rows)


@SETTINGS
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=300), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_bytes_never_raise_anything_but_data_error(prefix: bytes, body: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(prefix + body)
        rows = read_all(path)
        if rows is not None:
            account(rows)


@SETTINGS
@given(
    lines=st.lists(
        st.one_of(
            rows_strategy.map(json.dumps),
            json_values.map(json.dumps),
            # broken rows: any text but control characters (NUL-riddled files are the arbitrary-bytes test's)
            st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30),
        ),
        max_size=12,
    ),
    crlf=st.booleans(),
    gz=st.booleans(),
)
def test_jsonl_every_nonblank_line_is_one_row(lines: list[str], crlf: bool, gz: bool) -> None:
    data = ("\r\n" if crlf else "\n").join(lines).encode("utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("a.jsonl.gz" if gz else "a.jsonl")
        path.write_bytes(gzip.compress(data) if gz else data)
        rows = read_all(path)
        assert rows is not None
        expected = [i for i, line in enumerate(lines, start=1) if line.strip()]
        assert [r.line for r in rows] == expected
        account(rows)


@SETTINGS
@given(items=st.lists(rows_strategy | json_values, max_size=10), indent=st.sampled_from([None, 2]))
def test_json_array_every_item_is_one_row(items: list[Any], indent: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.json"
        path.write_text(json.dumps(items, indent=indent), encoding="utf-8")
        rows = read_all(path)
        assert rows is not None and len(rows) == len(items)
        expected = [i if isinstance(i, dict) else {} for i in items]
        assert json.dumps([r.fields for r in rows]) == json.dumps(expected)  # NaN != NaN, but dumps the same
        account(rows)


# Control characters are left out (enough of them rightly read as binary); quoting cases are put in.
cell = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"]) | st.sampled_from(["\n", "\r", "\t", '"']), max_size=12
)


@SETTINGS
@given(
    records=st.lists(st.lists(cell, min_size=1, max_size=4), max_size=10),
    delimiter=st.sampled_from([",", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_delimited_rows_in_equal_rows_out(records: list[list[str]], delimiter: str, encoding: str) -> None:
    header = ["text", "label", "prompt"]
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows([header, *records])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("a.tsv" if delimiter == "\t" else "a.csv")
        path.write_bytes(buf.getvalue().encode(encoding))
        rows = read_all(path)
        assert rows is not None
        kept = [r for r in records if not (len(r) == 1 and not r[0].strip())]
        assert len(rows) == len(kept)
        assert [("error" in r.extra) for r in rows] == [len(r) != 3 for r in kept]
        assert [r.line for r in rows] == sorted(r.line for r in rows)
        account(rows)


@SETTINGS
@given(lines=st.lists(st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20), max_size=12))
def test_paragraphs_partition_the_nonblank_lines(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        paragraphs = list(read_rows(path, text_mode="paragraph"))
        nonblank = [line for line in lines if line.strip()]
        assert [t for p in paragraphs for t in p.fields["text"].split("\n")] == nonblank
        assert all(lines[p.line - 1] == p.fields["text"].split("\n")[0] for p in paragraphs)
