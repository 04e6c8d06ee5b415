"""PPO's pieces as pure functions of ``(B, T)`` per-token tensors over sampled answers.

``mask`` marks the answer tokens of each row (1) against padding (0). Follows Schulman et al. 2017
("Proximal Policy Optimization Algorithms", arXiv:1707.06347), GAE from Schulman et al. 2016
(arXiv:1506.02438), and the per-token KL-penalised reward of Ziegler et al. 2019 (arXiv:1909.08593).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``(x - mean) / std`` over the masked entries (the mean kept when ``shift_mean`` is false)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * mask


def kl_rewards(
    logps: torch.Tensor, ref_logps: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: ``-kl_coef * (log pi - log ref)`` at every answer token, plus the answer's score at
    its last token. Returns ``(rewards, kl)`` with ``kl`` the per-token estimate ``log pi - log ref``."""
    kl = (logps - ref_logps) * mask
    rewards = -kl_coef * kl
    last = mask.cumsum(1).argmax(1)  # the index of each row's last answer token
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns, computed right to left over each row's answer tokens.

    ``delta_t = r_t + gamma V_{t+1} - V_t`` and ``A_t = delta_t + gamma lam A_{t+1}``, with ``V`` and ``A``
    zero after the last answer token. Returns ``(advantages, returns = advantages + values)``.
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    next_value = torch.zeros_like(running)
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * m
        advantages[:, t] = running
        next_value = values[:, t] * m
    return advantages, (advantages + values) * mask


def policy_loss(
    logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped surrogate ``mean(max(-A r, -A clip(r, 1-e, 1+e)))`` over answer tokens, and the fraction of
    tokens where the clipped term was the larger (the clip fraction)."""
    ratio = torch.exp(logps - old_logps)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip, 1 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    fraction = masked_mean((clipped > unclipped).float(), mask)
    return loss, fraction.detach()


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float
) -> torch.Tensor:
    """``0.5 * mean(max((V - R)^2, (V_clipped - R)^2))`` with ``V_clipped`` within ``clip`` of the rollout's value."""
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


@dataclass
class AdaptiveKL:
    """Ziegler et al.'s proportional controller: ``coef *= 1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon``."""

    coef: float
    target: float | None
    horizon: int

    def update(self, kl: float, n: int) -> float:
        if self.target is not None:
            error = max(-0.2, min(0.2, kl / self.target - 1))
            self.coef *= 1 + error * n / self.horizon
        return self.coef
