"""What the benchmarks share: a few optimizer steps of tunesmith's engine and the throughput they logged."""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path
from typing import Any


def train_and_measure(
    model: Any,
    examples: list[dict],
    config: Any,
    pad_id: int,
    precision: str,
    loss_module: Any = None,
    collate_fn: Any = None,
) -> dict:
    """Run ``fit`` into a scratch dir; tokens/s over the steps after the first (a warm-up), loss, tokens.

    ``loss_module`` defaults to SFT's :class:`CausalLMLoss` around ``model``; ``collate_fn`` to the engine's.
    """
    from tunesmith.train.engine import fit
    from tunesmith.train.sft.loss import CausalLMLoss

    out = Path(tempfile.mkdtemp())
    fit(
        loss_module if loss_module is not None else CausalLMLoss(model),
        examples,
        config,
        pad_id=pad_id,
        seed=0,
        precision=precision,
        checkpoint_dir=out / "ck",
        metrics_path=out / "metrics.jsonl",
        collate_fn=collate_fn,
    )
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    first, last = logged[0], logged[-1]
    return {
        "tokens_per_s": (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"]),
        "seconds_per_step": (last["elapsed_s"] - first["elapsed_s"]) / (len(logged) - 1),
        "timed_tokens": last["tokens"] - first["tokens"],
        "trained_tokens": last["tokens"],
        "mean_loss": statistics.fmean(r["loss"] for r in logged[1:]),
    }


def trl_clock() -> tuple[Any, list[tuple[float, int, float]]]:
    """A transformers callback that records ``(time, non-padding tokens seen, logged loss)`` at each optimizer
    step of a TRL trainer, and the list it fills (the baselines' side of every benchmark)."""
    import time

    from transformers import TrainerCallback

    marks: list[tuple[float, int, float]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):  # type: ignore[no-untyped-def]
            marks.append((time.perf_counter(), int(state.num_input_tokens_seen), 0.0))

        def on_log(self, args, state, control, logs=None, **kw):  # type: ignore[no-untyped-def]
            if logs and "loss" in logs and marks:
                marks[-1] = (marks[-1][0], marks[-1][1], float(logs["loss"]))

    return Clock(), marks


def trl_measure(marks: list[tuple[float, int, float]]) -> dict:
    """What :func:`trl_clock` recorded, as :func:`train_and_measure` reports it (the first step a warm-up)."""
    (t0, n0, _), (t1, n1, _) = marks[0], marks[-1]
    return {
        "tokens_per_s": (n1 - n0) / (t1 - t0),
        "seconds_per_step": (t1 - t0) / (len(marks) - 1),
        "timed_tokens": n1 - n0,
        "trained_tokens": n1,
        "mean_loss": statistics.fmean(m[2] for m in marks[1:]),
    }


def rss_gb() -> float:
    """This process's peak resident memory so far, in GiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cuda_peak_gb() -> float | None:
    """Peak CUDA memory allocated so far, in GiB (None without CUDA)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
