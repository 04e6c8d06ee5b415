"""Benchmark: LoRA (or full) SFT with tunesmith's engine vs TRL's SFTTrainer, same model, data and settings.

Data: English -> Hausa translation instructions built from NTREX-128 (1 to 4 consecutive sentences per
example, 64 examples, seeded; read from ../shared/data, CC BY-SA 4.0). Model: SmolLM2-135M-Instruct
(the embedded GGUF, dequantised once). LoRA r=16, alpha=32, all linear layers, lr 2e-4, loss on the
completion tokens only in both tools, same number of optimizer steps. TRL runs its fastest documented
CPU configuration: ``padding_free=True`` (with ``bf16=True`` when we run bf16). tunesmith runs its
engine with padding-free packing and the head on labelled positions only.

Each (tool, repetition) runs in its own process (peak RSS is its own); tools alternate; the first
optimizer step is a warm-up and is not timed; tokens/s counts non-padding tokens. Prints a markdown
table with the median (min, max) of the repetitions, the ratio to TRL, the tokens each trained on, and
the completion loss of each trained model on the same 16 unseen examples computed by the same code
(the equal-quality check: within 2%).

    python bench/sft_vs_trl.py --precision bf16 --steps 8 --reps 3
    python bench/sft_vs_trl.py --model DIR --ntrex DIR   # any local model dir / NTREX copy (the GPU check)
    python bench/sft_vs_trl.py --method full             # full fine-tuning in both tools (lr 2e-5)
    python bench/sft_vs_trl.py --batch 32 --liger        # GPU: larger batches, Liger Kernel in both tools
    python bench/sft_vs_trl.py --compile                 # tunesmith with train.compile (compiled blocks)
    python bench/sft_vs_trl.py --compile --trl-compile   # ... and TRL with torch_compile=True

On CUDA both tools train on the GPU and the table adds each one's peak CUDA memory (max allocated).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
from pathlib import Path

from engine_run import alternate, cuda_peak_gb, engine_settings, rss_gb, write_json

ROOT = Path(__file__).resolve().parents[1]
NTREX = ROOT.parent / "shared" / "data" / "ntrex128"
MODEL = "smollm2-135m-instruct"
METHOD = "lora"  # --method full: full fine-tuning in both tools (lr 2e-5)
RELEASE = False  # --release: tunesmith with train.release_memory
BATCH = 4  # --batch: examples per optimizer step (tunesmith: the same mean token budget)
LIGER = False  # --liger: Liger Kernel in both tools (CUDA; TRL's use_liger_kernel, our train.kernels=liger)
COMPILE = False  # --compile: tunesmith compiles its blocks (train.compile); TRL keeps its documented setting
TRL_COMPILE = False  # --trl-compile: TRL with torch_compile=True (the Trainer compiles the whole model)
EXACT = False  # --exact-batch: tunesmith packs exactly BATCH examples per row, as TRL's padding-free batch holds


def examples(n: int = 64, seed: int = 0) -> list[dict[str, str]]:
    eng = (NTREX / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    hau = (NTREX / "newstest2019-ref.hau.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        start, k = rng.randrange(len(eng) - 4), rng.randint(1, 4)
        src = " ".join(s.strip() for s in eng[start : start + k])
        tgt = " ".join(s.strip() for s in hau[start : start + k])
        out.append({"prompt": f"Translate into Hausa:\n{src}", "completion": tgt})
    return out


def held_out(model, tok, precision: str) -> float:  # type: ignore[no-untyped-def]
    """The same 16 unseen examples, the same code, for both tools: completion loss after training."""
    from tunesmith.data.format import tokenize_example
    from tunesmith.eval.perplexity import held_out_loss

    exs = [tokenize_example(e, tok, "completion") for e in examples(16, seed=1)]
    return held_out_loss(model, exs, tok.pad_token_id, autocast=precision == "bf16")["loss"]


def run_trl(precision: str, steps: int, checkpointing: bool) -> dict:
    import torch
    from datasets import Dataset
    from engine_run import trl_clock, trl_measure, trl_settings
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from tunesmith.models.load import load_model

    torch.manual_seed(0)
    model, tok = load_model(MODEL)
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": e["prompt"]}],
                "completion": [{"role": "assistant", "content": e["completion"]}],
            }
            for e in examples()
        ]
    )
    clock, marks = trl_clock()
    config = SFTConfig(
        **trl_settings(precision, steps, 2e-4 if METHOD == "lora" else 2e-5, BATCH, checkpointing),
        padding_free=True,
        completion_only_loss=True,
        use_liger_kernel=LIGER,
        torch_compile=TRL_COMPILE,
    )
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tok,
        peft_config=lora if METHOD == "lora" else None,
        callbacks=[clock],
    )
    trainer.train()
    train_peak = rss_gb()  # before the held-out evaluation, which has its own (equal) memory cost
    cuda_peak = cuda_peak_gb()
    return {
        **trl_measure(marks),
        "train_peak_rss_gb": train_peak,
        "train_peak_cuda_gb": cuda_peak,
        "held_out_loss": held_out(trainer.model, tok, precision),
    }


def run_tunesmith(precision: str, steps: int, checkpointing: bool) -> dict:
    import torch
    from engine_run import prepare_like_recipe, train_and_measure

    from tunesmith.data.format import tokenize_example
    from tunesmith.models.load import load_model
    from tunesmith.train import env, kernels
    from tunesmith.train.packing import use_segment_attention

    if RELEASE:
        env.release_freed_memory()  # what train.release_memory does
    torch.manual_seed(0)
    model, tok = load_model(MODEL)
    model.config.use_cache = False
    exs = [tokenize_example(e, tok, "completion") for e in examples()]
    mean_len = statistics.fmean(len(e["input_ids"]) for e in exs)
    use_segment_attention(model)
    if LIGER:
        kernels.apply(model, "liger")
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = prepare_like_recipe(model, precision, lora=METHOD == "lora", compile_blocks=COMPILE)
    lr = 2e-4 if METHOD == "lora" else 2e-5
    if EXACT:  # a budget no row of BATCH examples reaches: every row holds BATCH examples, as TRL's batches do
        batching = {"batch_tokens": BATCH * max(len(e["input_ids"]) for e in exs), "max_batch_size": BATCH}
    else:  # the same mean token budget: a row closes when the next example would overflow it
        batching = {"batch_tokens": int(BATCH * mean_len), "max_batch_size": 64}
    config = engine_settings(precision, steps, lr, packing=True, **batching)
    measured = train_and_measure(model, exs, config, tok.pad_token_id, precision)
    train_peak = rss_gb()  # before the held-out evaluation, which has its own (equal) memory cost
    return {
        **measured,
        "train_peak_rss_gb": train_peak,
        "train_peak_cuda_gb": cuda_peak_gb(),
        "held_out_loss": held_out(model, tok, precision),
    }


def main() -> None:
    global MODEL, NTREX, RELEASE, METHOD, BATCH, LIGER, COMPILE, TRL_COMPILE, EXACT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument(
        "--checkpointing",
        action="store_true",
        help="gradient checkpointing in both tools "
        "(TRL's SFTConfig default; off by default here: each tool's fastest setting)",
    )
    parser.add_argument("--model", default=MODEL, help="embedded name or local model dir (both tools load it)")
    parser.add_argument("--ntrex", type=Path, default=NTREX, help="folder with the NTREX eng and hau files")
    parser.add_argument("--method", choices=["lora", "full"], default="lora", help="LoRA r=16 or full fine-tuning")
    parser.add_argument("--release", action="store_true", help="tunesmith with train.release_memory")
    parser.add_argument("--batch", type=int, default=BATCH, help="examples per optimizer step")
    parser.add_argument("--liger", action="store_true", help="Liger Kernel in both tools (CUDA only)")
    parser.add_argument(
        "--compile", action="store_true", help="tunesmith with train.compile (its compile time is the warm-up step)"
    )
    parser.add_argument("--trl-compile", action="store_true", help="TRL with torch_compile=True")
    parser.add_argument(
        "--exact-batch",
        action="store_true",
        help="tunesmith packs exactly --batch examples per row (the tokens per step TRL trains on), instead of "
        "rows of --batch x the mean example length",
    )
    parser.add_argument("--json", type=Path, help="write every repetition's figures here")
    parser.add_argument("--worker", choices=["trl", "tunesmith"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    MODEL, NTREX, RELEASE, METHOD = args.model, args.ntrex, args.release, args.method
    BATCH, LIGER, COMPILE, TRL_COMPILE = args.batch, args.liger, args.compile, args.trl_compile
    EXACT = args.exact_batch
    if args.worker:
        result = (run_trl if args.worker == "trl" else run_tunesmith)(args.precision, args.steps, args.checkpointing)
        result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(result))
        return
    tools = ["trl", "tunesmith"]
    options = ["--steps", str(args.steps), "--precision", args.precision, "--model", args.model]
    options += ["--ntrex", str(args.ntrex), "--method", args.method, "--batch", str(args.batch)]
    options += ["--checkpointing"] * args.checkpointing + ["--release"] * args.release + ["--liger"] * args.liger
    options += ["--compile"] * args.compile + ["--trl-compile"] * args.trl_compile + ["--exact-batch"] * EXACT
    results = alternate(tools, args.reps, lambda tool: [sys.executable, __file__, "--worker", tool, *options])
    base = statistics.median(r["tokens_per_s"] for r in results["trl"])
    base_rss = statistics.median(r["train_peak_rss_gb"] for r in results["trl"])
    title = (
        f"{'LoRA' if args.method == 'lora' else 'Full'} SFT, {args.precision}, "
        f"{'with' if args.checkpointing else 'without'} gradient checkpointing, "
        f"{args.batch} examples per step{', Liger Kernel in both tools' if args.liger else ''}"
        f"{', tunesmith with train.compile' if args.compile else ''}"
        f"{', TRL with torch_compile' if args.trl_compile else ''}"
        f"{', tunesmith rows of exactly that many examples' if EXACT else ''}, "
        f"{args.steps} timed optimizer steps after 1 warm-up, {args.reps} repetitions "
        f"(median [min, max]), model {args.model}"
    )
    print(f"\n{title}\n")
    print(
        "| tool | non-pad tokens/s | vs TRL | training peak RSS GB | vs TRL | process peak RSS GB "
        "| trained tokens | held-out loss after | training peak CUDA GB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tool in tools:
        tps = [r["tokens_per_s"] for r in results[tool]]
        rss = [r["train_peak_rss_gb"] for r in results[tool]]
        whole = statistics.median(r["peak_rss_gb"] for r in results[tool])
        loss = statistics.median(r["held_out_loss"] for r in results[tool])
        cuda = [r["train_peak_cuda_gb"] for r in results[tool] if r.get("train_peak_cuda_gb") is not None]
        cuda_cell = f"{statistics.median(cuda):.2f}" if cuda else "-"
        trained = statistics.median(r["trained_tokens"] for r in results[tool])
        print(
            f"| {tool} | {statistics.median(tps):.0f} [{min(tps):.0f}, {max(tps):.0f}] "
            f"| {statistics.median(tps) / base:.2f}x | {statistics.median(rss):.2f} [{min(rss):.2f}, {max(rss):.2f}] "
            f"| {statistics.median(rss) / base_rss:.2f}x | {whole:.2f} | {trained:.0f} | {loss:.4f} | {cuda_cell} |"
        )
    warm = [r["warmup_s"] for r in results["tunesmith"] if "warmup_s" in r]
    if warm:
        doing = " (compiling)" if args.compile else ""
        print(f"\ntunesmith's untimed warm-up step{doing}: {statistics.median(warm):.1f} s")
    if args.json:
        write_json(args.json, f"{args.method}_sft", title, vars(args), results)


if __name__ == "__main__":
    main()
