"""Reward-model losses as pure functions of scalar rewards: pairwise, listwise and regression."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pair ``-log sigmoid(r_chosen - r_rejected - margin)``: the Bradley-Terry likelihood of the
    preference (Ouyang et al. 2022, arXiv:2203.02155, eq. 1); the optional margin (Llama 2's, from how
    strongly raters preferred) asks for a larger gap on clear preferences."""
    delta = chosen - rejected
    if margin is not None:
        delta = delta - margin
    return -F.logsigmoid(delta)


def center_penalty(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair ``(r_chosen + r_rejected)^2``, which keeps rewards centred on zero (Eisenstein et al. 2023,
    arXiv:2312.09244); TRL's ``center_rewards_coefficient`` multiplies the batch mean of it."""
    return (chosen + rejected) ** 2


def listwise_loss(scores: torch.Tensor, ranks: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-list negative Plackett-Luce log-likelihood of a ranking, with ties (Breslow's approximation).

    Each response ranked ``k`` contributes ``s_i - logsumexp(s_j for j ranked k or worse)``: every tied
    response competes against the same remaining set, so ties state no order among themselves. For two
    responses this is exactly the Bradley-Terry loss.

    Args:
        scores: ``(L, K)`` rewards of up to ``K`` responses per list.
        ranks: ``(L, K)`` ranks, 1 = best; ties share a rank.
        mask: ``(L, K)`` true where a response exists (lists are padded to ``K``).

    Returns:
        ``(L,)`` losses (a lone worst-ranked response adds ``s - s = 0``: it competes only with itself).
    """
    scores = scores.float()
    worse_or_equal = ranks[:, None, :] >= ranks[:, :, None]  # [l, i, j]: j is ranked no better than i
    competitors = worse_or_equal & mask[:, None, :] & mask[:, :, None]
    expanded = scores[:, None, :].expand_as(competitors).masked_fill(~competitors, float("-inf"))
    log_norm = torch.logsumexp(expanded, dim=-1)  # (L, K)
    terms = (scores - log_norm).masked_fill(~mask, 0.0)
    return -terms.sum(dim=1)


def rating_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-response squared error against standardised ratings (a regression reward model)."""
    return (scores.float() - targets.float()) ** 2
