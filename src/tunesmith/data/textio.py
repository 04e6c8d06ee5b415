"""Open data files as text: transparent decompression, encoding detection, and a clear error for binary files.

Users hand tunesmith whatever they downloaded: UTF-16 exports from spreadsheet tools (often without a BOM),
gzip'ed JSONL dumps, or by mistake an image or a Parquet file with the wrong suffix. Each of these should
either just work or stop with one sentence naming the file, never with a decoder traceback. Only the
first few KiB are sniffed, so opening stays cheap for multi-GB files.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tunesmith.errors import DataError

COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
HEAD_BYTES = 8192
# Errors a (possibly compressed, possibly truncated) byte stream raises while being read.
STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)

_COMPRESSION_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"))
_BINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (.zip, .xlsx, .docx)"),
    (b"\x7fELF", "an executable"),
    (b"PAR1", "a Parquet file; name it .parquet"),
    (b"ARROW1", "an Arrow file; name it .arrow"),
    (b"\xff\xff\xff\xff", "an Arrow stream; name it .arrow"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
# Control bytes that never occur in text (tab, newline, CR, form feed and ESC excluded).
_CONTROL = bytes([*range(0, 9), 11, *range(14, 27), *range(28, 32)])


def compression(head: bytes) -> str | None:
    """The compression of a file from its magic bytes, not its suffix.

    A gzip named ``.jsonl`` still reads, and a ``.jsonl.gz`` that a browser already unpacked reads as plain text.
    """
    for magic, name in _COMPRESSION_MAGIC:
        if head.startswith(magic):
            return name
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bz2"
    return None


def data_suffix(path: Path) -> str:
    """The suffix that names the format: ``a.jsonl.gz`` -> ``.jsonl``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 LE/BE from the pattern of NUL bytes: Latin-script text has a NUL in every other byte."""
    n = len(head) - len(head) % 2
    if n < 4:
        return None
    even, odd = head[0:n:2].count(0), head[1:n:2].count(0)
    dominant, other = max(even, odd), min(even, odd)
    if dominant < max(2, n // 2 * 0.2) or other * 4 > dominant:
        return None
    encoding = "utf-16-le" if odd > even else "utf-16-be"
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head[:n], final=False)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else encoding  # real UTF-16 text has no U+0000


def detect_encoding(head: bytes) -> str:
    """UTF-8 with or without BOM, UTF-16 with a BOM, or UTF-16 without one (from NUL-byte positions)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return _utf16_without_bom(head) or "utf-8"


def binary_kind(head: bytes) -> str | None:
    """What a file that is not text looks like (``"a PNG image"``), or None when it may well be text."""
    for magic, name in _BINARY_MAGIC:
        if head.startswith(magic):
            return name
    if not head or detect_encoding(head) != "utf-8":
        return None
    nuls = head.count(0)
    controls = sum(head.count(b) for b in _CONTROL)
    # A stray NUL or control byte happens in real exports; only many of them (1% / 5%) mean binary.
    if (nuls >= 4 and nuls * 100 > len(head)) or (controls >= 8 and controls * 20 > len(head)):
        return "binary data"
    return None


def _open_raw(path: Path, kind: str | None) -> IO[bytes]:
    if kind == "gzip":
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]  # a binary file object all the same
    if kind == "bz2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    return path.open("rb")


def open_bytes(path: Path) -> tuple[IO[bytes], bytes]:
    """The (decompressed) byte stream of a file and its first bytes, for sniffing."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(16)
        kind = compression(magic)
        head = magic
        if kind is not None:
            with _open_raw(path, kind) as fh:
                head = fh.read(HEAD_BYTES)
        else:
            with path.open("rb") as fh:
                head = fh.read(HEAD_BYTES)
        return _open_raw(path, kind), head
    except STREAM_ERRORS as exc:
        raise DataError(f"{path}: cannot read the file ({exc}).") from None


def open_text(path: Path) -> io.TextIOWrapper:
    """A text stream with universal newlines left to the caller (``newline=""``), decoded as detected.

    Raises:
        DataError: the file looks binary (names what it looks like) or cannot be opened.
    """
    raw, head = open_bytes(path)
    what = binary_kind(head)
    if what is not None:
        raw.close()
        raise DataError(
            f"{path}: this looks like a binary file ({what}), not {data_suffix(path) or 'text'} text. "
            "Check the path, or convert the file to UTF-8 text."
        )
    return io.TextIOWrapper(raw, encoding=detect_encoding(head), newline="")


def decode_error(path: Path, exc: UnicodeDecodeError) -> DataError:
    """A decode failure as one sentence with the offset and the fix."""
    return DataError(
        f"{path}: cannot decode as {exc.encoding} (byte offset {exc.start}): {exc.reason}. "
        "Re-save the file as UTF-8 (or UTF-16 with a BOM)."
    )


@contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Turn decoding and I/O failures met while streaming a file into a :class:`DataError` naming it.

    Decoding is lazy (a bad byte deep in a 1 GB file surfaces only when reached), so this wraps iteration,
    not just opening.
    """
    try:
        yield
    except UnicodeDecodeError as exc:
        raise decode_error(path, exc) from None
    except STREAM_ERRORS as exc:
        raise DataError(f"{path}: cannot read the file ({exc}); is it truncated or corrupt?") from None
