"""The benchmark suite (``make bench``): tunesmith against its baselines, measured in the same run.

Runs, in order, each benchmark in its own process tree (each tool's repetitions in their own processes,
alternating, after a warm-up step), then prints one table and writes ``bench/results/suite.json`` (every
repetition, the settings, the machine) and ``bench/results/suite.md`` (the tables, for docs/benchmarks.md):

- the machine's measured matmul peak in fp32 and bf16 (the denominators of MFU);
- LoRA SFT and full SFT vs TRL's ``SFTTrainer`` (+ PEFT) (``bench/sft_vs_trl.py``);
- LoRA DPO vs TRL's ``DPOTrainer`` (``bench/dpo_vs_trl.py``);
- a LoRA reward model vs TRL's ``RewardTrainer`` (``bench/reward_vs_trl.py``);
- serving with continuous batching vs sequential ``model.generate`` (``bench/serve_throughput.py``);
- the engine's speed-ups one lever at a time (``bench/speedups.py``).

MFU = achieved model FLOP/s / measured peak of the precision the run used. Model FLOPs per trained token:
6N for full fine-tuning (forward 2N, backward 4N), 4N for LoRA (no weight gradients for the frozen base), 6N
for LoRA DPO (the policy's 4N plus the reference's forward 2N), 2N per generated token; N counts the weights
that multiply (the embedding lookup excluded, the tied LM head included; the reward model's head is one
column). Attention's score FLOPs are left out, for every tool alike, so MFU ratios equal tokens/s ratios.

    python bench/suite.py              # everything, ~30 minutes on a 2-core CPU
    python bench/suite.py --only lora_sft dpo --reps 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Benchmark:
    """One row of the suite: a script, its arguments, how its FLOPs count, and the issue's target."""

    name: str
    label: str
    script: str
    args: list[str]
    flops_per_token: Callable[[dict[str, int]], float]
    speed_target: float | None = None  # tunesmith's tokens/s over the baseline's, at least
    memory_target: float | None = None  # tunesmith's peak RSS over the baseline's, at most
    baseline: str = "trl"


BENCHMARKS = [
    # tunesmith with train.compile in the SFT rows (the engine's fastest setting; compiling falls in the untimed
    # warm-up step and is reported as warmup_s); TRL as its docs recommend on the CPU (no torch_compile).
    Benchmark(
        "lora_sft", "LoRA SFT", "sft_vs_trl.py", ["--steps", "8", "--compile"], lambda n: 4 * n["causal"], 2.5, 0.5
    ),
    Benchmark(
        "full_sft",
        "Full SFT",
        "sft_vs_trl.py",
        ["--method", "full", "--steps", "6", "--compile"],
        lambda n: 6 * n["causal"],
        1.5,
    ),
    Benchmark("dpo", "LoRA DPO", "dpo_vs_trl.py", ["--steps", "8"], lambda n: 6 * n["causal"], 1.5, 0.7),
    Benchmark("reward", "LoRA reward model", "reward_vs_trl.py", ["--steps", "8"], lambda n: 4 * n["classifier"]),
]


