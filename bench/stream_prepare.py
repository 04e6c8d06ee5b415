"""Preparing a large JSONL with bounded memory: rows/s and peak RSS, streaming vs in memory, in one run.

Builds a JSONL of classification rows from the AfriSenti train tweets (each row made unique by a counter
so that deduplication keeps it), then runs ``prepare_data`` in a fresh child process per measurement and
reads the child's peak RSS:

- in memory (the default path) on a small file: the baseline, whose memory grows with the input;
- streaming on the same small file, and on the full-size file (1 GB by default).

    .venv/bin/python bench/stream_prepare.py            # 1 GB (about 10 minutes on 2 cores)
    .venv/bin/python bench/stream_prepare.py --gb 0.2   # quicker
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "afrisenti"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from tunesmith.config.schema import DataConfig
from tunesmith.data.prepare import prepare_data
from tunesmith.rundir import RunDir
path, out, stream = sys.argv[1], sys.argv[2], sys.argv[3]
config = DataConfig(train=path, format="classification", columns={"text": "tweet"}, stream=stream,
                    split={"validation": 0.05, "test": 0.05})
t0 = time.perf_counter()
result = prepare_data(config, RunDir(Path(out)), seed=0)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rows": result.input_rows, "kept": sum(result.counts.values()),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def tweets() -> list[tuple[str, str]]:
    rows = []
    for lang in ("hau", "ibo", "pcm", "yor", "arq", "ary"):
        with (SHARED / lang / "train.tsv").open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t")
            next(reader)
            rows += [(r[0], r[1]) for r in reader if len(r) == 2]
    return rows


def build(path: Path, target_bytes: int, source: list[tuple[str, str]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        while fh.tell() < target_bytes:
            text, label = source[n % len(source)]
            fh.write(json.dumps({"tweet": f"{text} #{n}", "label": label}, ensure_ascii=False) + "\n")
            n += 1
    return n


def measure(path: Path, stream: str, work: Path) -> dict[str, float]:
    out = work / f"run-{stream}-{path.stem}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(out), stream], capture_output=True, text=True, env=env
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["mb"] = path.stat().st_size / 2**20
    result["rows_per_s"] = result["rows"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the large file in GB")
    parser.add_argument("--small-mb", type=float, default=50.0, help="size of the file both paths prepare")
    args = parser.parse_args()
    source = tweets()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", "/tmp")) as tmp:
        work = Path(tmp)
        small, large = work / "small.jsonl", work / "large.jsonl"
        t0 = time.perf_counter()
        build(small, int(args.small_mb * 2**20), source)
        build(large, int(args.gb * 2**30), source)
        print(f"built inputs in {time.perf_counter() - t0:.0f} s", flush=True)
        results = [
            ("in memory", measure(small, "off", work)),
            ("streaming", measure(small, "on", work)),
            ("streaming", measure(large, "on", work)),
        ]
    print(f"\n{'path':<10} {'input MB':>9} {'rows':>10} {'kept':>10} {'rows/s':>9} {'peak RSS MB':>12}")
    for name, r in results:
        print(
            f"{name:<10} {r['mb']:>9.0f} {r['rows']:>10,.0f} {r['kept']:>10,.0f} {r['rows_per_s']:>9,.0f} "
            f"{r['peak_rss_mb']:>12,.0f}"
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this driver process: {own:.0f} MB; each measurement ran in its own child process)")


if __name__ == "__main__":
    main()
