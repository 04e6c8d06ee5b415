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
) -> dict[str, Any]:
    """Token-weighted mean negative log-likelihood over the labelled tokens, its exponential, and a 95%
    bootstrap interval of both over examples (each example's summed NLL and token count resampled together).

    ``per_example`` holds each example's ``[nll_sum, tokens]`` in input order, for paired tests and groups.
    """
    from tunesmith.eval.stats import bootstrap_ci, weighted_mean

    model.eval()
    loss_module = CausalLMLoss(model, chunk_size=512)  # no backward here: small chunks keep logits small
    device_type = next(model.parameters()).device.type
    sums = [0.0] * len(examples)
    counts = [0] * len(examples)
    plan = token_budget_batches([len(e["input_ids"]) for e in examples], batch_tokens, 64)
    task = progress.add_task(description, total=len(examples)) if progress else None
    for idx in plan:
        batch = collate([examples[i] for i in idx], pad_id)  # the loss module moves it to the model's device
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            row_sums, row_counts = loss_module.per_row(batch)
        for i, total, n in zip(idx, row_sums.tolist(), row_counts.tolist(), strict=True):
            sums[i], counts[i] = total, int(n)
        if progress:
            progress.advance(task, len(idx))
    count = sum(counts)
    mean = sum(sums) / max(count, 1)
    out: dict[str, Any] = {"loss": mean, "perplexity": math.exp(min(mean, 50.0)), "tokens": count}
    scored = [(s / n, n) for s, n in zip(sums, counts, strict=True) if n]
    if len(scored) > 1:
        _, low, high = bootstrap_ci(weighted_mean, [m for m, _ in scored], [n for _, n in scored], vectorised=True)
        out["ci"] = {"loss": [low, high], "perplexity": [math.exp(min(low, 50.0)), math.exp(min(high, 50.0))]}
    out["per_example"] = [[s, n] for s, n in zip(sums, counts, strict=True)]
    return out
