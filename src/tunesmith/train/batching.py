"""Token-budget batches of similar-length examples, and their collation.

Examples are grouped by length so a padded batch wastes little, and each batch holds at most
``batch_tokens`` tokens (padding included), so batch shapes stay in a narrow band and memory is bounded
by the budget rather than by the longest example times a fixed batch size.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from tunesmith.train.losses import IGNORE_INDEX


def token_budget_batches(
    lengths: Sequence[int],
    batch_tokens: int,
    max_batch_size: int,
    seed: int | None = None,
    group_by_length: bool = True,
) -> list[list[int]]:
    """Index lists, each a batch whose ``len(batch) * max_len`` fits ``batch_tokens``.

    Sorting by length then cutting keeps padding low; with a ``seed`` the order of batches is shuffled
    (and ties in length are broken randomly) so that epochs differ but a seed always gives the same plan.
    ``group_by_length=False`` cuts the (seeded, shuffled) order as it is, as a plain data loader would.
    """
    order = list(range(len(lengths)))
    rng = random.Random(seed) if seed is not None else None
    if rng:
        rng.shuffle(order)
    if group_by_length:
        order.sort(key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        longest_if = max(longest, lengths[i])
        if current and (longest_if * (len(current) + 1) > batch_tokens or len(current) >= max_batch_size):
            batches.append(current)
            current, longest_if = [], lengths[i]
        current.append(i)
        longest = longest_if
    if current:
        batches.append(current)
    if rng:
        rng.shuffle(batches)
    return batches


def collate(examples: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ``input_ids``/``labels`` to the longest example; labels are ``-100`` on padding.

    Examples that carry a ``weight`` (class weighting) add a ``(B,)`` ``weights`` tensor.
    """
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    batch = {"input_ids": ids, "labels": labels, "attention_mask": mask}
    if any("weight" in e for e in examples):
        batch["weights"] = torch.tensor([float(e.get("weight", 1.0)) for e in examples])
    return batch


def labelled_tokens(batch: dict[str, torch.Tensor]) -> int:
    """What the loss averages over: pairs or examples where the batch counts them (``units``: preference
    objectives), examples for ``(B,)`` class labels, else positions that carry a loss after the causal shift."""
    if "units" in batch:
        return int(batch["units"].numel())
    if batch["labels"].dim() == 1:
        return int(batch["labels"].numel())
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, T)`` token ids padded on the right to the longest row, and the attention mask."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def collate_classify(examples: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``/``attention_mask`` and ``(B,)`` class ``labels`` (+ ``weights``)."""
    ids, mask = right_pad([e["input_ids"] for e in examples], pad_id)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([e["label"] for e in examples])}
    if any("weight" in e for e in examples):
        batch["weights"] = torch.tensor([float(e.get("weight", 1.0)) for e in examples])
    return batch


def to_device(batch: dict[str, torch.Tensor], model: Any) -> dict[str, torch.Tensor]:
    """The batch on the model's device (the engine moves batches already; evaluation and tests may not)."""
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in batch.items()}
