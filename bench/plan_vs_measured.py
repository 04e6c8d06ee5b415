"""Benchmark: the planner's peak-memory estimate against the measured peak RSS of real training steps.

For each method (full, lora, prefix, freeze by default) a fresh process loads SmolLM2-135M-Instruct and the
data, records its resident memory apart from the weights, asks the planner
(``tunesmith.adapters.plan.estimate``) for the training peak, then
trains a few optimizer steps with the engine on the quickstart's sentiment instructions (SFT, loss on the
answer, bf16 where the CPU has it, ``batch_tokens`` as given) and reports its peak RSS. The target is an
estimate within 25% of the measurement.

    python bench/plan_vs_measured.py
    python bench/plan_vs_measured.py --methods lora qlora ia3 --steps 3 --batch-tokens 2048
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RELEASE = False  # --release: train.release_memory (glibc returns freed blocks at once)
sys.path.insert(0, str(ROOT / "bench"))
METHODS = {
    "full": {"name": "full"},
    "lora": {"name": "lora", "r": 16, "alpha": 32},
    "prefix": {"name": "prefix", "virtual_tokens": 20},
    "freeze": {"name": "freeze", "last_n_layers": 2},
    "qlora": {"name": "qlora", "r": 16, "alpha": 32},
    "ia3": {"name": "ia3"},
    "prompt": {"name": "prompt", "virtual_tokens": 20},
    "dora": {"name": "dora", "r": 16, "alpha": 32},
}


def worker(name: str, steps: int, batch_tokens: int, model_name: str) -> dict:
    import head_on_labelled
    from engine_run import train_and_measure
    from pydantic import TypeAdapter

    from tunesmith.adapters import get_method
    from tunesmith.adapters.plan import baseline_rss, estimate
    from tunesmith.config.schema import MethodConfig, RunConfig, TrainConfig
    from tunesmith.models.load import load_model
    from tunesmith.train import env
    from tunesmith.train.lifecycle import compact_frozen_base

    if RELEASE:
        env.release_freed_memory()  # what train.release_memory does
    precision = env.resolve_precision("auto")
    method_config = TypeAdapter(MethodConfig).validate_python(METHODS[name])
    config = TrainConfig(
        max_steps=steps,
        batch_tokens=batch_tokens,
        precision=precision,  # type: ignore[arg-type]
        packing=method_config.name not in ("prompt", "prefix", "ptuning"),
        save_every=100_000,
        log_every=1,
        lr=1e-4,
        release_memory=RELEASE,
    )
    model, tok = load_model(model_name)
    model.config.use_cache = False
    exs = head_on_labelled._examples(256, "completion", tok)
    labelled = sum(sum(1 for x in e["labels"] if x != -100) for e in exs) / sum(len(e["input_ids"]) for e in exs)
    runtime = baseline_rss()  # model and tokenizer loaded, data tokenised, weights not yet touched
    length = sum(len(e["input_ids"]) for e in exs) // len(exs)
    est = estimate(model, method_config, config, precision, runtime, labelled_fraction=labelled, example_length=length)
    if config.packing:
        from tunesmith.train.packing import use_segment_attention

        use_segment_attention(model)
    method = get_method(method_config.name)
    model = method.apply(model, method_config)
    run = RunConfig(name="bench", data={"train": "x"}, method=METHODS[name], train=config)  # type: ignore[arg-type]
    compact_frozen_base(model, method, run, precision)
    train_and_measure(model, exs, config, tok.pad_token_id, precision)
    return {
        "estimate": est.as_dict(),
        "measured_peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "precision": precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=["full", "lora", "prefix", "freeze"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-tokens", type=int, default=1024)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--release", action="store_true", help="train.release_memory in every run")
    parser.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global RELEASE
    RELEASE = args.release
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.batch_tokens, args.model)))
        return
    rows = []
    for name in args.methods:
        cmd = [sys.executable, __file__, "--worker", name, "--steps", str(args.steps)]
        cmd += ["--batch-tokens", str(args.batch_tokens), "--model", args.model, *(["--release"] if RELEASE else [])]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name}: {json.dumps(result)}", file=sys.stderr)
        rows.append((name, result))
    print(
        f"\nPlanner estimate vs measured peak RSS, {args.model}, {rows[0][1]['precision']}, "
        f"{args.steps} steps of {args.batch_tokens} tokens, release_memory {RELEASE}\n"
    )
    print("| method | trainable | estimated peak GB | measured peak GB | estimate / measured | components (GB) |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        mem = r["estimate"]["memory_gb"]
        parts = ", ".join(
            f"{k} {sum(v.values()) if isinstance(v, dict) else v:.2f}" for k, v in mem.items() if k != "peak"
        )
        ratio = mem["peak"] / r["measured_peak_gb"]
        print(
            f"| {name} | {r['estimate']['trainable_pct']:.2f}% | {mem['peak']:.2f} | {r['measured_peak_gb']:.2f} "
            f"| {ratio:.2f} | {parts} |"
        )


if __name__ == "__main__":
    main()
