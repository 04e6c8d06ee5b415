"""Benchmark: a LoRA reward model with tunesmith's engine vs TRL's RewardTrainer, same model, pairs and settings.

Data: 64 HH-RLHF harmless-base pairs (the seeded sample of ``bench/dpo_vs_trl.py``, from
``examples/hh-rlhf/data/pairs.jsonl``, MIT). Model: SmolLM2-135M-Instruct with a new one-output
sequence-classification head (the embedded GGUF, dequantised once). LoRA r=16, alpha=32, all linear layers,
the head trained in full (PEFT's ``SEQ_CLS`` task in both tools), Bradley-Terry loss, lr 5e-5 constant, 4 pairs
per optimizer step, no gradient checkpointing. Both tools read each (prompt, answer) as its chat rendering.
tunesmith groups pairs of similar length; TRL runs its default collator.

Each (tool, repetition) runs in its own process (peak RSS is its own); tools alternate; the first optimizer
step is a warm-up and is not timed; tokens/s counts the non-padding tokens of the chosen and rejected rows.
Prints a markdown table: median (min, max), the ratio to TRL, and each tool's mean loss over the timed steps
(both start near log 2 = 0.693). ``--json`` writes every repetition's figures.

    python bench/reward_vs_trl.py --precision bf16 --steps 8 --reps 3
"""

from __future__ import annotations

from functools import partial

from dpo_vs_trl import pairs, trl_pairs
from engine_run import cuda_peak_gb, engine_settings, main_vs_trl, prepare_like_recipe, rss_gb, train_and_measure

MODEL = "smollm2-135m-instruct"
BATCH = 4


def run_trl(precision: str, steps: int, model_name: str, compile_blocks: bool = False) -> dict:
    import torch
    from engine_run import trl_clock, trl_measure, trl_settings
    from peft import LoraConfig
    from trl import RewardConfig, RewardTrainer

    from tunesmith.models.load import load_classifier

    torch.manual_seed(0)
    model, tok = load_classifier(model_name, ["reward"])
    data = trl_pairs()
    clock, marks = trl_clock()
    config = RewardConfig(**trl_settings(precision, steps, 5e-5, BATCH))
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="SEQ_CLS")
    trainer = RewardTrainer(
        model=model, args=config, train_dataset=data, processing_class=tok, peft_config=lora, callbacks=[clock]
    )
    trainer.train()
    return {**trl_measure(marks), "train_peak_rss_gb": rss_gb(), "train_peak_cuda_gb": cuda_peak_gb()}


def run_tunesmith(precision: str, steps: int, model_name: str, compile_blocks: bool = False) -> dict:
    import torch

    from tunesmith.models.load import load_classifier
    from tunesmith.train.reward.config import RewardConfig
    from tunesmith.train.reward.data import collate_pairs, encode_pair
    from tunesmith.train.reward.loss import RewardLoss

    torch.manual_seed(0)
    model, tok = load_classifier(model_name, ["reward"])
    examples = [encode_pair(p, tok) for p in pairs()]
    model = prepare_like_recipe(model, precision, compile_blocks=compile_blocks)
    config = engine_settings(precision, steps, 5e-5, batch_tokens=1_000_000, max_batch_size=BATCH)
    loss = RewardLoss(model, RewardConfig())
    collate = partial(collate_pairs, pad_id=tok.pad_token_id)
    measured = train_and_measure(model, examples, config, tok.pad_token_id, precision, loss, collate)
    return {**measured, "train_peak_rss_gb": rss_gb(), "train_peak_cuda_gb": cuda_peak_gb()}


def main() -> None:
    workers = {"trl": run_trl, "tunesmith": run_tunesmith}
    main_vs_trl(
        __doc__, workers, "reward", f"LoRA reward model (Bradley-Terry), {BATCH} pairs per step", "mean loss", MODEL
    )


if __name__ == "__main__":
    main()
