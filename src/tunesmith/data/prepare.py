"""Stage 1 end to end: files -> records -> validation -> cleaning -> annotation -> splits -> formatted examples.

Writes into ``<run>/data/``: ``train.jsonl``, ``validation.jsonl``, ``test.jsonl`` (records with their
``prompt``/``completion``, ``messages`` or ``text``, and ``detected`` language/script/CMI), ``rejects.jsonl``
(every dropped row with file, line, field and reason), ``changes.jsonl`` (rows kept but repaired, such as
look-alike letters), ``manifest.json`` (kind, counts, label set, warnings, content hashes of inputs and
outputs) and the data card (``card.json`` + ``card.html``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config.data import DataConfig, converted_kind
from tunesmith.data.clean import Change, clean_records
from tunesmith.data.findings import reason_class as _reason_class
from tunesmith.data.format import load_template, to_example
from tunesmith.data.readers import read_rows
from tunesmith.data.records import Reject, detect_kind, to_record
from tunesmith.data.split import cap_rows, remove_leaks, stratified_split, stratum_warnings
from tunesmith.errors import DataError
from tunesmith.rundir import RunDir, sha256_file, write_json, write_jsonl

SPLITS = ("train", "validation", "test")
DETECT_ROWS = 100  # rows read to detect the kind: optional columns vary from row to row


@dataclass
class PrepareResult:
    """What stage 1 produced: per-split counts, the label set, rejects, repairs and warnings."""

    counts: dict[str, int]
    labels: list[str]
    rejects: list[Reject] = field(default_factory=list)
    input_rows: int = 0
    kind: str = ""
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reject_counts: Counter[str] | None = None  # a streamed run counts rejects instead of keeping them
    streamed: bool = False

    def rejects_by_reason(self) -> Counter[str]:
        if self.reject_counts is not None:
            return self.reject_counts
        return Counter(_reason_class(r.reason) for r in self.rejects)


def config_digest(config: DataConfig, seed: int = 0) -> str:
    """A hash of the data section and seed: prepared data is reused only when both are unchanged."""
    text = json.dumps({"data": config.model_dump(mode="json"), "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def prepared_kind(run: RunDir) -> str:
    """The record kind the prepared splits hold (after ``auto`` detection and conversion)."""
    if not run.manifest.is_file():
        raise DataError(f"{run.manifest} is missing: run `tunesmith data prepare` first.")
    return str(json.loads(run.manifest.read_text())["format"])


def resolve_kind(config: DataConfig) -> str:
    """``data.format``, or the kind the train file's columns fit when it is ``auto``."""
    if config.format != "auto":
        return config.format
    seen: dict[str, None] = {}
    for i, row in enumerate(read_rows(config.train, config.text_mode, config.dataset_split)):
        if "error" not in row.extra:  # a row that could not be parsed says nothing about the columns
            seen.update(dict.fromkeys(map(str, row.fields)))
        if i + 1 >= DETECT_ROWS:
            break
    try:
        return detect_kind(seen, columns=config.columns)
    except DataError as exc:
        raise DataError(f"{config.train}: data.format auto: {exc}") from None


def iter_records(path: str, kind: str, config: DataConfig) -> Iterator[dict[str, Any] | Reject]:
    """Each row of ``path`` as a record of ``kind`` or a Reject (the in-memory and streaming paths share it)."""
    for row in read_rows(path, config.text_mode, config.dataset_split):
        yield to_record(row, kind, config.columns, config.groups, config.labels)


def _read_records(path: str, kind: str, config: DataConfig) -> tuple[list[dict[str, Any]], list[Reject], int]:
    records: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    n = 0
    for rec in iter_records(path, kind, config):
        n += 1
        if isinstance(rec, Reject):
            rejects.append(rec)
        else:
            records.append(rec)
    return records, rejects, n


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


def _read_splits(
    config: DataConfig, kind: str, changes: list[Change]
) -> tuple[dict[str, list[dict[str, Any]]], list[Reject], dict[str, str], int]:
    """Read, validate and clean every given split file; a train file with no valid row is an error."""
    splits: dict[str, list[dict[str, Any]]] = {}
    rejects: list[Reject] = []
    inputs: dict[str, str] = {}
    total = 0
    for name in SPLITS:
        path = getattr(config, name)
        if path is None:
            continue
        records, bad, n = _read_records(path, kind, config)
        total += n
        inputs[name] = path
        cleaned, dropped = clean_records(records, kind, config.clean, changes)
        splits[name] = cleaned
        rejects += bad + dropped
        if n and not records and name == "train":
            counts = Counter(_reason_class(r.reason) for r in bad).most_common(3)
            reasons = "; ".join(f"{k} ({v} rows)" for k, v in counts)
            first = bad[0] if bad else None
            detail = f" First: {first.file}:{first.line}: {first.reason}." if first else ""
            raise DataError(f"{path}: none of its {n} rows is a valid '{kind}' record: {reasons}.{detail}")
    if not splits.get("train"):
        raise DataError(f"{config.train}: no usable training rows.")
    return splits, rejects, inputs, total


