"""The classification loss module: the model's head logits, then weighted cross-entropy."""

from __future__ import annotations

from typing import Any

import torch

from tunesmith.train.batching import to_device
from tunesmith.train.losses import classification_loss


class ClassifierLoss(torch.nn.Module):
    """``forward(batch, normalizer) -> (loss, examples)`` for any ``*ForSequenceClassification`` model."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor], normalizer: float | None = None) -> tuple[torch.Tensor, int]:
        batch = to_device(batch, self.model)
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        total = classification_loss(logits, batch["labels"], batch.get("weights"))
        n = int(batch["labels"].numel())
        return total / (n if normalizer is None else normalizer), n
