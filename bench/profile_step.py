"""Where a training step's time goes: torch.profiler over tunesmith's LoRA SFT steps on the suite's workload.

The workload of ``bench/sft_vs_trl.py`` (NTREX English -> Hausa instructions, SmolLM2-135M-Instruct, LoRA r=16
on all linear layers, packed rows of 4 x the mean example length, head on labelled positions, bf16 autocast with
the frozen base in bf16). One warm-up step, then ``--steps`` profiled steps; prints the operators with the most
self CPU time (CUDA time too on a GPU) and each one's share, grouped the way the docs discuss them.

    python bench/profile_step.py --steps 3
"""

from __future__ import annotations

import argparse
import statistics

import torch
from sft_vs_trl import examples

GROUPS = {
    "matmul (aten::mm / addmm / bmm / linear)": ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear"),
    "attention (SDPA / flash, forward and backward)": ("flash", "scaled_dot_product", "efficient_attention"),
    "dtype copies (autocast casts, .to)": ("aten::copy_", "aten::_to_copy", "aten::to"),
    "elementwise (mul, add, silu, neg, cat...)": ("aten::mul", "aten::add", "aten::silu", "aten::neg", "aten::cat"),
    "norms and softmax / cross-entropy": ("rsqrt", "pow", "mean", "softmax", "nll", "log_softmax"),
    "optimizer (AdamW)": ("adam", "_foreach", "lerp", "addcmul", "addcdiv", "sqrt"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    from engine_run import engine_settings, prepare_like_recipe

    from tunesmith.data.format import tokenize_example
    from tunesmith.models.load import load_model
    from tunesmith.train.optim import build_optimizer
    from tunesmith.train.packing import collate_packed, pack_plan, use_segment_attention
    from tunesmith.train.sft.loss import CausalLMLoss

    torch.manual_seed(0)
    model, tok = load_model("smollm2-135m-instruct")
    model.config.use_cache = False
    exs = [tokenize_example(e, tok, "completion") for e in examples()]
    budget = int(4 * statistics.fmean(len(e["input_ids"]) for e in exs))
    use_segment_attention(model)
    model = prepare_like_recipe(model, "bf16")
    loss_fn = CausalLMLoss(model).train()
    optimizer = build_optimizer(loss_fn, engine_settings("bf16", args.steps, 2e-4, packing=True))
    plan = pack_plan([len(e["input_ids"]) for e in exs], budget, 64, seed=0)
    batches = [collate_packed([exs[i] for i in idx]) for idx in plan[: args.steps + 1]]

    def step(batch: dict) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = loss_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])  # warm-up
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as prof:
        for batch in batches[1:]:
            step(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    tokens = sum(int(b["input_ids"].numel()) for b in batches[1:])
    print(
        f"\n{args.steps} profiled LoRA SFT steps, {tokens} tokens, {total / 1e6:.2f} s of self CPU time "
        f"({torch.get_num_threads()} threads)\n"
    )
    print("| group | share of self CPU time |\n|---|---|")
    for group, needles in GROUPS.items():
        spent = sum(e.self_cpu_time_total for e in events if any(n in e.key for n in needles))
        print(f"| {group} | {spent / total:.0%} |")
    print(f"\n| operator (top {args.top}) | calls | self CPU ms | share |\n|---|---|---|---|")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]:
        print(f"| `{e.key}` | {e.count} | {e.self_cpu_time_total / 1e3:,.0f} | {e.self_cpu_time_total / total:.1%} |")


if __name__ == "__main__":
    main()