def mark_leaks(splits: dict[str, list[dict[str, Any]]], leaks: list[Reject]) -> dict[str, list[dict[str, Any]]]:
    """Held-out rows tagged ``groups.leak``: ``exact``/``near`` when they repeat an earlier split, else ``none``."""
    kinds = {(r.file, r.line): "near" if "near duplicate" in r.reason else "exact" for r in leaks}
    out = {}
    for name, rows in splits.items():
        if name == "train":
            out[name] = rows
            continue
        out[name] = [
            {
                **r,
                "groups": {
                    **r.get("groups", {}),
                    "leak": kinds.get((r["source"]["file"], r["source"]["line"]), "none"),
                },
            }
            for r in rows
        ]
    return out


def _carve(
    splits: dict[str, list[dict[str, Any]]], config: DataConfig, kind: str, seed: int
) -> tuple[dict[str, list[dict[str, Any]]], list[Reject], list[str]]:
    """Hold out the missing splits (stratified, near-duplicate clusters kept whole), then remove leaks."""
    fractions = {
        n: getattr(config.split, n) for n in ("validation", "test") if n not in splits and getattr(config.split, n) > 0
    }
    near = config.clean.near_dup
    # the default stratum is the label; records without one (text, pairs, chats) have nothing to warn about
    # (the split itself keeps the configured keys: a constant stratum changes nothing but the seeded order,
    # and the same config must keep giving the same split)
    stratify = [k for k in config.split.stratify if k != "label" or any("label" in r for r in splits["train"])]
    if fractions:
        train = splits["train"]
        clusters = None
        if config.split.group_near_dups and near is not None:
            from tunesmith.data.dedup import record_clusters

            clusters = record_clusters(train, kind, near)
        if config.split.keep_together:
            from tunesmith.data.dedup import merge_clusters

            together = _group_ids(train, config.split.keep_together)
            clusters = together if clusters is None else merge_clusters(clusters, together)
        splits = {**splits, **stratified_split(splits["train"], fractions, config.split.stratify, seed, clusters)}
    leaked: list[Reject] = []
    if config.split.mark_leaks:
        splits = mark_leaks(splits, remove_leaks(splits, kind, near=near)[1])
    elif config.split.remove_leaks:
        splits, leaked = remove_leaks(splits, kind, near=near)
    warnings = stratum_warnings(splits, stratify, config.split.min_per_stratum)
    for name in fractions:
        if not splits.get(name) and near is not None:
            warnings.insert(
                0,
                f"{name} is empty: its rows were near duplicates of train rows (clean.near_dup={near}), kept "
                "together in train or removed as leaks; templated data may need clean.near_dup: null",
            )
    return splits, leaked, warnings


def _group_ids(records: list[dict[str, Any]], column: str) -> list[int]:
    """A cluster id per record from a group column: rows sharing a value (one document) stay together."""
    first: dict[str, int] = {}
    ids = []
    for i, r in enumerate(records):
        value = r.get("groups", {}).get(column)
        if value is None:
            raise DataError(f"split.keep_together: '{column}' must also be listed in data.groups.")
        ids.append(first.setdefault(value, i))
    return ids


def _convert(records: list[dict[str, Any]], kind: str, config: DataConfig) -> list[dict[str, Any]]:
    """Apply ``data.convert``: ranking/rating/choice -> preference pairs, parallel -> instructions."""
    from tunesmith.data.convert import parallel_to_instructions, to_pairs

    target = converted_kind(kind, config.convert)
    if target == kind:
        return records
    if target == "preference":
        return to_pairs(records, kind, config.pair_margin)
    return [i for r in records for i in parallel_to_instructions(r)]


def card_tokenizer(base: str) -> Any:
    """The tokenizer of ``model.base`` for the card's fertility table, or None where it cannot be had
    offline (a hub id on a machine without network): the card then leaves fertility out."""
    from tunesmith.data.inspect import load_tokenizer
    from tunesmith.errors import TunesmithError

    try:
        return load_tokenizer(base)
    except (TunesmithError, OSError, ValueError):
        return None


def write_data_card(
    splits: dict[str, list[dict[str, Any]]],
    kind: str,
    run: RunDir,
    *,
    identifier: Any,
    tokenizer: Any,
    rejects: list[Reject],
    near: float | None,
) -> None:
    """``card.json`` + ``card.html``: languages, scripts, CMI, lengths, labels, duplicates, leaks, rejects."""
    from tunesmith.data.card import write_card
    from tunesmith.data.profile import profile_dataset

    card = profile_dataset(
        splits, kind, identifier=identifier, tokenizer=tokenizer, rejects=rejects, near_threshold=near or 0.8
    )
    write_card(card, run.data, title=run.root.name)


def write_arrow(path: Path, rows: list[dict[str, Any]]) -> bool:
    """The split as an Arrow stream file (``datasets.Dataset.from_file`` reads it); False when the rows'
    types cannot share one Arrow schema (the JSONL beside it is then the only copy)."""
    import pyarrow as pa

    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    tmp.replace(path)
    return True


