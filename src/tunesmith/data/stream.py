"""Stage 1 for inputs too large to hold in memory: one pass per file, rows written as they are read.

Memory stays bounded by what must be remembered, not by the data: an 8-byte digest per kept row for
exact deduplication, the label set, counts, and a fixed-size reservoir sample of rows for the language
and script summary. What the in-memory path does over the whole corpus is replaced by per-row rules:

- a held-out split is chosen from a seeded hash of the row's dedup key, so identical texts always land
  in the same split (no exact leak between splits is possible) and the fractions hold in expectation;
- near-duplicate detection, stratification and ``max_rows`` sampling need the whole corpus and are not
  done (the manifest says so); run ``tunesmith data inspect`` on a sample for near duplicates;
- language, script and code-mixing are measured on a reservoir sample (``SAMPLE`` rows), not tagged on
  every row, so the summary costs seconds whatever the input size.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from tunesmith.config.data import DataConfig
from tunesmith.data.clean import Change, clean_record, homoglyph_step
from tunesmith.data.format import load_template, to_example
from tunesmith.data.prepare import SPLITS, config_digest, iter_records
from tunesmith.data.records import Reject, dedup_key, primary_text
from tunesmith.errors import DataError
from tunesmith.rundir import RunDir, sha256_file, write_json

SAMPLE = 10_000
STREAM_BYTES = 256 * 2**20  # inputs larger than this stream when data.stream is auto


def should_stream(config: DataConfig) -> bool:
    """``data.stream``, or for ``auto`` whether the given files add up to more than ``STREAM_BYTES``."""
    if config.stream != "auto":
        return config.stream == "on"
    total = 0
    for name in ("train", "validation", "test"):
        path = getattr(config, name)
        if path and Path(path).is_file():
            total += Path(path).stat().st_size
    return total > STREAM_BYTES


def digest(text: str) -> int:
    """An 8-byte digest: 10 million kept rows cost about 0.7 GB of set entries, not their text."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def assign(key: str, fractions: dict[str, float], seed: int) -> str:
    """The split of a row from a seeded hash of its dedup key (the same text always gets the same split)."""
    h = hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    u = int.from_bytes(h, "little") / 2**64
    start = 0.0
    for name, frac in fractions.items():
        if start <= u < start + frac:
            return name
        start += frac
    return "train"


