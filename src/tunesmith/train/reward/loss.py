"""The reward loss module: a scalar per (prompt, answer) from a sequence-classification head, then a pure loss."""

from __future__ import annotations

from typing import Any

import torch

from tunesmith.train.batching import to_device
from tunesmith.train.reward import losses
from tunesmith.train.reward.config import RewardConfig
from tunesmith.train.tracking import Tally


def rewards(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B,)`` scalar rewards of a one-output ``*ForSequenceClassification`` model."""
    return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0].float()


def as_lists(scores: torch.Tensor, ranks: torch.Tensor, list_index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Flat per-response tensors as padded ``(L, K)`` scores, ranks and mask."""
    n_lists = int(list_index.max()) + 1
    sizes = torch.bincount(list_index, minlength=n_lists)
    width = int(sizes.max())
    offsets = torch.cumsum(sizes, 0) - sizes
    column = torch.arange(len(list_index), device=scores.device) - offsets[list_index]
    shape = (n_lists, width)
    padded = scores.new_zeros(shape).index_put((list_index, column), scores)
    padded_ranks = ranks.new_zeros(shape).index_put((list_index, column), ranks)
    mask = torch.zeros(shape, dtype=torch.bool, device=scores.device).index_put(
        (list_index, column), torch.ones_like(list_index, dtype=torch.bool)
    )
    return padded, padded_ranks, mask


class RewardLoss(torch.nn.Module):
    """``forward(batch, normalizer) -> (loss, units)``: Bradley-Terry on pairs, Plackett-Luce on rankings,
    squared error on rated answers, by what the batch holds."""

    def __init__(self, model: Any, settings: RewardConfig) -> None:
        super().__init__()
        self.model, self.settings = model, settings
        self.tally = Tally(("accuracy", "margin", "reward_mean", "mse"))

    def forward(self, batch: dict[str, torch.Tensor], normalizer: float | None = None) -> tuple[torch.Tensor, int]:
        batch = to_device(batch, self.model)
        n = batch["units"].numel()
        scores = rewards(self.model, batch["input_ids"], batch["attention_mask"])
        self.tally.add("reward_mean", float(scores.detach().sum()), scores.numel())
        if "target" in batch:
            per_unit = losses.rating_loss(scores, batch["target"])
            self.tally.add("mse", float(per_unit.detach().sum()), n)
        elif "ranks" in batch:
            padded, ranks, mask = as_lists(scores, batch["ranks"], batch["list_index"])
            per_unit = losses.listwise_loss(padded, ranks, mask)
            # pairwise accuracy inside each list: every ordered pair with different ranks
            better = (ranks[:, :, None] < ranks[:, None, :]) & mask[:, :, None] & mask[:, None, :]
            right = (padded[:, :, None] > padded[:, None, :]) & better
            self.tally.add("accuracy", float(right.sum()), int(better.sum()))
        else:
            chosen, rejected = scores[:n], scores[n:]
            margin = (
                batch["margin"] * self.settings.margin_scale if self.settings.margin and "margin" in batch else None
            )
            per_unit = losses.bradley_terry_loss(chosen, rejected, margin)
            if self.settings.center:
                per_unit = per_unit + self.settings.center * losses.center_penalty(chosen, rejected)
            gap = (chosen - rejected).detach()
            self.tally.add("accuracy", float((gap > 0).float().sum()), n)
            self.tally.add("margin", float(gap.sum()), n)
        return per_unit.sum() / (n if normalizer is None else normalizer), n