def check_strict(config: DataConfig, reasons: Counter[str], run: RunDir) -> None:
    """``data.strict``: any reject is an error (the rejects file is already written for inspection)."""
    if config.strict and reasons:
        top = "; ".join(f"{reason} ({n})" for reason, n in reasons.most_common(5))
        raise DataError(f"data.strict: {sum(reasons.values())} rows were rejected: {top}. Each is in {run.rejects}.")


def prepare_data(config: DataConfig, run: RunDir, seed: int = 0, tokenizer: Any = None) -> PrepareResult:
    """Run stage 1 and write its outputs into ``run.data``; returns counts, rejects and warnings.

    ``tokenizer`` (optional) adds tokens-per-word and byte-fallback rates per language to the data card.
    """
    kind = resolve_kind(config)
    from tunesmith.data.stream import prepare_streaming, should_stream

    if should_stream(config):
        run.data.mkdir(parents=True, exist_ok=True)
        info = prepare_streaming(config, run, kind, seed)
        check_strict(config, info["reasons"], run)
        return PrepareResult(
            info["counts"], info["labels"], [], info["input_rows"], kind, reject_counts=info["reasons"], streamed=True
        )
    changes: list[Change] = []
    splits, rejects, inputs, total = _read_splits(config, kind, changes)
    identifier = None
    if config.language.detect:
        from tunesmith.data.annotate import annotate, identifier_for

        run.data.mkdir(parents=True, exist_ok=True)
        identifier = identifier_for(config.language, splits["train"], kind, run.data / "langid.json")
        splits = {name: annotate(records, kind, identifier) for name, records in splits.items()}
    splits, leaked, warnings = _carve(splits, config, kind, seed)
    rejects += leaked

    labels = config.labels or (sorted({r["label"] for r in splits["train"]}) if kind == "classification" else [])
    if kind == "classification" and not config.labels:
        for name in ("validation", "test"):
            unseen = sorted({r["label"] for r in splits.get(name, [])} - set(labels))
            if unseen:  # label shift: score them anyway, and say so
                labels = sorted({*labels, *unseen})
                warnings.append(
                    f"{name} has labels {unseen} that never occur in train (label shift): they stay in the label "
                    "set, but the model never learns them"
                )
    sampled_out: dict[str, int] = {}
    for name, n in config.max_rows.items():
        if name not in SPLITS:
            raise DataError(f"data.max_rows: unknown split '{name}' (splits: {', '.join(SPLITS)}).")
        if name in splits:
            before = len(splits[name])
            splits[name] = cap_rows(splits[name], n, seed)
            sampled_out[name] = before - len(splits[name])

    out_kind = converted_kind(kind, config.convert)
    if out_kind != kind:
        splits = {name: _convert(records, kind, config) for name, records in splits.items()}
        if identifier is not None:  # the converted records' own texts
            from tunesmith.data.annotate import annotate

            splits = {name: annotate(records, out_kind, identifier) for name, records in splits.items()}
    template = load_template(config.task.template) if out_kind == "classification" else None
    run.data.mkdir(parents=True, exist_ok=True)
    outputs = {}
    replay_rows: list[dict[str, Any]] = []
    replay_info: dict[str, Any] | None = None
    if config.replay is not None:
        replay_rows, replay_info, replay_rejects = _replay_rows(config, len(splits["train"]), seed)
        rejects += replay_rejects
    for name, records in splits.items():
        rows = [{**r, **to_example(r, out_kind, template, labels)} for r in records]
        if name == "train":
            rows += replay_rows
        write_jsonl(run.split(name), rows)
        outputs[name] = {"rows": len(rows), "sha256": sha256_file(run.split(name))}
        if write_arrow(run.split(name).with_suffix(".arrow"), rows):
            outputs[name]["arrow"] = run.split(name).with_suffix(".arrow").name
    write_jsonl(run.rejects, [r.to_json() for r in rejects])
    write_jsonl(run.data / "changes.jsonl", [c.to_json() for c in changes])
    write_data_card(
        splits,
        out_kind,
        run,
        identifier=identifier,
        tokenizer=tokenizer,
        rejects=rejects,
        near=config.clean.near_dup,
    )
    result = PrepareResult({n: len(r) for n, r in splits.items()}, labels, rejects, total, out_kind, changes, warnings)
    write_json(
        run.manifest,
        {
            "format": out_kind,
            "input_format": kind,
            "labels": labels,
            "groups": config.groups,
            "inputs": {n: {"path": p, "sha256": sha256_file(Path(p))} for n, p in inputs.items()},
            "input_rows": total,
            "splits": outputs,
            "label_counts": {n: dict(Counter(r.get("label", "") for r in rs)) for n, rs in splits.items()},
            "languages": {
                n: dict(Counter(r["detected"]["language"] for r in rs if "detected" in r)) for n, rs in splits.items()
            },
            "rejects": dict(result.rejects_by_reason()),
            "changes": len(changes),
            "warnings": warnings,
            "sampled_out": sampled_out,
            "replay": replay_info,
            "config_sha256": config_digest(config, seed),
        },
    )
    check_strict(config, result.rejects_by_reason(), run)
    return result
