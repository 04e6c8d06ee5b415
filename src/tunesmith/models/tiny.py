"""Tiny random models for tests and examples: built in process from a config, never downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tiny_tokenizer(corpus: list[str], out_dir: Path, vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer with ChatML special tokens, trained on ``corpus`` and saved to ``out_dir``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    fast.chat_template = CHATML
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return fast


# Shared by every tiny model: small enough for a test to train in a second, wide enough to learn.
_COMMON = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 512,
}


def _build(kind: str, tokenizer_dir: Path, out_dir: Path, seed: int, overrides: dict[str, Any]) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    settings: dict[str, Any] = {**_COMMON, "vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    if kind == "llama":
        settings |= {
            "num_key_value_heads": 2,
            # std 0.02 (the HF default) leaves a frozen tied head unable to express confident logits at width 32
            "initializer_range": 0.25,
            "tie_word_embeddings": True,
            "eos_token_id": tokenizer.eos_token_id,
            "bos_token_id": tokenizer.bos_token_id,
        }
    settings.update(overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**settings)) if kind == "llama" else BertModel(BertConfig(**settings))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_causal_lm(tokenizer_dir: Path, out_dir: Path, seed: int = 0, **overrides: Any) -> Path:
    """Save a random 2-layer Llama (hidden 32) with the tokenizer from ``tokenizer_dir`` into ``out_dir``."""
    return _build("llama", tokenizer_dir, out_dir, seed, overrides)


def build_tiny_encoder(tokenizer_dir: Path, out_dir: Path, seed: int = 0, **overrides: Any) -> Path:
    """Save a random 2-layer BERT encoder (hidden 32) with the tokenizer from ``tokenizer_dir`` into ``out_dir``."""
    return _build("bert", tokenizer_dir, out_dir, seed, overrides)
