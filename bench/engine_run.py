"""What the benchmarks share: a few optimizer steps of tunesmith's engine and the throughput they logged."""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any


def train_and_measure(model: Any, examples: list[dict], config: Any, pad_id: int, precision: str) -> dict:
    """Run ``fit`` into a scratch dir; tokens/s over the steps after the first (a warm-up), loss, tokens."""
    from tunesmith.train.engine import fit
    from tunesmith.train.sft.loss import CausalLMLoss

    out = Path(tempfile.mkdtemp())
    fit(
        CausalLMLoss(model),
        examples,
        config,
        pad_id=pad_id,
        seed=0,
        precision=precision,
        checkpoint_dir=out / "ck",
        metrics_path=out / "metrics.jsonl",
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    first, last = logged[0], logged[-1]
    return {
        "tokens_per_s": (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"]),
        "timed_tokens": last["tokens"] - first["tokens"],
        "trained_tokens": last["tokens"],
        "mean_loss": statistics.fmean(r["loss"] for r in logged[1:]),
    }
