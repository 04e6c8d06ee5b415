"""Near-duplicate detection: MinHash signatures, banded LSH candidates, exact-Jaccard verification.

Exact dedup (``dedup_key``) misses the duplicates that matter most in scraped text: the same tweet with a
different ``@user``, a trailing URL, one changed word or an extra emoji. Those inflate test scores just as
verbatim copies do, and when they straddle train and test they are leakage. Comparing every pair is
quadratic, so texts are reduced to MinHash signatures (``num_perm`` min-hashes of their shingle sets, whose
agreement rate estimates Jaccard similarity), banded locality-sensitive hashing proposes candidate pairs,
and each candidate is verified on the exact Jaccard of its shingle sets, so a reported similarity is a fact
about the two texts, not an estimate.

Everything is numpy-vectorised (hashing, signatures, bucketing) and seeded: the same texts, settings and
seed always give the same pairs and clusters.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from tunesmith.data.records import Reject, dedup_key

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"@\w+")
_POLY = np.uint64(0x100000001B3)  # FNV prime: odd, so the rolling hash keeps every code point's bits
_RECALL = 0.98  # wanted chance that a pair exactly at the threshold becomes a candidate
_PREFILTER = 0.15  # candidates whose estimate is this far below the threshold skip exact verification
_CHUNK = 1 << 15  # shingles hashed at a time (x num_perm x 8 bytes of scratch memory)
_BATCH = 1 << 20  # symbols rolled at a time when shingling


@dataclass(frozen=True)
class MinHashConfig:
    """How texts become shingle sets and signatures; every field changes which pairs are found.

    Attributes:
        num_perm: Min-hashes per signature; more gives sharper LSH banding (fewer missed pairs) at linear cost.
        ngram: Shingle length, in characters (``unit="char"``) or words (``unit="word"``). Character 5-grams
            suit tweets: a one-word edit changes only a few shingles, while word shingles of a 15-word text
            change a large fraction.
        unit: ``char`` or ``word`` shingles.
        seed: Seeds the hash family, so results are reproducible.
        strip_mentions: Drop ``@user`` handles before shingling (retweets differ only in them).
        strip_urls: Drop URLs before shingling (shortened links differ on every post).
    """

    num_perm: int = 128
    ngram: int = 5
    unit: Literal["char", "word"] = "char"
    seed: int = 0
    strip_mentions: bool = True
    strip_urls: bool = True


@dataclass(frozen=True)
class _Shingled:
    """Unique normalised texts, their shingle sets (sorted hash runs) and which input rows share each text."""

    unique_of: np.ndarray  # input index -> unique-text index
    first: np.ndarray  # unique-text index -> first input index with that text
    starts: np.ndarray  # unique-text index -> start of its run in ``values`` (len n_unique + 1)
    values: np.ndarray  # concatenated sorted unique shingle hashes (uint64 < 2**32)


def normalize_for_dedup(text: str, strip_mentions: bool = True, strip_urls: bool = True) -> str:
    """Lowercase, optionally drop mentions and URLs, collapse whitespace: what two copies of a text share."""
    if strip_urls:
        text = _URL.sub(" ", text)
    if strip_mentions:
        text = _MENTION.sub(" ", text)
    return " ".join(text.lower().split())


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the rolling hash's low-entropy bits over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _symbols(text: str, unit: str) -> np.ndarray:
    """The symbol sequence of one text: code points, or one CRC32 per word."""
    if unit == "char":
        return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return np.fromiter((zlib.crc32(w.encode()) for w in text.split()), dtype=np.uint64)


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values; sort + neighbour compare beats ``np.unique``'s hash path on uint64 here."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def _ngram_hashes(seqs: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every n-gram of every sequence, with the sequence each belongs to.

    A sequence shorter than ``n`` contributes one shingle (itself), so short texts still compare; an empty
    one contributes none. The rolling polynomial is computed for all positions at once (n vector passes).
    """
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
    widths = np.minimum(lengths, n)
    symbols = np.concatenate([*seqs, np.zeros(n, dtype=np.uint64)]) if seqs else np.zeros(n, dtype=np.uint64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(seqs) else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(seqs)), counts)
    first_shingle = np.cumsum(counts) - counts
    pos = np.arange(int(counts.sum())) - np.repeat(first_shingle, counts) + np.repeat(offsets, counts)
    width = np.repeat(widths, counts)
    h = np.zeros(len(pos), dtype=np.uint64)
    for k in range(n):
        h = np.where(k < width, h * _POLY + symbols[pos + k], h)
    return owner, _mix64(h) >> np.uint64(32)


