"""``tunesmith data inspect``: profile data files as they are, before writing any config.

A user with a folder of TSVs wants to know, before choosing a model or a split, what the files hold: which
record kind they are, which languages and scripts, how much repeats, and whether the test file already sits
in the train file (AfriSenti's Pidgin test set repeats 926 train tweets verbatim). This reads each file with
the same readers and record validation that stage 1 uses, treats the files as splits, and returns the
:func:`tunesmith.data.profile.profile_dataset` card with the kind and what was read from each file.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tunesmith.data.profile import profile_dataset, split_role
from tunesmith.data.readers import Row, read_rows
from tunesmith.data.records import Reject, detect_kind, to_record
from tunesmith.data.textio import COMPRESSED
from tunesmith.errors import DataError

__all__ = ["DETECT_ROWS", "detect_file_kind", "inspect_files", "load_tokenizer", "split_names"]

DETECT_ROWS = 100


def _stem(path: Path) -> str:
    """``train`` for ``train.tsv``, ``train.jsonl.gz`` and a ``train/`` folder alike."""
    name = path.name
    if path.suffix.lower() in COMPRESSED:
        name = Path(name).stem
    return Path(name).stem if not path.is_dir() else name


def _common_prefix(names: Sequence[str]) -> str:
    """The longest prefix of all names that ends at a separator (``newstest2019-``) and names no split role."""
    if len(names) < 2:
        return ""
    shortest = min(names, key=len)
    prefix = next((shortest[:i] for i, chars in enumerate(zip(*names, strict=False)) if len(set(chars)) > 1), shortest)
    prefix = prefix[: max(prefix.rfind(c) for c in "-_. ") + 1]
    return prefix if split_role(prefix) is None and all(len(n) > len(prefix) for n in names) else ""


def split_names(paths: Sequence[str | Path]) -> list[str]:
    """A split name per file: its stem, or ``folder/stem`` where two files share a stem (``pcm/train``).

    A prefix every stem shares is dropped (``newstest2019-ref.yor`` -> ``ref.yor``), so tables stay narrow.
    """
    files = [Path(p) for p in paths]
    stems = [_stem(p) for p in files]
    names = [n[len(_common_prefix(stems)) :] for n in stems]
    names = [f"{p.parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(files, names, strict=True)]
    return [f"{n}#{names[:i].count(n) + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def detect_file_kind(head: Sequence[Row], path: str | Path, columns: dict[str, str] | None = None) -> str:
    """The record kind that the union of the first rows' fields fits (one row may lack an optional column).

    Raises:
        DataError: the file has no readable rows, or its columns fit no kind (or several equally).
    """
    fields = dict.fromkeys(f for row in head if "error" not in row.extra for f in row.fields)
    if not fields:
        raise DataError(f"{path}: no readable rows among the first {DETECT_ROWS} to detect the record kind from.")
    try:
        return detect_kind(fields, columns=columns)
    except DataError as exc:
        raise DataError(f"{path}: {exc} With `data inspect`, pass --kind and --column field=col.") from None


def _records(
    rows: Iterator[Row], kind: str, columns: dict[str, str], labels: list[str] | None
) -> tuple[list[dict[str, Any]], list[Reject], dict[str, int]]:
    """Records and rejects of a file, and how many rows were read and how many could not be parsed."""
    records: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    stats = {"rows": 0, "errors": 0}
    for row in rows:
        stats["rows"] += 1
        stats["errors"] += "error" in row.extra
        rec = to_record(row, kind, columns, [], labels)
        if isinstance(rec, Reject):
            rejects.append(rec)
        else:
            records.append(rec)
    return records, rejects, stats


def load_tokenizer(spec: str) -> Any:
    """A tokenizer from a ``tokenizer.json`` file, a folder holding one, or a ``model.base`` name or path.

    Wherever a ``tokenizer.json`` is found (an embedded model's cached folder included) it is loaded with the
    ``tokenizers`` library alone: a tenth of a second, where importing transformers takes several.
    """
    path = Path(spec)
    if not path.exists():
        from tunesmith.models.load import local_directory, resolve

        path = Path(local_directory(resolve(spec)))
    if path.is_dir() and (path / "tokenizer.json").is_file():
        path = path / "tokenizer.json"
    if path.is_file() and path.name.endswith(".json"):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(path))
    from tunesmith.models.load import load_tokenizer as load_model_tokenizer
    from tunesmith.models.load import resolve

    return load_model_tokenizer(resolve(spec))


def inspect_files(
    paths: Sequence[str | Path],
    *,
    kind: str = "auto",
    columns: dict[str, str] | None = None,
    text_mode: str = "line",
    labels: list[str] | None = None,
    tokenizer: Any = None,
    identifier: Any = None,
) -> dict[str, Any]:
    """Read files without a config, treat them as splits, and profile them (the data card plus read stats).

    Args:
        paths: Data files (or folders) in any supported format; each becomes a split named by its stem.
            Leaks are checked train -> validation -> test when every name says its role
            (``train``/``dev``/``validation``/``test``), otherwise in the order given.
        kind: A record kind, or ``auto`` to detect it from the first rows' columns (all files must agree).
        columns: Field -> input column, as ``data.columns`` in a config.
        text_mode: ``line`` or ``paragraph`` documents for ``.txt`` files.
        labels: The label set; labels outside it become rejects.
        tokenizer: A tokenizer object, or a spec for :func:`load_tokenizer`; adds token lengths and fertility.
        identifier: Language identifier (the shipped model when None).

    Returns:
        The card of :func:`tunesmith.data.profile.profile_dataset` plus ``files`` (per split: path, rows read,
        records, rejects, parse errors) and ``timings`` (seconds to read and to profile).

    Raises:
        DataError: a file cannot be read, its kind cannot be detected, or the files fit different kinds.
    """
    if not paths:
        raise DataError("data inspect needs at least one file.")
    start = time.perf_counter()
    names = split_names(paths)
    columns = dict(columns or {})
    streams = {name: read_rows(path, text_mode) for name, path in zip(names, paths, strict=True)}
    heads = {name: list(itertools.islice(rows, DETECT_ROWS)) for name, rows in streams.items()}
    if kind == "auto":
        kinds = {name: detect_file_kind(heads[name], path, columns) for name, path in zip(names, paths, strict=True)}
        if len(set(kinds.values())) > 1:
            found = ", ".join(f"{n}: {k}" for n, k in kinds.items())
            raise DataError(f"The files hold different record kinds ({found}): inspect them apart, or pass --kind.")
        kind = next(iter(kinds.values()))
    splits: dict[str, list[dict[str, Any]]] = {}
    rejects: list[Reject] = []
    files: dict[str, dict[str, Any]] = {}
    for name, path in zip(names, paths, strict=True):
        records, bad, stats = _records(itertools.chain(heads[name], streams[name]), kind, columns, labels)
        splits[name], rejects = records, rejects + bad
        files[name] = {"path": str(path), **stats, "records": len(records), "rejects": len(bad)}
    read_s = time.perf_counter() - start
    spec = str(tokenizer) if isinstance(tokenizer, str | Path) else None
    if spec is not None:
        tokenizer = load_tokenizer(spec)
    card = profile_dataset(splits, kind, identifier=identifier, tokenizer=tokenizer, rejects=rejects)
    if spec is not None:
        card["settings"]["tokenizer"] = spec
    total_s = time.perf_counter() - start
    return {**card, "files": files, "timings": {"read_s": round(read_s, 2), "profile_s": round(total_s - read_s, 2)}}