def matmul_peak(dtype_name: str, seconds: float = 2.0) -> float:
    """Measured TFLOP/s of square matmuls in ``dtype_name`` on this machine's default device and threads."""
    import torch

    dtype = getattr(torch, dtype_name)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = 8192 if device == "cuda" else 4096  # PERFORMANCE.md: 4096 x 4096 on the CPU
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    sync()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def multiplying_weights(model: str) -> dict[str, int]:
    """N for MFU: weights that multiply, for the causal LM (tied head counted once) and the reward classifier."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tunesmith.models.load import resolve

    source = resolve(model)  # the config alone: a GGUF's metadata, never its dequantised weights
    config = AutoConfig.from_pretrained(source.directory, gguf_file=source.gguf_file)
    with torch.device("meta"):
        lm = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in lm.parameters())  # tied embeddings are one tensor
    embedding = lm.get_input_embeddings().weight.numel()
    tied = lm.get_output_embeddings().weight is lm.get_input_embeddings().weight
    causal = total if tied else total - embedding
    head = embedding if tied else lm.get_output_embeddings().weight.numel()
    return {"causal": causal, "classifier": causal - head}


def run(script: str, args: list[str], out: Path) -> dict[str, Any] | None:
    """One benchmark script with ``--json out``; its table goes to our stdout as it runs. A failing script
    prints the end of its error output and gives None: the suite goes on with the others."""
    started = time.perf_counter()
    cmd = [sys.executable, str(BENCH / script), *args, "--json", str(out)]
    print(f"\n$ {' '.join(['python', f'bench/{script}', *args])}", flush=True)
    done = subprocess.run(cmd, cwd=ROOT, stdout=sys.stdout, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        print(f"bench/{script} FAILED (exit {done.returncode}):\n{done.stderr[-3000:]}", flush=True)
        return None
    result = json.loads(out.read_text(encoding="utf-8"))
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def training_row(bench: Benchmark, result: dict, peaks: dict[str, float], weights: dict[str, int]) -> dict:
    """The suite table's figures for one training benchmark."""
    precision = result["settings"]["precision"]
    peak = peaks[precision] * 1e12
    ours, theirs = result["results"]["tunesmith"], result["results"][bench.baseline]
    flops = bench.flops_per_token(weights)
    loss_key = "held_out_loss" if "held_out_loss" in ours[0] else "mean_loss"
    row = {
        "benchmark": bench.name,
        "label": bench.label,
        "precision": precision,
        "tokens_per_s": median(ours, "tokens_per_s"),
        "baseline_tokens_per_s": median(theirs, "tokens_per_s"),
        "tokens_per_s_range": [min(r["tokens_per_s"] for r in ours), max(r["tokens_per_s"] for r in ours)],
        "seconds_per_step": median(ours, "seconds_per_step"),
        "baseline_seconds_per_step": median(theirs, "seconds_per_step"),
        "peak_rss_gb": median(ours, "train_peak_rss_gb"),
        "baseline_peak_rss_gb": median(theirs, "train_peak_rss_gb"),
        "loss_kind": "held-out loss" if loss_key == "held_out_loss" else "mean training loss",
        "loss": median(ours, loss_key),
        "baseline_loss": median(theirs, loss_key),
        "trained_tokens": median(ours, "trained_tokens"),
        "baseline_trained_tokens": median(theirs, "trained_tokens"),
        "mfu": median(ours, "tokens_per_s") * flops / peak,
        "baseline_mfu": median(theirs, "tokens_per_s") * flops / peak,
        "speed_target": bench.speed_target,
        "memory_target": bench.memory_target,
    }
    row["speedup"] = row["tokens_per_s"] / row["baseline_tokens_per_s"]
    row["memory_ratio"] = row["peak_rss_gb"] / row["baseline_peak_rss_gb"]
    row["loss_gap"] = row["loss"] / row["baseline_loss"] - 1
    return row


def verdict(value: float, target: float | None, at_least: bool) -> str:
    if target is None:
        return ""
    met = value >= target if at_least else value <= target
    return f" ({'met' if met else 'short of'} {'>=' if at_least else '<='} {target}x)"