def _shingle(texts: Sequence[str], config: MinHashConfig) -> _Shingled:
    """Normalise, collapse identical normalised texts, and build each unique text's shingle set.

    A text that normalises to nothing (only mentions or URLs) gets a unique text of its own: it has no
    content to compare, and calling all such rows duplicates of one another would drop them wholesale.
    """
    index: dict[str | int, int] = {}
    unique_of = np.empty(len(texts), dtype=np.int64)
    first: list[int] = []
    for i, text in enumerate(texts):
        norm = normalize_for_dedup(text, config.strip_mentions, config.strip_urls)
        u = index.setdefault(norm or i, len(index))
        if u == len(first):
            first.append(i)
        unique_of[i] = u
    seqs = [_symbols(t, config.unit) if isinstance(t, str) else np.zeros(0, np.uint64) for t in index]
    parts, lo = [], 0
    while lo < len(seqs):  # batches of ~_BATCH symbols bound the scratch memory of the rolling hash
        hi, size = lo, 0
        while hi < len(seqs) and (hi == lo or size + len(seqs[hi]) <= _BATCH):
            size += len(seqs[hi])
            hi += 1
        owner, hashes = _ngram_hashes(seqs[lo:hi], config.ngram)
        parts.append(_sorted_unique(((owner + lo).astype(np.uint64) << np.uint64(32)) | hashes))
        lo = hi
    keyed = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)  # by owner, then hash
    owners = (keyed >> np.uint64(32)).astype(np.int64)
    starts = np.searchsorted(owners, np.arange(len(index) + 1))
    return _Shingled(unique_of, np.array(first, dtype=np.int64), starts, keyed & np.uint64(0xFFFFFFFF))


