from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from tunesmith.data.readers import read_rows
from tunesmith.errors import DataError


def rows(path: Path) -> list:
    return list(read_rows(path))


def test_jsonl_keeps_line_numbers_and_flags_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"text": "a"}\n\n{broken\n[1, 2]\n{"text": "b"}\n')
    out = rows(p)
    assert [r.line for r in out] == [1, 3, 4, 5]
    assert out[0].fields == {"text": "a"} and "error" not in out[0].extra
    assert "invalid JSON" in out[1].extra["error"]
    assert "JSON object" in out[2].extra["error"]


def test_json_array_and_column_layout(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps([{"text": "x"}, {"text": "y"}]))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"text": ["x", "y"], "label": ["p", "n"]}))
    assert [r.fields for r in rows(a)] == [{"text": "x"}, {"text": "y"}]
    assert [r.fields for r in rows(b)] == [{"text": "x", "label": "p"}, {"text": "y", "label": "n"}]


def test_tsv_with_mixed_quoting_and_bad_column_count(tmp_path: Path) -> None:
    p = tmp_path / "a.tsv"
    p.write_text('tweet\tlabel\nraw "quote here\tpositive\n"quoted ""inner"" text"\tnegative\nonly one column\n')
    out = rows(p)
    assert out[0].fields == {"tweet": 'raw "quote here', "label": "positive"}
    assert out[1].fields == {"tweet": 'quoted "inner" text', "label": "negative"}
    assert out[2].line == 4 and "expected 2 columns" in out[2].extra["error"]


def test_csv_crlf_and_bom(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes(codecs.BOM_UTF8 + "text,label\r\nhéllo,pos\r\n".encode())
    assert [r.fields for r in rows(p)] == [{"text": "héllo", "label": "pos"}]


def test_utf16_text_file(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("ọ̀tún\n\nsecond\n", encoding="utf-16")
    out = rows(p)
    assert [r.fields["text"] for r in out] == ["ọ̀tún", "second"]
    assert [r.line for r in out] == [1, 3]


def test_undecodable_file_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"text": "ok"}\n\xff\xfe\xfa broken\n')
    with pytest.raises(DataError, match="a.jsonl.*cannot decode"):
        rows(p)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        rows(tmp_path / "none.tsv")
    odd = tmp_path / "a.xml"
    odd.write_text("<a/>")
    with pytest.raises(DataError, match="unsupported file type"):
        rows(odd)


def test_directory_reads_every_supported_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "b.jsonl").write_text('{"text": "two"}\n')
    (tmp_path / "ignore.md").write_text("# no\n")
    assert [r.fields["text"] for r in rows(tmp_path)] == ["one", "two"]