def table(rows: list[dict]) -> str:
    lines = [
        "| workload | tunesmith tokens/s | TRL tokens/s | speed-up | s / step (ours, TRL) | peak RSS GB (ours, TRL) "
        "| memory | loss (ours, TRL) | MFU (ours, TRL) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["tokens_per_s_range"]
        lines.append(
            f"| {r['label']} ({r['precision']}) | {r['tokens_per_s']:,.0f} [{lo:,.0f}, {hi:,.0f}] "
            f"| {r['baseline_tokens_per_s']:,.0f} "
            f"| **{r['speedup']:.2f}x**{verdict(r['speedup'], r['speed_target'], True)} "
            f"| {r['seconds_per_step']:.2f}, {r['baseline_seconds_per_step']:.2f} "
            f"| {r['peak_rss_gb']:.2f}, {r['baseline_peak_rss_gb']:.2f} "
            f"| {r['memory_ratio']:.2f}x{verdict(r['memory_ratio'], r['memory_target'], False)} "
            f"| {r['loss']:.4f}, {r['baseline_loss']:.4f} ({r['loss_kind']}, {r['loss_gap']:+.1%}) "
            f"| {r['mfu']:.2%}, {r['baseline_mfu']:.2%} |"
        )
    return "\n".join(lines)


def serving_table(result: dict, peaks: dict[str, float], weights: dict[str, int]) -> str:
    """The serving benchmark's rows: throughput and latency per setting against sequential generate."""
    rows = result["results"]
    peak = peaks["bf16" if result["settings"].get("dtype") == "bfloat16" else "fp32"] * 1e12
    base = rows["sequential generate"]["tokens_per_s"]
    lines = [
        "| serving (SmolLM2-135M, greedy) | requests | generated tokens/s | vs sequential generate | p50 s | p95 s "
        "| MFU |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        tps = r["tokens_per_s"]
        lines.append(
            f"| {name} | {r['requests']} | {tps:,.1f} | {tps / base:.2f}x | {r['p50_s']:.2f} | {r['p95_s']:.2f} "
            f"| {tps * 2 * weights['causal'] / peak:.2%} |"
        )
    return "\n".join(lines)


def warmup(reps: list[dict]) -> str:
    """The untimed first step (where train.compile compiles), or '-' in results from before it was recorded."""
    return f"{median(reps, 'warmup_s'):.1f}" if all("warmup_s" in r for r in reps) else "-"


def speedups_table(result: dict) -> str:
    """One row per variant of ``bench/speedups.py``: how much faster all levers together are than it."""
    variants = result["results"]
    base = median(variants["all levers"], "tokens_per_s")
    lines = [
        "| engine variant (LoRA SFT) | non-pad tokens/s | all levers are | warm-up step s | peak RSS GB | mean loss |",
        "|---|---|---|---|---|---|",
    ]
    for name, reps in variants.items():
        tps = median(reps, "tokens_per_s")
        lines.append(
            f"| {name} | {tps:,.0f} | {base / tps:.2f}x faster | {warmup(reps)} "
            f"| {median(reps, 'train_peak_rss_gb'):.2f} "
            f"| {median(reps, 'mean_loss'):.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    choices = [b.name for b in BENCHMARKS] + ["serve", "speedups"]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=choices, help="run these benchmarks (default: all)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each training benchmark")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where suite.json and suite.md go")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 repetition of 2 steps, short serving")
    args = parser.parse_args()
    quick = ["--steps", "2"] if args.quick else []
    if args.quick:
        args.reps = 1
    names = args.only or choices
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    from engine_run import machine

    peaks = {"fp32": matmul_peak("float32"), "bf16": matmul_peak("bfloat16")}
    weights = multiplying_weights(MODEL)
    about = machine()
    print(
        f"machine: {about['cpu']}, {about['cores']} cores, torch {about['torch']}"
        f"{', ' + about['gpu'] if 'gpu' in about else ''}; measured matmul peak: fp32 {peaks['fp32']:.2f}, "
        f"bf16 {peaks['bf16']:.2f} TFLOP/s; N = {weights['causal']:,} multiplying weights (SmolLM2-135M)",
        flush=True,
    )
    results: dict[str, Any] = {}
    rows, failed = [], []
    for bench in BENCHMARKS:
        if bench.name in names:
            options = [*bench.args, "--reps", str(args.reps), "--precision", args.precision, *quick]
            result = run(bench.script, options, args.out / f"{bench.name}.json")
            results[bench.name] = result
            if result is None:
                failed.append(bench.script)
            else:
                rows.append(training_row(bench, result, peaks, weights))
    sections = []
    if rows:
        sections.append(table(rows))
    if "serve" in names:
        dtype = "bfloat16" if args.precision == "bf16" else "float32"
        short = ["--max-tokens", "8", "--baseline-requests", "2"] if args.quick else []
        options = ["--dtype", dtype, "--rounds", "1", *short]
        results["serve"] = run("serve_throughput.py", options, args.out / "serve.json")
        if results["serve"] is None:
            failed.append("serve_throughput.py")
        else:
            sections.append(serving_table(results["serve"], peaks, weights))
    if "speedups" in names:
        options = ["--reps", "1", "--steps", "2"] if args.quick else ["--reps", "2", "--steps", "4"]
        results["speedups"] = run("speedups.py", options, args.out / "speedups.json")
        if results["speedups"] is None:
            failed.append("speedups.py")
        else:
            sections.append(speedups_table(results["speedups"]))
    header = (
        f"Measured {time.strftime('%Y-%m-%d')} on {about['cpu']} ({about['cores']} cores"
        f"{', ' + about['gpu'] if 'gpu' in about else ''}), torch {about['torch']}; matmul peak fp32 "
        f"{peaks['fp32']:.2f} / bf16 {peaks['bf16']:.2f} TFLOP/s; `python bench/suite.py` took "
        f"{(time.perf_counter() - started) / 60:.1f} minutes. Median [min, max] of the repetitions."
    )
    if failed:
        sections.append(f"FAILED (see the output above): {', '.join(failed)}")
    summary = "\n\n".join([header, *sections])
    print(f"\n{summary}")
    (args.out / "suite.md").write_text(summary + "\n", encoding="utf-8")
    payload = {"machine": about, "matmul_peak_tflops": peaks, "weights": weights, "rows": rows, "runs": results}
    (args.out / "suite.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out / 'suite.json'} and {args.out / 'suite.md'}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