class _Writer:
    """JSONL lines into a temp file renamed into place on success (a kill leaves no half-written split)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        self.tmp = Path(tmp)
        self.fh: IO[str] = os.fdopen(fd, "w", encoding="utf-8")
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self.fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.rows += 1

    def commit(self) -> None:
        self.fh.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


def _label_set(config: DataConfig, kind: str) -> list[str]:
    """The label set: from the config, or from one cheap pass over the train file (templates need it first)."""
    if kind != "classification":
        return []
    if config.labels:
        return list(config.labels)
    return sorted({r["label"] for r in iter_records(config.train, kind, config) if isinstance(r, dict)})


def prepare_streaming(config: DataConfig, run: RunDir, kind: str, seed: int = 0) -> dict[str, Any]:
    """Stage 1 in one pass per input file; returns what :class:`PrepareResult` needs (counts, labels, ...)."""
    from tunesmith.data.findings import reason_class as _reason_class

    if config.max_rows:
        raise DataError("data.max_rows needs the whole corpus in memory; it does not apply when data.stream is on.")
    if kind not in ("classification", "instruction", "text", "prompt_completion", "messages"):
        raise DataError(f"data.stream: '{kind}' records are prepared in memory; set data.stream: off.")
    labels = _label_set(config, kind)
    template = load_template(config.task.template) if kind == "classification" else None
    fractions = {n: getattr(config.split, n) for n in ("validation", "test") if getattr(config, n) is None}
    fractions = {n: f for n, f in fractions.items() if f > 0}
    seen: set[int] = set()
    reasons: Counter[str] = Counter()
    sample: list[dict[str, Any]] = []
    kept_total = read_total = 0
    rng = random.Random(seed)
    with ExitStack() as stack:
        writers = {name: _Writer(run.split(name)) for name in SPLITS}
        rejects = _Writer(run.rejects)
        changes = _Writer(run.data / "changes.jsonl")
        for w in (*writers.values(), rejects, changes):
            stack.callback(w.discard)
        for source in ("train", "validation", "test"):
            path = getattr(config, source)
            if path is None:
                continue
            for rec in iter_records(path, kind, config):
                read_total += 1
                if isinstance(rec, Reject):
                    rejects.write(rec.to_json())
                    reasons[_reason_class(rec.reason)] += 1
                    continue
                src = rec["source"]
                cleaned, reason = clean_record(rec, kind, config.clean)
                note, hashed = None, None
                if cleaned is not None:  # the order of clean_records: repair, then compare
                    cleaned, note = homoglyph_step(cleaned, kind, config.clean.homoglyphs)
                    key = dedup_key(cleaned, kind)
                    hashed = digest(key) if config.clean.dedup == "exact" else None
                    if hashed is not None and hashed in seen:
                        cleaned, reason = None, "exact duplicate of an earlier row (streaming: no line kept)"
                if cleaned is None:
                    why = reason or "rejected"
                    rejects.write(Reject(src["file"], src["line"], None, why, rec).to_json())
                    reasons[_reason_class(why)] += 1
                    continue
                if hashed is not None:  # with dedup off nothing is remembered, so memory stays flat
                    seen.add(hashed)
                if note:
                    step = f"homoglyphs ({config.clean.homoglyphs})"
                    changes.write(Change(src["file"], src["line"], step, note).to_json())
                if labels and cleaned.get("label") not in labels:
                    why = f"label '{cleaned.get('label')}' never occurs in train {labels}"
                    rejects.write(Reject(src["file"], src["line"], None, why, rec).to_json())
                    reasons["label not in the label set"] += 1
                    continue
                split = assign(key, fractions, seed) if source == "train" else source
                writers[split].write({**cleaned, **to_example(cleaned, kind, template, labels)})
                kept_total += 1
                if len(sample) < SAMPLE:  # reservoir sample (Algorithm R) for the language summary
                    sample.append(cleaned)
                elif (j := rng.randrange(kept_total)) < SAMPLE:
                    sample[j] = cleaned
        if not writers["train"].rows:
            raise DataError(f"{config.train}: no usable training rows.")
        stack.pop_all()
        for w in (*writers.values(), rejects, changes):
            w.commit()
    languages = _sample_languages(sample, kind, config)
    counts = {n: w.rows for n, w in writers.items() if w.rows or n == "train" or n in fractions}
    write_json(
        run.manifest,
        {
            "format": kind,
            "input_format": kind,
            "streamed": True,
            "not_done_when_streaming": ["near-duplicate detection", "stratification", "max_rows"],
            "labels": labels,
            "groups": config.groups,
            "inputs": {
                n: {"path": getattr(config, n), "sha256": sha256_file(Path(getattr(config, n)))}
                for n in SPLITS
                if getattr(config, n)
            },
            "input_rows": read_total,
            "splits": {n: {"rows": c, "sha256": sha256_file(run.split(n))} for n, c in counts.items()},
            "languages_in_sample": languages,
            "sample_rows": len(sample),
            "rejects": dict(reasons),
            "changes": changes.rows,
            "warnings": [],
            "config_sha256": config_digest(config, seed),
        },
    )
    for name in SPLITS:
        if name not in counts:
            run.split(name).unlink(missing_ok=True)
    return {"counts": counts, "labels": labels, "input_rows": read_total, "reasons": reasons, "changes": changes.rows}


def _sample_languages(sample: list[dict[str, Any]], kind: str, config: DataConfig) -> dict[str, int]:
    if not config.language.detect or not sample:
        return {}
    from tunesmith.data.langid import load_default

    identifier = load_default()
    return dict(Counter(identifier.predict(primary_text(r, kind))[0] for r in sample))
