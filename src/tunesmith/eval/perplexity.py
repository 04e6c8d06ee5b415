"""Held-out loss and perplexity of a causal LM on tokenised examples (raw text or completions)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from tunesmith.train.batching import collate, token_budget_batches
from tunesmith.train.sft.loss import CausalLMLoss


@torch.no_grad()
def held_out_loss(
    model: Any,
    examples: Sequence[dict[str, list[int]]],
    pad_id: int,
    batch_tokens: int = 8192,
    autocast: bool = False,
    progress: Any = None,
    description: str = "perplexity",
) -> dict[str, float]:
    """Token-weighted mean negative log-likelihood over the labelled tokens, and its exponential."""
    model.eval()
    loss_module = CausalLMLoss(model, chunk_size=512)  # no backward here: small chunks keep logits small
    device_type = next(model.parameters()).device.type
    total, count = 0.0, 0
    plan = token_budget_batches([len(e["input_ids"]) for e in examples], batch_tokens, 64)
    task = progress.add_task(description, total=len(examples)) if progress else None
    for idx in plan:
        batch = collate([examples[i] for i in idx], pad_id)  # the loss module moves it to the model's device
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            loss, n = loss_module(batch, normalizer=1.0)
        total += float(loss)
        count += n
        if progress:
            progress.advance(task, len(idx))
    mean = total / max(count, 1)
    return {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": count}
