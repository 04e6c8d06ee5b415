"""Benchmark: what each of the engine's speed-ups buys, one lever at a time, on the LoRA SFT workload.

The workload of ``bench/sft_vs_trl.py`` (64 English -> Hausa NTREX-128 instructions, SmolLM2-135M-Instruct,
LoRA r=16 / alpha 32 on all linear layers, lr 2e-4 constant, loss on the answer), run by tunesmith's engine in
these variants, each in its own process, alternating, after one untimed warm-up step:

- ``all levers``: padding-free packing (a row of 4 x the mean example length), the LM head and loss on
  labelled positions only (chunked), bf16 autocast with the frozen base stored in bf16, length-grouped plan;
- ``padded``: no packing: batches of 4 examples grouped by length and right-padded (packing's gain);
- ``padded, full-logits head``: the same padded batches through ``model(..., labels=...)``: logits for every
  position and transformers' loss (the labelled-only head's gain);
- ``padded, not length-grouped``: padded batches of 4 cut from the shuffled order (length grouping's gain);
- ``fp32``: all levers but fp32 (bf16's gain);
- ``+ gradient checkpointing``: all levers plus checkpointing (a memory option: its cost in speed, its saving);
- ``+ torch.compile``: all levers plus ``train.compile`` (each block compiled after the adapter; the compile
  time falls in the untimed warm-up step, shown in its own column);
- ``1 thread``: all levers on one CPU thread instead of every core (the thread setting's gain); CPU only.

Tokens/s counts non-padding tokens, so padding never looks like speed. ``--json`` writes every repetition.

    python bench/speedups.py --steps 6 --reps 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from engine_run import alternate, engine_settings, prepare_like_recipe, rss_gb, spread, train_and_measure, write_json
from sft_vs_trl import examples

MODEL = "smollm2-135m-instruct"
BATCH = 4
VARIANTS: dict[str, dict[str, Any]] = {
    "all levers": {},
    "padded": {"packing": False},
    "padded, full-logits head": {"packing": False, "head": "full"},
    "padded, not length-grouped": {"packing": False, "group": False},
    "fp32": {"precision": "fp32"},
    "+ gradient checkpointing": {"checkpointing": True},
    "+ torch.compile": {"compile": True},
    "1 thread": {"threads": 1},
}
DEFAULTS: dict[str, Any] = {
    "packing": True,
    "head": "labelled",
    "precision": "bf16",
    "checkpointing": False,
    "group": True,
    "compile": False,
}


class FullLogitsLoss(torch.nn.Module):
    """The engine's loss contract over transformers' own loss: logits for every position, then the mean NLL."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict, normalizer: float | None = None) -> tuple[torch.Tensor, int]:
        from tunesmith.train.batching import labelled_tokens, to_device

        batch = to_device(batch, self.model)
        n = labelled_tokens(batch)
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
        return (out.loss * n / normalizer if normalizer else out.loss), n


def run_variant(name: str, steps: int) -> dict:
    from tunesmith.data.format import tokenize_example
    from tunesmith.models.load import load_model
    from tunesmith.train import env
    from tunesmith.train.packing import use_segment_attention

    v = {**DEFAULTS, **VARIANTS[name]}
    if "threads" in v:
        env.set_threads(v["threads"])
    torch.manual_seed(0)
    model, tok = load_model(MODEL)
    model.config.use_cache = False
    exs = [tokenize_example(e, tok, "completion") for e in examples()]
    mean_len = statistics.fmean(len(e["input_ids"]) for e in exs)
    if v["packing"]:
        use_segment_attention(model)
    if v["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = prepare_like_recipe(model, v["precision"], compile_blocks=v["compile"])
    config = engine_settings(
        v["precision"],
        steps,
        2e-4,
        packing=v["packing"],
        batch_tokens=int(BATCH * mean_len) if v["packing"] else 1_000_000,
        max_batch_size=64 if v["packing"] else BATCH,
        group_by_length=v["group"],
    )
    loss = FullLogitsLoss(model) if v["head"] == "full" else None
    measured = train_and_measure(model, exs, config, tok.pad_token_id, v["precision"], loss)
    return {**measured, "train_peak_rss_gb": rss_gb(), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="run these variants (default: all)")
    parser.add_argument("--json", type=Path, help="write every repetition's figures here")
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_variant(args.worker, args.steps)))
        return
    names = args.only or [n for n in VARIANTS if not (n == "1 thread" and torch.cuda.is_available())]
    if "all levers" not in names:
        names.insert(0, "all levers")
    results = alternate(
        names, args.reps, lambda name: [sys.executable, __file__, "--worker", name, "--steps", str(args.steps)]
    )
    title = (
        f"tunesmith's engine, LoRA SFT (NTREX en->ha, SmolLM2-135M), one lever changed at a time, {args.steps} timed "
        f"steps after 1 warm-up, {args.reps} repetitions (median [min, max])"
    )
    print(f"\n{title}\n")
    print("| variant | non-pad tokens/s | all levers are | s / step | warm-up step s | peak RSS GB | mean loss |")
    print("|---|---|---|---|---|---|---|")
    base = statistics.median(r["tokens_per_s"] for r in results["all levers"])
    for name in names:
        rows = results[name]
        tps = statistics.median(r["tokens_per_s"] for r in rows)
        print(
            f"| {name} | {spread([r['tokens_per_s'] for r in rows])} | {base / tps:.2f}x faster "
            f"| {statistics.median(r['seconds_per_step'] for r in rows):.2f} "
            f"| {statistics.median(r.get('warmup_s', float('nan')) for r in rows):.1f} "
            f"| {spread([r['train_peak_rss_gb'] for r in rows], 2)} "
            f"| {statistics.median(r['mean_loss'] for r in rows):.4f} |"
        )
    if args.json:
        write_json(args.json, "speedups", title, vars(args), results)


if __name__ == "__main__":
    main()
