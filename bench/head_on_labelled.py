"""Benchmark: LM head and loss only on labelled positions (tunesmith) vs full logits + HF loss (baseline).

Same model (SmolLM2-135M-Instruct, LoRA r=16 on every linear layer of all 30 blocks), same batches, same
optimizer, same precision, measured in the same run. Each (configuration, repetition) runs in its own
process so peak RSS is that configuration's own; configurations alternate; one warm-up step is not
timed; the median of 3 repetitions is reported with min and max.

Implementations: ``hf-full-logits`` (padded batch, ``model(..., labels=...)``: logits for every position
and HF's loss), ``tunesmith`` (padded batch, head and loss on labelled positions only) and
``tunesmith-packed`` (the same examples in one padding-free row with per-example attention). Tokens/s
counts non-padding tokens only, so padding never looks like speed.

Two data shapes: the quickstart's sentiment instructions (3 answer tokens after an ~85-token prompt, the
case the optimisation targets) and the same rows with the loss on every token (where both compute the
head everywhere and ours must simply not be slower).

    python bench/head_on_labelled.py            # prints a markdown table
    python bench/head_on_labelled.py --steps 4 --reps 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "quickstart" / "data" / "train.tsv"


def _examples(n: int, loss_on: str, tokenizer) -> list[dict]:  # type: ignore[no-untyped-def]
    import csv

    from tunesmith.data.format import load_template, to_example, tokenize_example

    labels = ["negative", "neutral", "positive"]
    template = load_template("sentiment")
    with DATA.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))[:n]
    out = []
    for r in rows:
        ex = to_example({"text": r["tweet"], "label": r["label"]}, "classification", template, labels)
        out.append(tokenize_example(ex, tokenizer, loss_on))
    return out


def worker(impl: str, loss_on: str, precision: str, steps: int, batch: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    from tunesmith.models.load import load_model
    from tunesmith.train.batching import collate
    from tunesmith.train.sft.loss import CausalLMLoss

    torch.manual_seed(0)
    model, tok = load_model("smollm2-135m-instruct")
    model.config.use_cache = False
    if impl == "tunesmith-packed":
        from tunesmith.train.packing import use_segment_attention

        use_segment_attention(model)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    ours = CausalLMLoss(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    examples = _examples(batch * (steps + 1), loss_on, tok)
    from tunesmith.train.packing import collate_packed

    make = collate_packed if impl == "tunesmith-packed" else (lambda exs: collate(exs, tok.pad_token_id))
    batches = [make(examples[i * batch : (i + 1) * batch]) for i in range(steps + 1)]
    tokens, seconds, losses = 0, 0.0, []
    for i, b in enumerate(batches):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            if impl.startswith("tunesmith"):
                loss, _ = ours(b)
            else:
                loss = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i > 0:  # step 0 is the warm-up
            seconds += time.perf_counter() - t0
            tokens += int(b["attention_mask"].sum())
            losses.append(float(loss.detach()))
    return {
        "tokens_per_s": tokens / seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "mean_loss": statistics.fmean(losses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "LOSS_ON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.precision, args.steps, args.batch)))
        return
    impls = ("hf-full-logits", "tunesmith", "tunesmith-packed")
    configs = [(impl, loss_on) for loss_on in ("completion", "all") for impl in impls]
    results: dict[tuple[str, str], list[dict]] = {c: [] for c in configs}
    for rep in range(args.reps):
        for impl, loss_on in configs if rep % 2 == 0 else list(reversed(configs)):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                impl,
                loss_on,
                "--steps",
                str(args.steps),
                "--batch",
                str(args.batch),
                "--precision",
                args.precision,
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            results[(impl, loss_on)].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"rep {rep} {impl:15s} loss_on={loss_on:10s} {results[(impl, loss_on)][-1]}", file=sys.stderr)
    print(
        f"\n{args.precision}, batch {args.batch} examples, {args.steps} timed steps after 1 warm-up, "
        f"{args.reps} repetitions (median, [min, max])\n"
    )
    print("| loss on | implementation | non-pad tokens/s | peak RSS GB | mean loss | speed-up |")
    print("|---|---|---|---|---|---|")
    for loss_on in ("completion", "all"):
        base = statistics.median(r["tokens_per_s"] for r in results[("hf-full-logits", loss_on)])
        for impl in impls:
            rs = results[(impl, loss_on)]
            tps = [r["tokens_per_s"] for r in rs]
            rss = [r["peak_rss_gb"] for r in rs]
            print(
                f"| {loss_on} | {impl} | {statistics.median(tps):.0f} [{min(tps):.0f}, {max(tps):.0f}] "
                f"| {statistics.median(rss):.2f} [{min(rss):.2f}, {max(rss):.2f}] "
                f"| {statistics.median(r['mean_loss'] for r in rs):.4f} | {statistics.median(tps) / base:.2f}x |"
            )


if __name__ == "__main__":
    main()
