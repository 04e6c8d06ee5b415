from __future__ import annotations

import bz2
import codecs
import gzip
import json
import lzma
import re
from pathlib import Path

import pytest

from tunesmith.data import arrowio, readers
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
    p.write_text(
        'tweet\tlabel\nraw "quote here\tpositive\n"quoted ""inner"" text"\tnegative\nonly one column\n'
        "a tab\tinside\tneutral\n"
    )
    out = rows(p)
    assert out[0].fields == {"tweet": 'raw "quote here', "label": "positive"}
    assert out[1].fields == {"tweet": 'quoted "inner" text', "label": "negative"}
    assert out[2].line == 4 and "expected 2 columns" in out[2].extra["error"]
    # a row with a cell too many keeps every cell for the rejects file
    assert out[3].fields == {"tweet": "a tab", "label": "inside", "_extra_cells": ["neutral"]}
    assert "found 3" in out[3].extra["error"]


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


# ---------------------------------------------------------------- text modes, encodings, binary, compression


def test_paragraph_mode_keeps_first_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "book.txt"
    p.write_bytes(b"First para\r\nstill first\r\n\r\n\r\nSecond\r\n  \r\nThird\nends here")
    out = list(read_rows(p, text_mode="paragraph"))
    assert [r.fields["text"] for r in out] == ["First para\nstill first", "Second", "Third\nends here"]
    assert [r.line for r in out] == [1, 5, 7]
    assert [r.line for r in read_rows(p)] == [1, 2, 5, 7, 8]
    with pytest.raises(DataError, match="text_mode"):
        list(read_rows(p, text_mode="sentence"))


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_detected(tmp_path: Path, encoding: str) -> None:
    p = tmp_path / "a.tsv"
    p.write_bytes("text\tlabel\r\nẹ kú àárọ̀\tpositive\r\n".encode(encoding))
    assert [r.fields for r in rows(p)] == [{"text": "ẹ kú àárọ̀", "label": "positive"}]


def test_binary_file_with_text_suffix_says_it_looks_binary(tmp_path: Path) -> None:
    png = tmp_path / "photo.jsonl"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataError, match=r"photo\.jsonl.*looks like a binary file \(a PNG image\)"):
        rows(png)
    blob = tmp_path / "blob.csv"
    blob.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataError, match=r"blob\.csv.*binary"):
        rows(blob)


def test_compressed_files_read_by_content_not_suffix(tmp_path: Path) -> None:
    data = b'{"text": "a"}\n{"text": "b"}\n'
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "b.jsonl").write_bytes(gzip.compress(data))  # gzip without the suffix
    (tmp_path / "c.jsonl.gz").write_bytes(data)  # already unpacked by a browser
    (tmp_path / "d.csv.bz2").write_bytes(bz2.compress(b"text,label\nx,y\n"))
    (tmp_path / "e.txt.xz").write_bytes(lzma.compress("one\ntwo\n".encode("utf-16")))
    for name in ("a.jsonl.gz", "b.jsonl", "c.jsonl.gz"):
        assert [r.fields["text"] for r in rows(tmp_path / name)] == ["a", "b"]
    assert [r.fields for r in rows(tmp_path / "d.csv.bz2")] == [{"text": "x", "label": "y"}]
    assert [r.fields["text"] for r in rows(tmp_path / "e.txt.xz")] == ["one", "two"]
    truncated = tmp_path / "t.jsonl.gz"
    many = "".join(json.dumps({"text": f"row {i * 7919 % 10007}"}) + "\n" for i in range(5000)).encode()
    truncated.write_bytes(gzip.compress(many)[:-100])
    with pytest.raises(DataError, match=r"t\.jsonl\.gz.*truncated or corrupt"):
        rows(truncated)


def test_reading_is_lazy(tmp_path: Path) -> None:
    """The first row arrives before a bad byte far into the file is decoded: readers stream."""
    p = tmp_path / "big.jsonl"
    p.write_bytes(b'{"text": "first"}\n' + b'{"text": "filler"}\n' * 20000 + b"\xff\xfe broken\n")
    stream = read_rows(p)
    assert next(stream).fields == {"text": "first"}
    with pytest.raises(DataError, match="cannot decode"):
        list(stream)


