"""Losses as pure functions of tensors. Each has a unit test against a reference.

Shapes: ``B`` batch, ``T`` sequence length, ``H`` hidden size, ``V`` vocabulary, ``N`` labelled positions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100


def _chunk_ce_sum(
    head: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    return (F.cross_entropy(head(hidden).float(), targets, reduction="none") * weights).sum()


def labelled_lm_loss(
    hidden: torch.Tensor,
    labels: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    normalizer: float | torch.Tensor | None = None,
    chunk_size: int = 2048,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int]:
    """Next-token cross-entropy computed only where a label exists, without materialising full logits.

    The LM head runs on the ``N`` labelled positions only, in chunks of ``chunk_size`` rows; when gradients
    are needed each chunk is checkpointed, so at most one ``(chunk_size, V)`` logits block is alive at a
    time. For SmolLM2 (V = 49,152) a 4 x 512 batch would otherwise hold 400 MB of fp32 logits per copy.

    Args:
        hidden: ``(B, T, H)`` final hidden states (after the last norm).
        labels: ``(B, T)`` token ids; ``-100`` marks positions without loss. Position ``t`` of ``hidden``
            predicts ``labels[:, t + 1]`` (the usual causal shift).
        head: the LM head, ``(N, H) -> (N, V)`` (a module, so LoRA on the head still applies).
        normalizer: divide the summed loss by this (default: ``N``); pass the labelled-token count of the
            whole optimizer step to make gradient accumulation exact.
        chunk_size: rows of the head computed at once.
        weights: optional ``(B,)`` per-example or ``(B, T)`` per-token weights (e.g. inverse class
            frequency); each labelled token of row ``b`` counts ``weights[b]`` times. The normaliser
            still counts tokens, so weights that average 1 keep the loss scale.

    Returns:
        ``(loss, N)``: the scalar loss and the number of labelled positions in this batch.
    """
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    selected = hidden[:, :-1][mask]  # (N, H)
    if weights is None:
        token_weights = torch.ones(int(mask.sum()), dtype=torch.float32, device=hidden.device)
    elif weights.dim() == 1:  # (B,) per example
        token_weights = weights.to(torch.float32)[:, None].expand_as(mask)[mask]
    else:  # (B, T) per token (packed rows); the weight of the predicted token's example applies
        token_weights = weights.to(torch.float32)[:, 1:][mask]  # (N,)
    targets = targets[mask]  # (N,)
    n = int(targets.numel())
    if n == 0:
        return hidden.sum() * 0.0, 0
    total = hidden.new_zeros((), dtype=torch.float32)
    need_grad = torch.is_grad_enabled()
    for start in range(0, n, chunk_size):
        end = start + chunk_size
        h, y, w = selected[start:end], targets[start:end], token_weights[start:end]
        if need_grad and n > chunk_size:
            total = total + checkpoint(_chunk_ce_sum, head, h, y, w, use_reentrant=False)
        else:
            total = total + _chunk_ce_sum(head, h, y, w)
    return total / (n if normalizer is None else normalizer), n


def _chunk_logps(
    head: Callable[[torch.Tensor], torch.Tensor], hidden: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    return -F.cross_entropy(head(hidden).float(), targets, reduction="none")


def labelled_logps_per_row(
    hidden: torch.Tensor, labels: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], chunk_size: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each row's labelled tokens, with gradients: the sequence log-likelihood
    ``log p(completion | prompt)`` that preference losses compare.

    Like :func:`labelled_lm_loss`, the head runs on labelled positions only, in checkpointed chunks, so the
    ``(B, T, V)`` logits never exist. Returns ``(logps, counts)``, both ``(B,)``; divide for the per-token
    mean that IPO, SimPO and ORPO use.
    """
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    rows = mask.nonzero()[:, 0]  # (N,) the row of each labelled position, in order
    selected, targets = hidden[:, :-1][mask], targets[mask]
    n = int(targets.numel())
    pieces = []
    for start in range(0, n, chunk_size):
        h, y = selected[start : start + chunk_size], targets[start : start + chunk_size]
        if torch.is_grad_enabled() and n > chunk_size:
            pieces.append(checkpoint(_chunk_logps, head, h, y, use_reentrant=False))
        else:
            pieces.append(_chunk_logps(head, h, y))
    token_logps = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
    sums = torch.zeros(labels.shape[0], dtype=torch.float32, device=hidden.device).index_add(0, rows, token_logps)
    if n == 0:  # keep the graph connected so backward still reaches every parameter under DDP
        sums = sums + hidden.sum() * 0.0
    return sums, mask.sum(dim=1)


@torch.no_grad()
def labelled_nll_per_row(
    hidden: torch.Tensor, labels: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], chunk_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token negative log-likelihood and labelled-token count of each row, for evaluation: the
    negated :func:`labelled_logps_per_row`, kept per row so that intervals can be bootstrapped over examples.
    Returns ``(sums, counts)``, both ``(B,)``."""
    logps, counts = labelled_logps_per_row(hidden, labels, head, chunk_size)
    return -logps, counts


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Summed (optionally per-example weighted) cross-entropy of a classification head.

    Args:
        logits: ``(B, C)`` class scores.
        labels: ``(B,)`` class indices.
        weights: optional ``(B,)`` example weights (balanced class weights); divide the sum by the
            example count of the optimizer step for a mean.
    """
    per_example = F.cross_entropy(logits.float(), labels, reduction="none")
    return (per_example * weights.to(per_example.dtype)).sum() if weights is not None else per_example.sum()


def l2sp_penalty(params: Sequence[torch.Tensor], anchors: Sequence[torch.Tensor], strength: float) -> torch.Tensor:
    """``strength / 2 * sum ||w - w0||^2``: the L2-SP pull toward pretrained weights (Li et al. 2018,
    "Explicit Inductive Bias for Transfer Learning with Convolutional Networks", arXiv:1802.01483), which
    limits how far full or freeze tuning drifts from what the base model knew."""
    total = params[0].new_zeros((), dtype=torch.float32)
    for w, w0 in zip(params, anchors, strict=True):
        total = total + (w.float() - w0.float()).pow(2).sum()
    return 0.5 * strength * total
