"""Benchmark: speed and peak memory of each tuning method and optimizer on the same model and data.

Variants (each in its own process, so its peak memory is its own; one warm-up step is not timed): every
tuning method that trains (``lora``, ``qlora-nf4``/``qlora-int8`` on a bitsandbytes-quantized base,
``dora``, ``ia3``, bottleneck ``adapters``, ``prompt``, ``ptuning``, ``prefix``, ``freeze``) and ``full``
with AdamW, 8-bit AdamW and paged 8-bit AdamW. Data: the NTREX English -> Hausa instructions of
bench/sft_vs_trl.py, loss on the completion, packed except for the prompt-learning methods. Prints trained
tokens/s, the mean loss of the timed steps, and peak memory: CUDA max-allocated on a GPU, process peak RSS
on the CPU.

    python bench/method_memory.py                                  # embedded SmolLM2, every variant
    python bench/method_memory.py --model DIR --ntrex DIR --steps 10 --variants lora qlora-nf4
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sft_vs_trl  # the shared NTREX examples
from engine_run import train_and_measure

VARIANTS = {
    "lora": ({"name": "lora", "r": 16, "alpha": 32}, "adamw"),
    "lora-padded": ({"name": "lora", "r": 16, "alpha": 32}, "adamw"),  # token-budget batches, no packing
    "qlora-nf4": ({"name": "qlora", "r": 16, "alpha": 32, "bits": 4}, "adamw"),
    "qlora-int8": ({"name": "qlora", "r": 16, "alpha": 32, "bits": 8}, "adamw"),
    "dora": ({"name": "dora", "r": 16, "alpha": 32}, "adamw"),
    "ia3": ({"name": "ia3"}, "adamw"),
    "adapters": ({"name": "adapters", "size": 64}, "adamw"),
    "prompt": ({"name": "prompt", "virtual_tokens": 20, "init_text": "Translate into Hausa:"}, "adamw"),
    "ptuning": ({"name": "ptuning", "virtual_tokens": 20}, "adamw"),
    "prefix": ({"name": "prefix", "virtual_tokens": 20}, "adamw"),
    "freeze": ({"name": "freeze", "last_n_layers": 2}, "adamw"),
    "full": ({"name": "full"}, "adamw"),
    "full-adamw8bit": ({"name": "full"}, "adamw8bit"),
    "full-paged-adamw8bit": ({"name": "full"}, "paged_adamw8bit"),
}


def worker(variant: str, model_name: str, steps: int, batch_tokens: int) -> dict:
    import torch
    from pydantic import TypeAdapter

    from tunesmith.adapters import get_method
    from tunesmith.config.schema import MethodConfig, RunConfig, TrainConfig
    from tunesmith.data.format import tokenize_example
    from tunesmith.models.load import load_model
    from tunesmith.train import env
    from tunesmith.train.lifecycle import compact_frozen_base
    from tunesmith.train.packing import use_segment_attention

    method_cfg, optimizer = VARIANTS[variant]
    precision = env.resolve_precision("auto")
    torch.manual_seed(0)
    model, tok = load_model(model_name)
    model.config.use_cache = False
    method_config = TypeAdapter(MethodConfig).validate_python(method_cfg)
    packing = method_config.name not in ("prompt", "prefix", "ptuning") and not variant.endswith("padded")
    if packing:
        use_segment_attention(model)
    method = get_method(method_config.name)
    model = method.apply(model, method_config)
    lr = 2e-5 if variant.startswith(("full", "freeze")) else 2e-4
    config = TrainConfig(
        lr=lr,
        max_steps=steps + 1,
        epochs=100,
        packing=packing,
        batch_tokens=batch_tokens,
        scheduler="constant",
        warmup_ratio=0,
        log_every=1,
        save_every=100_000,
        precision=precision,  # type: ignore[arg-type]
        optimizer=optimizer,  # type: ignore[arg-type]
    )
    run_config = RunConfig(name="bench", data={"train": "x"}, method=method_cfg, train=config)  # type: ignore[arg-type]
    compact_frozen_base(model, method, run_config, precision)
    exs = [tokenize_example(e, tok, "completion") for e in sft_vs_trl.examples()]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    measured = train_and_measure(model, exs, config, tok.pad_token_id, precision)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "tokens_per_s": measured["tokens_per_s"],
        "mean_loss": measured["mean_loss"],
        "trainable_params": trainable,
        "peak_cuda_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "device": env.device_name(),
        "precision": precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=sft_vs_trl.MODEL)
    parser.add_argument("--ntrex", type=Path, default=sft_vs_trl.NTREX)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-tokens", type=int, default=1024)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sft_vs_trl.NTREX = args.ntrex
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.steps, args.batch_tokens)))
        return
    results = {}
    for variant in args.variants:
        cmd = [sys.executable, __file__, "--worker", variant, "--model", args.model, "--ntrex", str(args.ntrex)]
        cmd += ["--steps", str(args.steps), "--batch-tokens", str(args.batch_tokens)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(f"{variant} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{variant}: {results[variant]}", file=sys.stderr)
    if not results:
        sys.exit("every variant failed")
    any_result = next(iter(results.values()))
    memory = "peak CUDA GB (max allocated)" if any_result["device"] == "cuda" else "peak RSS GB"
    print(
        f"\nModel {args.model}, {any_result['device']}, {any_result['precision']}, {args.steps} timed steps of "
        f"{args.batch_tokens} packed tokens after 1 warm-up\n"
    )
    print(f"| variant | trainable params | tokens/s | {memory} | mean loss (timed steps) |")
    print("|---|---|---|---|---|")
    for variant, r in results.items():
        mem = r["peak_cuda_gb"] if r["device"] == "cuda" else r["peak_rss_gb"]
        print(
            f"| {variant} | {r['trainable_params']:,} | {r['tokens_per_s']:.0f} | {mem:.2f} | {r['mean_loss']:.4f} |"
        )


if __name__ == "__main__":
    main()
