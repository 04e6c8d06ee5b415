"""Deterministic, stratified splits and cross-split leak removal."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from tunesmith.data.records import Reject, dedup_key


def stratum(record: dict[str, Any], keys: list[str]) -> tuple[str, ...]:
    """The stratum of a record: its label and/or group values, in the order of ``keys``."""
    out = []
    for k in keys:
        if k == "label":
            out.append(record.get("label", ""))
        else:
            out.append(record.get("groups", {}).get(k, ""))
    return tuple(out)


def stratified_split(
    records: list[dict[str, Any]], fractions: dict[str, float], keys: list[str], seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Split into ``train`` plus each named fraction, stratified by ``keys``; the same seed gives the same split.

    Each stratum is shuffled with its own seeded RNG and cut by rounding its share, so small strata still
    reach every split when they have enough rows; the remainder stays in train.
    """
    by_stratum: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_stratum[stratum(r, keys)].append(r)
    out: dict[str, list[dict[str, Any]]] = {"train": [], **{name: [] for name in fractions}}
    for i, key in enumerate(sorted(by_stratum)):
        group = list(by_stratum[key])
        random.Random(f"{seed}:{i}:{key}").shuffle(group)
        start = 0
        for name, frac in fractions.items():
            n = round(len(group) * frac)
            out[name].extend(group[start : start + n])
            start += n
        out["train"].extend(group[start:])
    for name, rows in out.items():
        random.Random(f"{seed}:{name}").shuffle(rows)
    return out


def remove_leaks(
    splits: dict[str, list[dict[str, Any]]], kind: str, order: tuple[str, ...] = ("train", "validation", "test")
) -> tuple[dict[str, list[dict[str, Any]]], list[Reject]]:
    """Drop rows of a later split whose text occurs in an earlier one (train before validation before test)."""
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    rejects: list[Reject] = []
    out: dict[str, list[dict[str, Any]]] = {}
    for name in order:
        if name not in splits:
            continue
        kept = []
        for r in splits[name]:
            key = dedup_key(r, kind)
            if key in seen and seen[key][0] != name:
                other_split, other = seen[key]
                src = r["source"]
                where = f"{other['source']['file']}:{other['source']['line']}"
                reason = f"{name} row also in {other_split} ({where}): removed so scores are not memorisation"
                rejects.append(
                    Reject(src["file"], src["line"], None, reason, {k: v for k, v in r.items() if k != "source"})
                )
                continue
            seen.setdefault(key, (name, r))
            kept.append(r)
        out[name] = kept
    return out, rejects


def cap_rows(records: list[dict[str, Any]], n: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of at most ``n`` records (order kept), or all of them."""
    if n is None or len(records) <= n:
        return records
    idx = sorted(random.Random(seed).sample(range(len(records)), n))
    return [records[i] for i in idx]
