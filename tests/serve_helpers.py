"""Helpers shared by the serving tests: a plain tiny model and random LoRA adapters for it."""

from __future__ import annotations

from pathlib import Path

import torch


def load_plain(model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


def make_adapter(model_dir: Path, out: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model

    model, _ = load_plain(model_dir)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    torch.manual_seed(seed)
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.3)
    peft.save_pretrained(out)
    return out
