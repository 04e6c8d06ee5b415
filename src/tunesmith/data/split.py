"""Deterministic, stratified, group-aware splits; cross-split leak removal (exact and near-duplicate)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from tunesmith.data.dedup import MinHashConfig, cross_near_duplicates, origin, record_texts
from tunesmith.data.records import Reject, dedup_key


def stratum(record: dict[str, Any], keys: list[str]) -> tuple[str, ...]:
    """The stratum of a record: its label, group values and/or detected language, in the order of ``keys``.

    ``language`` means the group column of that name when the data has one, else the detected language.
    """
    out = []
    for k in keys:
        groups = record.get("groups", {})
        if k == "label":
            out.append(str(record.get("label", "")))
        elif k == "language" and k not in groups:
            out.append(record.get("detected", {}).get("language", ""))
        else:
            out.append(groups.get(k, ""))
    return tuple(out)


def stratified_split(
    records: list[dict[str, Any]],
    fractions: dict[str, float],
    keys: list[str],
    seed: int,
    clusters: Sequence[int] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Split into ``train`` plus each named fraction, stratified by ``keys``; the same seed gives the same split.

    Each stratum is shuffled with its own seeded RNG and cut by rounding its share, so small strata still
    reach every split when they have enough rows; the remainder stays in train.

    With ``clusters`` (one id per record, e.g. from :func:`tunesmith.data.dedup.record_clusters`) the unit
    shuffled and assigned is a whole cluster, so near-duplicates never straddle splits: otherwise a test row
    whose paraphrase sits in train scores as memorisation. A cluster belongs to the stratum of its first
    row, and goes to the first split it still fits in (else train), so splits stay close to their shares.
    With every cluster a singleton the result equals the split without clusters.
    """
    if clusters is not None and len(clusters) != len(records):
        raise ValueError(f"clusters has {len(clusters)} ids for {len(records)} records")
    units: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for i, r in enumerate(records):
        units[i if clusters is None else clusters[i]].append(r)
    by_stratum: dict[tuple[str, ...], list[list[dict[str, Any]]]] = defaultdict(list)
    for unit in units.values():
        by_stratum[stratum(unit[0], keys)].append(unit)
    out: dict[str, list[dict[str, Any]]] = {"train": [], **{name: [] for name in fractions}}
    for i, key in enumerate(sorted(by_stratum)):
        group = list(by_stratum[key])
        random.Random(f"{seed}:{i}:{key}").shuffle(group)
        size = sum(len(u) for u in group)
        room = {name: round(size * frac) for name, frac in fractions.items()}
        for unit in group:
            name = next((n for n in fractions if len(unit) <= room[n]), "train")
            if name != "train":
                room[name] -= len(unit)
            out[name].extend(unit)
    for name, rows in out.items():
        random.Random(f"{seed}:{name}").shuffle(rows)
    return out


def stratum_warnings(splits: dict[str, list[dict[str, Any]]], keys: list[str], minimum: int) -> list[str]:
    """One line per (stratum, split) with fewer than ``minimum`` rows, including strata absent from a split.

    Per-class scores on a handful of rows are noise (pcm ``neutral`` has 72 train rows of 5121), and a
    stratum missing from train cannot be learned: the prepare report should say so before training.
    """
    if not keys:
        return []
    counts = {name: Counter(stratum(r, keys) for r in rows) for name, rows in splits.items()}
    strata = sorted(set().union(*counts.values())) if counts else []
    out = []
    for key in strata:
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, key, strict=True))
        for name, counter in counts.items():
            if counter[key] < minimum:
                out.append(f"stratum {label} has {counter[key]} rows in {name} (minimum {minimum})")
    return out


def remove_leaks(
    splits: dict[str, list[dict[str, Any]]],
    kind: str,
    order: tuple[str, ...] = ("train", "validation", "test"),
    near: float | None = None,
    minhash: MinHashConfig = MinHashConfig(),
) -> tuple[dict[str, list[dict[str, Any]]], list[Reject]]:
    """Drop rows of a later split whose text occurs in an earlier one (train before validation before test).

    With ``near`` (a Jaccard threshold, e.g. 0.8) rows that nearly duplicate a kept row of an earlier split
    are dropped too: a retweet with another ``@user`` or one edited word is still memorisation. Every reason
    starts with ``"<split> row also in <earlier split>"`` and names the other row's file:line (and the
    similarity for near duplicates), so reports can group exact and near leaks together or apart.
    """
    out, rejects = _remove_exact_leaks(splits, kind, order)
    if near is None:
        return out, rejects
    earlier: list[tuple[str, dict[str, Any]]] = []
    for name in order:
        if name not in out:
            continue
        rows = out[name]
        if earlier:
            refs = [r for _, r in earlier]
            matches = cross_near_duplicates(record_texts(rows, kind), record_texts(refs, kind), near, minhash)
            kept = []
            for r, m in zip(rows, matches, strict=True):
                if m is None:
                    kept.append(r)
                    continue
                other_split, other = earlier[m[0]]
                reason = (
                    f"{name} row also in {other_split} as a near duplicate (Jaccard {m[1]:.2f}) of {origin(other)}: "
                    "removed so scores are not memorisation"
                )
                rejects.append(_reject(r, reason))
            out[name] = rows = kept
        earlier += [(name, r) for r in rows]
    return out, rejects


def _reject(record: dict[str, Any], reason: str) -> Reject:
    src = record["source"]
    return Reject(src["file"], src["line"], None, reason, {k: v for k, v in record.items() if k != "source"})


def _remove_exact_leaks(
    splits: dict[str, list[dict[str, Any]]], kind: str, order: tuple[str, ...]
) -> tuple[dict[str, list[dict[str, Any]]], list[Reject]]:
    """The exact pass of :func:`remove_leaks`: same ``dedup_key`` (lowercased, whitespace collapsed)."""
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
                reason = f"{name} row also in {other_split} ({origin(other)}): removed so scores are not memorisation"
                rejects.append(_reject(r, reason))
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
