"""Padding-free packing: several examples in one row, attention that never crosses examples.

A packed batch is a single row ``(1, N)``: the examples' tokens back to back, no padding anywhere. Three
things keep the examples independent:

- ``position_ids`` restart at 0 at each example, so RoPE sees the positions it would see alone;
- ``cu_seq_lens`` (cumulative example lengths, as FlashAttention's varlen kernels take them) reaches the
  attention function registered here. On CUDA it is one call of torch's varlen FlashAttention kernel
  (``torch.nn.attention.varlen``) for the whole row; on the CPU, which has no varlen kernel, causal SDPA
  runs separately on each example's span (one dense block-diagonal mask would cost (sum of lengths)^2
  instead of the sum of squares);
- the first token of every example carries no label, so the last token of one example is never trained
  to predict the first token of the next.

Examples packed this way give the same loss as when run one by one (``tests/unit/test_packing.py``).

Example of one packed row of three examples (lengths 3, 2, 4)::

    input_ids     a0 a1 a2 b0 b1 c0 c1 c2 c3
    position_ids   0  1  2  0  1  0  1  2  3
    cu_seq_lens   [0, 3, 5, 9]
    attention     a* attends a*, b* attends b*, c* attends c*  (each causal)
"""

from __future__ import annotations

import functools
import inspect
import itertools
import random
from collections.abc import Sequence
from typing import Any

import torch

from tunesmith.train.losses import IGNORE_INDEX

ATTN_IMPLEMENTATION = "tunesmith_packed"
_registered = False


def pack_plan(
    lengths: Sequence[int], batch_tokens: int, max_examples: int, seed: int | None = None
) -> list[list[int]]:
    """Group example indices into rows of at most ``batch_tokens`` tokens in total (no padding).

    Examples are taken in a seeded random order and a row is closed when the next example would not fit;
    an example longer than the budget gets a row of its own.
    """
    order = list(range(len(lengths)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    rows: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        if current and (used + lengths[i] > batch_tokens or len(current) >= max_examples):
            rows.append(current)
            current, used = [], 0
        current.append(i)
        used += lengths[i]
    if current:
        rows.append(current)
    return rows


def collate_packed(examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """One packed row: ``input_ids``, ``labels``, ``position_ids`` ``(1, N)``, ``cu_seq_lens`` ``(S+1,)``."""
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    weights: list[float] = []
    bounds = [0]
    for e in examples:
        n = len(e["input_ids"])
        ids += e["input_ids"]
        labels += [IGNORE_INDEX, *e["labels"][1:]]  # never predict across an example boundary
        positions += range(n)
        weights += [float(e.get("weight", 1.0))] * n
        bounds.append(bounds[-1] + n)
    batch = {
        "input_ids": torch.tensor([ids]),
        "labels": torch.tensor([labels]),
        "position_ids": torch.tensor([positions]),
        "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
        "cu_seq_lens": torch.tensor(bounds, dtype=torch.int32),
    }
    if any("weight" in e for e in examples):
        batch["token_weights"] = torch.tensor([weights])
    return batch


def segment_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal SDPA on each example's span of a packed row; plain SDPA when no ``cu_seq_lens`` is given.

    Shapes follow transformers' attention interface: ``query`` ``(B, H, T, D)``, ``key``/``value``
    ``(B, H_kv, T, D)``; returns ``(B, T, H, D)``.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.pop("cu_seq_lens_q", None)
    if bounds is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    if (
        query.is_cuda
        and query.dtype in (torch.float16, torch.bfloat16)  # FlashAttention has no fp32 kernel
        and query.shape[0] == 1
        and dropout == 0.0
        and _varlen_kernel() is not None
    ):
        longest = kwargs.get("max_length_q") or int((bounds[1:] - bounds[:-1]).max())
        return varlen_attention(query, key, value, bounds, longest, scaling), None
    edges = bounds.tolist()
    outputs = []
    for start, end in itertools.pairwise(edges):
        out, _ = sdpa_attention_forward(
            module,
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            None,
            dropout=dropout,
            scaling=scaling,
            is_causal=True,
        )
        outputs.append(out)
    return torch.cat(outputs, dim=1), None


@functools.lru_cache(maxsize=1)
def _varlen_kernel() -> Any:
    """torch's varlen FlashAttention (torch >= 2.9, CUDA), or None where this torch has none."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def varlen_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bounds: torch.Tensor, longest: int, scaling: Any
) -> torch.Tensor:
    """Causal attention within each segment of one packed row in a single kernel call; returns (1, T, H, D)."""
    kernel = _varlen_kernel()
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # (T, H, D)
    if k.shape[1] != q.shape[1]:  # grouped-query attention: one kv head per group of query heads
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    bounds = bounds.to(device=q.device, dtype=torch.int32)
    params = inspect.signature(kernel).parameters
    causal = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
    out = kernel(q, k, v, bounds, bounds, longest, longest, scale=scaling, **causal)
    return out.unsqueeze(0)


def _no_mask(*args: Any, **kwargs: Any) -> None:
    """Packed rows need no mask tensor: segment boundaries travel as ``cu_seq_lens``."""
    return None


def register() -> str:
    """Register the segment attention (and its mask builder) with transformers; returns its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        # Eager even inside a compiled block (train.compile): the per-example loop would otherwise be
        # unrolled and recompiled for every new number of examples in a row.
        AttentionInterface.register(ATTN_IMPLEMENTATION, torch.compiler.disable(segment_attention))
        AttentionMaskInterface.register(ATTN_IMPLEMENTATION, _no_mask)
        _registered = True
    return ATTN_IMPLEMENTATION


def use_segment_attention(model: Any) -> None:
    """Switch a (base) transformers model to the segment attention; padded batches still work through it."""
    register()
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