def test_jsonl_crlf_deep_nesting_and_huge_ints_are_row_errors(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"text": "a"}\r\n' + b"[" * 100000 + b"\r\n" + b'{"n": ' + b"9" * 5000 + b"}\r\n{}\r\n")
    out = rows(p)
    assert [r.line for r in out] == [1, 2, 3, 4]
    assert out[0].fields == {"text": "a"} and out[3].fields == {}
    assert all("invalid JSON" in r.extra["error"] for r in out[1:3])


# ---------------------------------------------------------------- JSON arrays stream item by item


def test_json_array_streams_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "_CHUNK", 7)  # every item straddles chunk boundaries
    items = [{"text": "x" * 50, "n": 12345}, 5, {"text": "ọ̀tún", "nested": {"a": [1, 2.5, None]}}, {"n": 1}]
    p = tmp_path / "a.json"
    p.write_text(json.dumps(items, indent=2, ensure_ascii=False), encoding="utf-8")
    out = rows(p)
    assert [r.fields for r in out] == [items[0], {}, items[2], items[3]]
    assert [r.line for r in out] == [1, 2, 3, 4] and "int, not an object" in out[1].extra["error"]
    (tmp_path / "empty.json").write_text("  \n")
    (tmp_path / "none.json").write_text("[]")
    assert rows(tmp_path / "empty.json") == [] and rows(tmp_path / "none.json") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"a": 1},\n {"a": 2}\n {"a": 3}]', "line 3: expected ',' or ']' after item 2"),
        ('[{"a": 1},\n {"a": ', "invalid JSON at line 2"),
        ('[{"a": 1}] trailing', "unexpected text after"),
        ('"just a string"', "expected a JSON array or object"),
        ('{"a": [1, 2], "b": [1]}', "different lengths"),
        ('{"a": 1}', "object of equal-length arrays"),
    ],
)
def test_broken_json_names_the_line(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)):
        rows(p)


# ---------------------------------------------------------------- Parquet, Arrow, save_to_disk folders


def test_parquet_reads_by_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(arrowio, "BATCH_ROWS", 3)
    p = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(10)], "label": list(range(10))}), p, row_group_size=4)
    out = rows(p)
    assert [r.fields["text"] for r in out] == [f"t{i}" for i in range(10)] and out[9].fields["label"] == 9
    assert [r.line for r in out] == list(range(1, 11))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"bad\.parquet.*not a readable Parquet file"):
        rows(bad)


def test_save_to_disk_dataset_and_dataset_dict(tmp_path: Path) -> None:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    train = Dataset.from_dict({"text": ["a", "b", "c"], "label": [1, 0, 1]}, features=features)
    test = Dataset.from_dict({"text": ["d"], "label": [0]}, features=features)
    train.save_to_disk(str(tmp_path / "single"))
    DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dict"))
    single = rows(tmp_path / "single")
    assert [r.fields for r in single] == [
        {"text": "a", "label": "positive"},
        {"text": "b", "label": "negative"},
        {"text": "c", "label": "positive"},
    ]
    assert single[0].file.endswith(".arrow") and [r.line for r in single] == [1, 2, 3]
    assert [r.fields["text"] for r in read_rows(tmp_path / "dict", split="test")] == ["d"]
    assert [r.fields["text"] for r in rows(tmp_path / "dict" / "train")] == ["a", "b", "c"]
    with pytest.raises(DataError, match=r"splits \['train', 'test'\]; name the split"):
        rows(tmp_path / "dict")
    with pytest.raises(DataError, match="no split 'validation'"):
        list(read_rows(tmp_path / "dict", split="validation"))
    # an .arrow shard on its own reads too (integer labels stay integers without the metadata)
    shard = next((tmp_path / "single").glob("*.arrow"))
    assert [r.fields["label"] for r in rows(shard)] == [1, 0, 1]


def test_directory_walks_subfolders_saved_datasets_and_skips_hidden(tmp_path: Path) -> None:
    import pyarrow as pa

    saved = tmp_path / "b_saved"
    saved.mkdir()
    with pa.OSFile(str(saved / "data-00000-of-00001.arrow"), "wb") as sink:
        table = pa.table({"text": ["from arrow"]})
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    (saved / "cache-123.arrow").write_bytes(b"not listed in state.json, never read")
    (saved / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (saved / "dataset_info.json").write_text("{}")
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"text": "gz"}\n'))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "d.txt").write_text("nested\n")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.txt").write_text("hidden\n")
    assert [r.fields["text"] for r in rows(tmp_path)] == ["gz", "from arrow", "nested"]
