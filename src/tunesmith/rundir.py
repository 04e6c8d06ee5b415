"""The run directory: the unit of lineage. One place names every file a run writes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tunesmith.errors import RunDirError

Mode = Literal["new", "resume", "overwrite"]


@dataclass(frozen=True)
class RunDir:
    """Paths inside ``runs/<name>/``."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def env(self) -> Path:
        return self.root / "env.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def manifest(self) -> Path:
        return self.data / "manifest.json"

    @property
    def rejects(self) -> Path:
        return self.data / "rejects.jsonl"

    def split(self, name: str) -> Path:
        return self.data / f"{name}.jsonl"

    @property
    def vocab(self) -> Path:
        """The tokens that vocabulary extension (``model.new_tokens``) added, and the fertility they saved."""
        return self.data / "vocab.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def train_summary(self) -> Path:
        return self.root / "train.json"


def has_outputs(root: Path) -> bool:
    """Whether ``root`` holds any stage's output (a run in use), not just a config or a failed start."""
    run = RunDir(root)
    outputs = (run.manifest, run.checkpoints, run.adapter, run.model, run.train_summary, run.eval)
    return root.exists() and any(p.exists() for p in outputs)


def open_run_dir(root: Path, mode: Mode) -> RunDir:
    """Create ``root`` (mode ``new``), reuse it (``resume``) or empty it first (``overwrite``).

    A directory that holds no stage's output yet (say, a data preparation that failed on bad input) is
    not "in use": running again needs neither flag.
    """
    exists = has_outputs(root)
    if exists and mode == "new":
        raise RunDirError(
            f"Run directory {root} already exists. Pass --resume to continue it or --overwrite to start over "
            "(or change `name` in the config)."
        )
    if exists and mode == "overwrite":
        shutil.rmtree(root)
    if mode == "resume" and not exists:
        raise RunDirError(f"--resume: run directory {root} does not exist yet; run without --resume first.")
    root.mkdir(parents=True, exist_ok=True)
    return RunDir(root)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """A temp folder beside ``final`` to fill; on success it replaces ``final`` in one rename, on error it is
    removed and ``final`` (any previous version) stays as it was."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
