"""What the benchmarks share: a few optimizer steps of tunesmith's engine and the throughput they logged, the
alternating runs of a tool and its baseline, their table and their JSON."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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
        "warmup_s": first["elapsed_s"],  # the untimed first step: with train.compile, the compiling
    }


def prepare_like_recipe(model: Any, precision: str, lora: bool = True, compile_blocks: bool = False) -> Any:
    """What ``lifecycle.prepare`` does to a loaded model, with every benchmark's LoRA (r 16, alpha 32, all linear
    layers): the adapter, the frozen base stored in bf16 under bf16 (``train.bf16_frozen_base``, default on),
    then the compiled blocks if asked (``train.compile``). ``lora=False`` (full fine-tuning) only compiles."""
    from tunesmith.adapters import lora as lora_method
    from tunesmith.config.schema import LoraMethod
    from tunesmith.train import kernels
    from tunesmith.train.lifecycle import frozen_to_bf16

    if lora:
        model = lora_method.apply(model, LoraMethod(r=16, alpha=32))
        if precision == "bf16":
            frozen_to_bf16(model)
    if compile_blocks:  # after the adapter, as the recipe does
        kernels.compile_blocks(model)
    return model


def engine_settings(precision: str, steps: int, lr: float, **batching: Any) -> Any:
    """tunesmith's side of every training benchmark: the same steps (one warm-up more), lr and precision as
    the baseline, a constant schedule, a log line per step and no checkpoints; ``batching`` sets the batch."""
    from tunesmith.config.schema import TrainConfig

    return TrainConfig(
        lr=lr,
        max_steps=steps + 1,
        epochs=10,
        scheduler="constant",
        warmup_ratio=0,
        log_every=1,
        save_every=10_000,
        precision=precision,
        clip_grad=1.0,
        **batching,
    )


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


def trl_settings(precision: str, steps: int, lr: float, batch: int, checkpointing: bool = False) -> dict[str, Any]:
    """The ``TrainingArguments`` every TRL baseline shares: the same steps (one warm-up more), lr, batch and
    precision as our side, a constant schedule, no saving or reporting, non-padding tokens counted."""
    import torch

    return {
        "output_dir": tempfile.mkdtemp(),
        "per_device_train_batch_size": batch,
        "max_steps": steps + 1,
        "learning_rate": lr,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "max_length": None,
        "bf16": precision == "bf16",
        "use_cpu": not torch.cuda.is_available(),
        "seed": 0,
        "lr_scheduler_type": "constant",
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
        "warmup_steps": 0,
        "gradient_checkpointing": checkpointing,
    }


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


def alternate(tools: Sequence[str], reps: int, command: Callable[[str], list[str]]) -> dict[str, list[dict]]:
    """Run each tool's worker ``reps`` times, each in its own process, alternating which goes first; every
    worker prints one JSON object as its last line. A failing worker stops the benchmark with its stderr."""
    results: dict[str, list[dict]] = {t: [] for t in tools}
    for rep in range(reps):
        for tool in tools if rep % 2 == 0 else list(tools)[::-1]:
            out = subprocess.run(command(tool), capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                sys.exit(f"{tool} failed:\n{out.stderr[-3000:]}")
            results[tool].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"rep {rep} {tool}: {results[tool][-1]}", file=sys.stderr)
    return results


def spread(values: Sequence[float], digits: int = 0) -> str:
    """``median [min, max]``."""
    return f"{statistics.median(values):,.{digits}f} [{min(values):,.{digits}f}, {max(values):,.{digits}f}]"


def print_table(title: str, results: dict[str, list[dict]], loss_name: str = "mean loss") -> None:
    """The training benchmarks' table; the first tool is the baseline the ratios divide by."""
    tools = list(results)
    base = statistics.median(r["tokens_per_s"] for r in results[tools[0]])
    base_rss = statistics.median(r["train_peak_rss_gb"] for r in results[tools[0]])
    print(f"\n{title}\n")
    print(
        f"| tool | non-pad tokens/s | vs {tools[0]} | s / step | peak RSS GB | vs {tools[0]} | trained tokens "
        f"| {loss_name} | peak CUDA GB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tool in tools:
        rows = results[tool]
        tps, rss = [r["tokens_per_s"] for r in rows], [r["train_peak_rss_gb"] for r in rows]
        cuda = [r["train_peak_cuda_gb"] for r in rows if r.get("train_peak_cuda_gb") is not None]
        print(
            f"| {tool} | {spread(tps)} | {statistics.median(tps) / base:.2f}x "
            f"| {statistics.median(r['seconds_per_step'] for r in rows):.2f} | {spread(rss, 2)} "
            f"| {statistics.median(rss) / base_rss:.2f}x "
            f"| {statistics.median(r['trained_tokens'] for r in rows):,.0f} "
            f"| {statistics.median(r['mean_loss'] for r in rows):.4f} "
            f"| {f'{statistics.median(cuda):.2f}' if cuda else '-'} |"
        )


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_json(path: Path, benchmark: str, title: str, settings: dict[str, Any], results: Any) -> None:
    """Every repetition's figures with the settings and the machine, for ``bench/suite.py`` and the docs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": benchmark,
        "title": title,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()},
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


# (precision, timed steps, model, compile tunesmith's blocks) -> one repetition's figures; TRL's ignores compile
Worker = Callable[[str, int, str, bool], dict]


def main_vs_trl(
    doc: str, workers: dict[str, Worker], benchmark: str, describe: str, loss_name: str, model: str
) -> None:
    """The command line of a tool-vs-TRL training benchmark: ``--worker`` runs one repetition of one tool
    and prints its JSON; otherwise every tool runs ``--reps`` times, alternating, then the table (and
    ``--json``). ``describe`` is the title's first part (the workload); the first tool is the baseline."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--model", default=model, help="embedded name or local model dir (both tools load it)")
    parser.add_argument(
        "--compile", action="store_true", help="tunesmith with train.compile (TRL as its docs recommend)"
    )
    parser.add_argument("--json", type=Path, help="write every repetition's figures here")
    parser.add_argument("--worker", choices=list(workers), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(workers[args.worker](args.precision, args.steps, args.model, args.compile)))
        return
    script = str(Path(sys.argv[0]).resolve())
    common = ["--steps", str(args.steps), "--precision", args.precision, "--model", args.model]
    common += ["--compile"] * args.compile
    results = alternate(list(workers), args.reps, lambda tool: [sys.executable, script, "--worker", tool, *common])
    title = (
        f"{describe}, {args.precision}{', tunesmith with train.compile' if args.compile else ''}, "
        f"{args.steps} timed optimizer steps after 1 warm-up, {args.reps} "
        f"repetitions (median [min, max]), model {args.model}"
    )
    print_table(title, results, loss_name=loss_name)
    if args.json:
        write_json(args.json, benchmark, title, vars(args), results)