def _signatures(sh: _Shingled, config: MinHashConfig) -> np.ndarray:
    """MinHash signatures (n_unique x num_perm, uint32) with multiply-add-shift hashes seeded by ``seed``.

    ``(a * x + b) mod 2**64 >> 32`` with odd 64-bit ``a`` is Dietzfelbinger's strongly universal family for
    32-bit keys: cheap in numpy (three in-place passes) and good enough for min-wise hashing of shingles
    that are already well-mixed 32-bit fingerprints.

    Hashing runs in fixed windows of shingles so that scratch memory stays bounded for any corpus and any
    text length.
    Texts without shingles keep the all-ones signature and are never bucketed.
    """
    rng = np.random.Generator(np.random.PCG64(config.seed))
    a = rng.integers(0, 2**63, size=config.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=config.num_perm, dtype=np.uint64)
    n_unique = len(sh.starts) - 1
    sig = np.full((n_unique, config.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    counts = np.diff(sh.starts)
    for lo in range(0, len(sh.values), _CHUNK):
        hi = min(lo + _CHUNK, len(sh.values))
        # Texts overlapping [lo, hi); a long text spans windows and takes the minimum over them.
        first = int(np.searchsorted(sh.starts, lo, side="right")) - 1
        last = int(np.searchsorted(sh.starts, hi - 1, side="right"))
        rows = np.arange(first, last)
        rows = rows[counts[rows] > 0]
        hashed = a[:, None] * sh.values[None, lo:hi]  # (num_perm, shingles): rows are contiguous
        hashed += b[:, None]
        hashed >>= np.uint64(32)
        mins = np.minimum.reduceat(hashed.astype(np.uint32), np.maximum(sh.starts[rows], lo) - lo, axis=1)
        sig[rows] = np.minimum(sig[rows], mins.T)
    return sig


@lru_cache(maxsize=64)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands and rows per band: fewest false candidates among those that find a pair at the threshold.

    A pair with Jaccard ``s`` becomes a candidate with probability ``1 - (1 - s**r)**b``. Candidates are
    verified exactly, so false positives cost only time while false negatives are missed duplicates: the
    choice requires >= 98% recall at the threshold and then minimises the candidate mass below it.
    """
    grid = np.linspace(0.0, 1.0, 401)
    below = grid[grid <= threshold]

    def cost(r: int) -> tuple[bool, float]:
        b = num_perm // r
        at = 1.0 - (1.0 - threshold**r) ** b
        if at < _RECALL:  # only when no choice reaches the recall: then the one closest to it
            return True, -at
        return False, float((1.0 - (1.0 - below**r) ** b).mean()) * threshold

    rows = min(range(1, num_perm + 1), key=cost)
    return num_perm // rows, rows


def _candidates(sig: np.ndarray, nonempty: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Unique pairs (i < j) of signature rows that agree on every row of at least one band."""
    found: list[np.ndarray] = []
    sig = sig[nonempty].astype(np.uint64)
    for band in range(bands):
        key = np.zeros(len(sig), dtype=np.uint64)
        for col in range(band * rows, (band + 1) * rows):
            key = _mix64(key ^ sig[:, col])
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.concatenate([[True], np.diff(key[order]) != 0, [True]]))
        sizes = np.diff(starts)
        for start, size in zip(starts[:-1][sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
            group = order[start : start + size]
            i, j = np.triu_indices(size, k=1)
            found.append(np.stack([nonempty[group[i]], nonempty[group[j]]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found), axis=1)
    code = _sorted_unique(pairs[:, 0].astype(np.uint64) << np.uint64(32) | pairs[:, 1].astype(np.uint64))
    return np.stack([code >> np.uint64(32), code & np.uint64(0xFFFFFFFF)], axis=1).astype(np.int64)


def _jaccard(sh: _Shingled, i: int, j: int) -> float:
    """Exact Jaccard of two unique texts' shingle sets."""
    a = sh.values[sh.starts[i] : sh.starts[i + 1]]
    b = sh.values[sh.starts[j] : sh.starts[j + 1]]
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def _unique_pairs(sh: _Shingled, threshold: float, config: MinHashConfig) -> list[tuple[int, int, float]]:
    """Verified near-duplicate pairs among the unique normalised texts (indices into ``sh.first``)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if len(sh.first) < 2:
        return []
    sig = _signatures(sh, config)
    nonempty = np.flatnonzero(np.diff(sh.starts) > 0)
    bands, rows = lsh_bands(threshold, config.num_perm)
    cand = _candidates(sig, nonempty, bands, rows)
    if len(cand) == 0:
        return []
    estimate = (sig[cand[:, 0]] == sig[cand[:, 1]]).mean(axis=1)
    out = []
    for i, j in cand[estimate >= threshold - _PREFILTER].tolist():
        jac = _jaccard(sh, i, j)
        if jac >= threshold:
            out.append((i, j, jac))
    return out


def near_duplicate_pairs(
    texts: Sequence[str], threshold: float = 0.8, config: MinHashConfig = MinHashConfig()
) -> list[tuple[int, int, float]]:
    """Every pair ``(i, j, jaccard)`` with ``i < j`` whose shingle Jaccard is at least ``threshold``.

    Texts identical after normalisation pair with Jaccard 1.0 without hashing (exact duplicates are
    near-duplicates too). Pairs are sorted, so the result is deterministic.
    """
    sh = _shingle(texts, config)
    members: list[list[int]] = [[] for _ in sh.first]
    for i, u in enumerate(sh.unique_of.tolist()):
        members[u].append(i)
    out: list[tuple[int, int, float]] = []
    for group in members:
        out += [(a, b, 1.0) for k, a in enumerate(group) for b in group[k + 1 :]]
    for u, v, jac in _unique_pairs(sh, threshold, config):
        out += [(min(a, b), max(a, b), jac) for a in members[u] for b in members[v]]
    return sorted(out)


def _find(parent: list[int], x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def merge_clusters(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Cluster ids where two rows are together if either partition puts them together (e.g. near duplicates
    and documents); ids are the smallest index of each merged cluster, as :func:`near_duplicate_clusters`'."""
    parent = list(range(len(a)))
    for ids in (a, b):
        for i, c in enumerate(ids):
            ri, rc = _find(parent, i), _find(parent, c)
            if ri != rc:
                parent[max(ri, rc)] = min(ri, rc)
    return [_find(parent, i) for i in range(len(a))]


def near_duplicate_clusters(
    texts: Sequence[str], threshold: float = 0.8, config: MinHashConfig = MinHashConfig()
) -> list[int]:
    """A cluster id per text: connected components of the near-duplicate graph (union-find).

    The id is the index of the cluster's first text, so ``clusters[i] == i`` marks the representative (first
    occurrence) and singletons are their own cluster. Components are transitive on purpose: for group-aware
    splits, ``a ~ b ~ c`` must all land in one split even when ``a`` and ``c`` are not similar themselves.
    """
    sh = _shingle(texts, config)
    parent = list(range(len(texts)))
    first = sh.first.tolist()
    edges = [(first[u], i) for i, u in enumerate(sh.unique_of.tolist())]
    edges += [(first[u], first[v]) for u, v, _ in _unique_pairs(sh, threshold, config)]
    for a, b in edges:
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the root stays the smallest index
    return [_find(parent, i) for i in range(len(texts))]


def near_duplicate_of(
    texts: Sequence[str], threshold: float = 0.8, config: MinHashConfig = MinHashConfig()
) -> list[tuple[int, float] | None]:
    """For each text, the earlier *kept* text it nearly duplicates (index, Jaccard), or None if it is kept.

    Greedy in input order, unlike the clusters: a text is dropped only when it is similar to a text that is
    itself kept, so a chain ``a ~ b ~ c`` with ``a`` and ``c`` dissimilar keeps both ``a`` and ``c``.
    Among several kept matches the most similar (then the earliest) is named. The work is done once per
    unique normalised text, so a text repeated thousands of times costs no more than one.
    """
    sh = _shingle(texts, config)
    first = sh.first.tolist()
    earlier: dict[int, list[tuple[int, float]]] = {}
    for u, v, jac in _unique_pairs(sh, threshold, config):
        earlier.setdefault(v, []).append((u, jac))  # u < v: unique ids follow first occurrence
    target: list[tuple[int, float] | None] = [None] * len(first)
    for v in range(len(first)):
        kept = [(first[u], jac) for u, jac in earlier.get(v, []) if target[u] is None]
        if kept:
            target[v] = min(kept, key=lambda m: (-m[1], m[0]))
    out: list[tuple[int, float] | None] = []
    for i, u in enumerate(sh.unique_of.tolist()):
        if i == first[u] or target[u] is not None:
            out.append(target[u])
        else:
            out.append((first[u], 1.0))
    return out


def cross_near_duplicates(
    queries: Sequence[str],
    references: Sequence[str],
    threshold: float = 0.8,
    config: MinHashConfig = MinHashConfig(),
) -> list[tuple[int, float] | None]:
    """For each query, its most similar reference (index, Jaccard) at or above ``threshold``, else None.

    This is the leak test: queries are evaluation rows, references the rows of earlier splits. Pairs within
    one side are ignored; the reference with the highest Jaccard (then the lowest index) is named. A query
    identical to a reference after normalisation is reported with Jaccard 1.0.
    """
    n_ref = len(references)
    sh = _shingle([*references, *queries], config)
    first = sh.first.tolist()
    best: list[tuple[int, float] | None] = [(f, 1.0) if f < n_ref else None for f in first]
    for u, v, jac in sorted(_unique_pairs(sh, threshold, config), key=lambda p: -p[2]):
        for q, r in ((u, v), (v, u)):
            if first[q] >= n_ref and first[r] < n_ref:
                current = best[q]
                if current is None or (-jac, first[r]) < (-current[1], current[0]):
                    best[q] = (first[r], jac)
    return [best[u] for u in sh.unique_of[n_ref:].tolist()]


def origin(record: dict[str, Any]) -> str:
    """``file:line`` of a record, for reasons that point at the row to compare with."""
    return f"{record['source']['file']}:{record['source']['line']}"


def near_dup_reason(jaccard: float, other: dict[str, Any]) -> str:
    """The reject reason for a row dropped as a near duplicate of ``other``."""
    return f"near duplicate (Jaccard {jaccard:.2f}) of {origin(other)}"


def record_texts(records: Sequence[dict[str, Any]], kind: str) -> list[str]:
    """The text each record is compared on: its ``dedup_key`` (labels and outputs excluded on purpose)."""
    return [dedup_key(r, kind) for r in records]


def dedup_near(
    records: Sequence[dict[str, Any]],
    kind: str,
    threshold: float = 0.8,
    config: MinHashConfig = MinHashConfig(),
) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Cleaning step: drop rows that nearly duplicate an earlier kept row, each with a reason naming it."""
    matches = near_duplicate_of(record_texts(records, kind), threshold, config)
    kept: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    for record, match in zip(records, matches, strict=True):
        if match is None:
            kept.append(record)
            continue
        src, (other, jac) = record["source"], match
        row = {k: v for k, v in record.items() if k != "source"}
        rejects.append(Reject(src["file"], src["line"], None, near_dup_reason(jac, records[other]), row))
    return kept, rejects


def record_clusters(
    records: Sequence[dict[str, Any]],
    kind: str,
    threshold: float = 0.8,
    config: MinHashConfig = MinHashConfig(),
) -> list[int]:
    """Near-duplicate cluster ids of records, for :func:`tunesmith.data.split.stratified_split`."""
    return near_duplicate_clusters(record_texts(records, kind), threshold, config)
