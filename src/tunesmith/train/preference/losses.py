"""Preference-optimisation losses as pure functions of sequence log-probabilities.

Every function takes ``(B,)`` tensors (one entry per pair or per example) and returns per-example losses
plus the implicit rewards that training logs, so the caller chooses how to average. Unit tests check each
against TRL's implementation on the same inputs.

Notation: ``logps`` is the summed log-probability of a completion given its prompt under the policy,
``ref_logps`` the same under the reference (the model before training), ``counts`` the completion's
token count (for the per-token means that IPO, SimPO and ORPO use).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class PairLosses(NamedTuple):
    losses: torch.Tensor  # (B,) per pair
    chosen_rewards: torch.Tensor  # (B,) detached implicit rewards, for logging and accuracy
    rejected_rewards: torch.Tensor


def dpo_loss(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    chosen_counts: torch.Tensor | None = None,
    rejected_counts: torch.Tensor | None = None,
) -> PairLosses:
    """DPO and its reference-based variants, per pair.

    - ``sigmoid``: DPO (Rafailov et al. 2023, arXiv:2305.18290, eq. 7), ``-log sigmoid(beta * delta)``
      with ``delta`` the chosen minus rejected log-ratio to the reference; ``label_smoothing`` ``e`` gives
      conservative DPO, ``-(1-e) log sigmoid(beta delta) - e log sigmoid(-beta delta)``.
    - ``hinge``: ``relu(1 - beta * delta)`` (SLiC, arXiv:2305.10425).
    - ``ipo``: IPO (Azar et al. 2023, arXiv:2310.12036, eq. 17) on per-token mean log-ratios,
      ``(delta_mean - 1 / (2 beta))^2``, the normalisation TRL confirmed with the authors; needs counts.

    The implicit reward of a completion is ``beta * (logps - ref_logps)``.
    """
    chosen_ratio = chosen_logps - ref_chosen_logps
    rejected_ratio = rejected_logps - ref_rejected_logps
    if loss_type == "sigmoid":
        delta = beta * (chosen_ratio - rejected_ratio)
        losses = -F.logsigmoid(delta) * (1 - label_smoothing) - F.logsigmoid(-delta) * label_smoothing
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * (chosen_ratio - rejected_ratio))
    elif loss_type == "ipo":
        if chosen_counts is None or rejected_counts is None:
            raise ValueError("the ipo loss averages log-ratios per token: pass chosen_counts and rejected_counts")
        delta = chosen_ratio / chosen_counts.clamp(min=1) - rejected_ratio / rejected_counts.clamp(min=1)
        losses = (delta - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss type {loss_type!r} (sigmoid, hinge, ipo)")
    return PairLosses(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


def simpo_loss(
    chosen_mean_logps: torch.Tensor,
    rejected_mean_logps: torch.Tensor,
    beta: float,
    gamma: float,
    label_smoothing: float = 0.0,
) -> PairLosses:
    """SimPO (Meng et al. 2024, arXiv:2405.14734, eq. 6): reference-free, on per-token mean log-probs,
    ``-log sigmoid(beta * (mean_c - mean_r) - gamma)``. ``gamma`` is the target reward margin; TRL's CPO
    trainer writes the same as ``beta * (delta - gamma / beta)``. Rewards are ``beta * mean logps``."""
    logits = beta * (chosen_mean_logps - rejected_mean_logps) - gamma
    losses = -F.logsigmoid(logits) * (1 - label_smoothing) - F.logsigmoid(-logits) * label_smoothing
    return PairLosses(losses, beta * chosen_mean_logps.detach(), beta * rejected_mean_logps.detach())


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, stable at both ends (Maechler 2012)."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo_odds_ratio(chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor) -> torch.Tensor:
    """``log sigmoid(log odds(chosen) - log odds(rejected))`` per pair, with ``odds(y) = p / (1 - p)`` of the
    per-token mean probability (Hong et al. 2024, "ORPO", arXiv:2403.07691, eqs. 4 and 7)."""
    c, r = chosen_mean_logps.float(), rejected_mean_logps.float()
    log_odds = (c - r) - (log1mexp(c) - log1mexp(r))
    return F.logsigmoid(log_odds)


def orpo_loss(
    chosen_mean_logps: torch.Tensor, rejected_mean_logps: torch.Tensor, chosen_nll: torch.Tensor, beta: float
) -> PairLosses:
    """ORPO per pair: the chosen answer's NLL minus ``beta`` times the log odds ratio (no reference model).

    ``chosen_nll`` is the NLL term each pair contributes (``(B,)``); the recipe passes the batch's per-token
    NLL, so the mean over pairs equals TRL's ``nll - beta * mean(log sigmoid(log odds))``.
    """
    ratio = orpo_odds_ratio(chosen_mean_logps, rejected_mean_logps)
    return PairLosses(
        chosen_nll - beta * ratio, beta * chosen_mean_logps.detach(), beta * rejected_mean_logps.detach()
    )


def kto_loss(
    logps: torch.Tensor,
    ref_logps: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KTO (Ethayarajh et al. 2024, arXiv:2402.01306, eq. 7) per example, from unpaired good/bad feedback.

    ``kl`` is the (detached, clamped at 0) estimate of KL(policy || reference) from mismatched
    prompt-completion pairs (:func:`kto_kl`). A desirable completion costs ``w_d (1 - sigmoid(beta (r - kl)))``,
    an undesirable one ``w_u (1 - sigmoid(beta (kl - r)))``, with ``r`` its log-ratio to the reference.
    Returns ``(losses, rewards)``; rewards are ``beta * r``.
    """
    ratio = logps - ref_logps
    good = desirable.bool()
    losses = torch.where(
        good,
        desirable_weight * (1 - torch.sigmoid(beta * (ratio - kl))),
        undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio))),
    )
    return losses, beta * ratio.detach()


def kto_kl(kl_logps: torch.Tensor, ref_kl_logps: torch.Tensor) -> torch.Tensor:
    """The KTO reference point: the batch mean of ``log pi(y'|x) - log ref(y'|x)`` over mismatched pairs,
    detached and clamped at zero (a KL divergence cannot be negative)."""
    return (kl_logps - ref_kl_logps).mean().detach().clamp(min=0)
