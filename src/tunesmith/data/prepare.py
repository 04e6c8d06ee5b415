"""Stage 1 end to end: files -> records -> validation -> cleaning -> splits -> formatted examples.

Writes into ``<run>/data/``: ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` (records with their
``prompt``/``completion`` or ``text``), ``rejects.jsonl`` (every dropped row with file, line, field and
reason) and ``manifest.json`` (counts, label set, content hashes of inputs and outputs).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config.schema import DataConfig
from tunesmith.data.clean import clean_records
from tunesmith.data.format import load_template, to_example
from tunesmith.data.readers import read_rows
from tunesmith.data.records import Reject, to_record
from tunesmith.data.split import cap_rows, remove_leaks, stratified_split
from tunesmith.errors import DataError
from tunesmith.rundir import RunDir, sha256_file, write_json, write_jsonl

SPLITS = ("train", "validation", "test")


@dataclass
class PrepareResult:
    """What stage 1 produced: per-split counts, the label set, and rejects grouped by reason."""

    counts: dict[str, int]
    labels: list[str]
    rejects: list[Reject] = field(default_factory=list)
    input_rows: int = 0

    def rejects_by_reason(self) -> Counter[str]:
        return Counter(_reason_class(r.reason) for r in self.rejects)


def config_digest(config: DataConfig, seed: int = 0) -> str:
    """A hash of the data section and seed: prepared data is reused only when both are unchanged."""
    text = json.dumps({"data": config.model_dump(mode="json"), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _reason_class(reason: str) -> str:
    """Group rejects by the stable part of their reason (drop file:line specifics)."""
    for prefix in ("exact duplicate", "train row also in", "validation row also in", "test row also in"):
        if reason.startswith(prefix):
            return prefix if "duplicate" in prefix else f"{prefix.split(' row')[0]} row leaked from an earlier split"
    if reason.startswith("label '"):
        return "label not in the label set"
    if reason.startswith("missing column"):
        return reason.split(" (")[0]
    return reason


def _read_records(path: str, config: DataConfig) -> tuple[list[dict[str, Any]], list[Reject], int]:
    records: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    n = 0
    for row in read_rows(path):
        n += 1
        rec = to_record(row, config.format, config.columns, config.groups, config.labels)
        if isinstance(rec, Reject):
            rejects.append(rec)
        else:
            records.append(rec)
    return records, rejects, n


def _infer_labels(records: list[dict[str, Any]]) -> list[str]:
    return sorted({r["label"] for r in records})


def _replay_rows(
    config: DataConfig, n_train: int, seed: int
) -> tuple[list[dict[str, Any]], dict[str, Any], list[Reject]]:
    """A seeded sample of cleaned replay rows, ``ratio`` x the train rows, formatted and marked ``replay``."""
    replay = config.replay
    assert replay is not None
    records, rejects = [], []
    for row in read_rows(replay.path):
        rec = to_record(row, replay.format, replay.columns, [], None)
        if isinstance(rec, Reject):
            rejects.append(rec)
        else:
            records.append(rec)
    cleaned, dropped = clean_records(records, replay.format, config.clean)
    wanted = round(replay.ratio * n_train)
    chosen = cap_rows(cleaned, wanted, seed)
    rows = [{**r, **to_example(r, replay.format, None, []), "replay": True} for r in chosen]
    info = {
        "path": replay.path,
        "sha256": sha256_file(Path(replay.path)),
        "wanted": wanted,
        "rows": len(rows),
        "available": len(cleaned),
    }
    return rows, info, rejects + dropped


def prepare_data(config: DataConfig, run: RunDir, seed: int = 0) -> PrepareResult:
    """Run stage 1 and write its outputs into ``run.data``; returns counts and rejects."""
    splits: dict[str, list[dict[str, Any]]] = {}
    rejects: list[Reject] = []
    inputs: dict[str, str] = {}
    total = 0
    for name in SPLITS:
        path = getattr(config, name)
        if path is None:
            continue
        records, bad, n = _read_records(path, config)
        total += n
        inputs[name] = path
        cleaned, dropped = clean_records(records, config.format, config.clean)
        splits[name] = cleaned
        rejects += bad + dropped
        if n and not records and name == "train":
            counts = Counter(_reason_class(r.reason) for r in bad).most_common(3)
            reasons = "; ".join(f"{k} ({v} rows)" for k, v in counts)
            first = bad[0] if bad else None
            detail = f" First: {first.file}:{first.line}: {first.reason}." if first else ""
            raise DataError(f"{path}: none of its {n} rows is a valid '{config.format}' record: {reasons}.{detail}")
    if not splits.get("train"):
        raise DataError(f"{config.train}: no usable training rows.")

    fractions = {
        n: getattr(config.split, n) for n in ("validation", "test") if n not in splits and getattr(config.split, n) > 0
    }
    if fractions:
        carved = stratified_split(splits["train"], fractions, config.split.stratify, seed)
        splits.update(carved)
    if config.split.remove_leaks:
        splits, leaked = remove_leaks(splits, config.format)
        rejects += leaked

    labels = config.labels or (_infer_labels(splits["train"]) if config.format == "classification" else [])
    if config.format == "classification":
        for name in ("validation", "test"):
            unseen = {r["label"] for r in splits.get(name, [])} - set(labels)
            if unseen:
                raise DataError(
                    f"{getattr(config, name) or name}: labels {sorted(unseen)} never occur in train {labels}."
                )
    sampled_out: dict[str, int] = {}
    for name, n in config.max_rows.items():
        if name not in SPLITS:
            raise DataError(f"data.max_rows: unknown split '{name}' (splits: {', '.join(SPLITS)}).")
        if name in splits:
            before = len(splits[name])
            splits[name] = cap_rows(splits[name], n, seed)
            sampled_out[name] = before - len(splits[name])

    template = load_template(config.task.template) if config.format == "classification" else None
    run.data.mkdir(parents=True, exist_ok=True)
    outputs = {}
    replay_rows: list[dict[str, Any]] = []
    replay_info: dict[str, Any] | None = None
    if config.replay is not None:
        replay_rows, replay_info, replay_rejects = _replay_rows(config, len(splits["train"]), seed)
        rejects += replay_rejects
    for name, records in splits.items():
        rows = [{**r, **to_example(r, config.format, template, labels)} for r in records]
        if name == "train":
            rows += replay_rows
        write_jsonl(run.split(name), rows)
        outputs[name] = {"rows": len(rows), "sha256": sha256_file(run.split(name))}
    write_jsonl(run.rejects, [r.to_json() for r in rejects])
    result = PrepareResult({n: len(r) for n, r in splits.items()}, labels, rejects, total)
    write_json(
        run.manifest,
        {
            "format": config.format,
            "labels": labels,
            "groups": config.groups,
            "inputs": {n: {"path": p, "sha256": sha256_file(Path(p))} for n, p in inputs.items()},
            "input_rows": total,
            "splits": outputs,
            "label_counts": {n: dict(Counter(r.get("label", "") for r in rs)) for n, rs in splits.items()},
            "rejects": dict(result.rejects_by_reason()),
            "sampled_out": sampled_out,
            "replay": replay_info,
            "config_sha256": config_digest(config, seed),
        },
    )
    return result
