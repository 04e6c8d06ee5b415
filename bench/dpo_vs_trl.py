"""Benchmark: LoRA DPO with tunesmith's engine vs TRL's DPOTrainer, same model, pairs and settings.

Data: 64 HH-RLHF harmless-base pairs (seeded sample of ``examples/hh-rlhf/data/pairs.jsonl``, MIT).
Model: SmolLM2-135M-Instruct (the embedded GGUF, dequantised once). LoRA r=16, alpha=32, all linear
layers, beta 0.1, sigmoid loss, lr 5e-5 constant, 4 pairs per optimizer step, no gradient checkpointing,
the reference from the same weights with the adapter disabled in both tools (TRL's default with PEFT).
tunesmith runs the head on answer tokens only and groups pairs of similar length; TRL runs its default
collator (``padding_free=False``; its padding-free mode is for flash attention).

Each (tool, repetition) runs in its own process (peak RSS is its own); tools alternate; the first
optimizer step is a warm-up and is not timed; tokens/s counts the non-padding tokens of the chosen and
rejected rows. Prints a markdown table: median (min, max), the ratio to TRL, and each tool's mean DPO
loss over the timed steps (both start at log 2 = 0.693). ``--json`` writes every repetition's figures.

    python bench/dpo_vs_trl.py --precision bf16 --steps 8 --reps 3
"""

from __future__ import annotations

import json
import random
from functools import partial
from pathlib import Path
from typing import Any

from engine_run import cuda_peak_gb, engine_settings, main_vs_trl, prepare_like_recipe, rss_gb, train_and_measure

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "examples" / "hh-rlhf" / "data" / "pairs.jsonl"
MODEL = "smollm2-135m-instruct"
BATCH = 4


def pairs(n: int = 64, seed: int = 0) -> list[dict]:
    """``{prompt (messages), chosen, rejected}`` pairs, split at the last shared turn by tunesmith's reader."""
    from tunesmith.data.dialogue import parse_hh_dialogue, split_hh_pair

    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    out = []
    for row in random.Random(seed).sample(rows, len(rows)):
        try:
            prompt, chosen, rejected = split_hh_pair(row["chosen"], row["rejected"])
        except ValueError:
            continue
        if chosen != rejected:
            out.append({"prompt": parse_hh_dialogue(prompt), "chosen": chosen, "rejected": rejected})
        if len(out) == n:
            break
    return out


def trl_pairs() -> Any:
    """:func:`pairs` as TRL's conversational preference dataset (prompt messages, chosen and rejected turns)."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": p["prompt"],
                "chosen": [{"role": "assistant", "content": p["chosen"]}],
                "rejected": [{"role": "assistant", "content": p["rejected"]}],
            }
            for p in pairs()
        ]
    )


def run_trl(precision: str, steps: int, model_name: str, compile_blocks: bool = False) -> dict:
    import torch
    from engine_run import trl_clock, trl_measure, trl_settings
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from tunesmith.models.load import load_model

    torch.manual_seed(0)
    model, tok = load_model(model_name)
    data = trl_pairs()
    clock, marks = trl_clock()

    config = DPOConfig(**trl_settings(precision, steps, 5e-5, BATCH), beta=0.1, loss_type=["sigmoid"])
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = DPOTrainer(
        model=model, args=config, train_dataset=data, processing_class=tok, peft_config=lora, callbacks=[clock]
    )
    trainer.train()
    return {
        **trl_measure(marks),
        "train_peak_rss_gb": rss_gb(),
        "train_peak_cuda_gb": cuda_peak_gb(),
    }


def run_tunesmith(precision: str, steps: int, model_name: str, compile_blocks: bool = False) -> dict:
    import torch

    from tunesmith.models.load import load_model
    from tunesmith.train.preference.config import PreferenceConfig
    from tunesmith.train.preference.data import collate_pairs, encode_pair
    from tunesmith.train.preference.loss import PreferenceLoss

    torch.manual_seed(0)
    model, tok = load_model(model_name)
    model.config.use_cache = False
    examples = [encode_pair(p, tok) for p in pairs()]
    model = prepare_like_recipe(model, precision, compile_blocks=compile_blocks)
    config = engine_settings(precision, steps, 5e-5, batch_tokens=1_000_000, max_batch_size=BATCH)
    loss = PreferenceLoss(model, "dpo", PreferenceConfig(beta=0.1), "adapter_off")
    collate = partial(collate_pairs, pad_id=tok.pad_token_id)
    measured = train_and_measure(model, examples, config, tok.pad_token_id, precision, loss, collate)
    return {
        **measured,
        "train_peak_rss_gb": rss_gb(),
        "train_peak_cuda_gb": cuda_peak_gb(),
    }


def main() -> None:
    workers = {"trl": run_trl, "tunesmith": run_tunesmith}
    main_vs_trl(__doc__, workers, "dpo", f"LoRA DPO, {BATCH} pairs per step", "mean DPO loss", MODEL)


if __name__ == "__main__":
    main()
