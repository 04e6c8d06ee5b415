"""The SFT loss module: decoder forward, then the LM head only where labels are."""

from __future__ import annotations

from typing import Any

import torch

from tunesmith.adapters.prompting import decoder_hidden
from tunesmith.train.batching import to_device
from tunesmith.train.losses import labelled_lm_loss, labelled_nll_per_row
from tunesmith.train.tracking import Tally


def causal_parts(model: Any) -> tuple[Any, Any]:
    """(decoder, lm_head) of a causal LM, looking through a PEFT wrapper."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


class CausalLMLoss(torch.nn.Module):
    """``forward(batch, normalizer) -> (loss, labelled_tokens)`` for any causal LM (optionally PEFT-wrapped).

    Running the decoder and the head separately lets the head see only labelled positions; LoRA layers
    live inside the decoder's modules, so they apply as usual.

    With class weights, validation also tallies the unweighted loss (``val_unweighted_loss``): the weighted
    one changes scale with the weights, so runs with and without them (trials of a hyperparameter search)
    can only be compared on the unweighted one.
    """

    def __init__(self, model: Any, chunk_size: int = 2048) -> None:
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size
        self.tally = Tally(("unweighted_loss",))

    def forward(self, batch: dict[str, torch.Tensor], normalizer: float | None = None) -> tuple[torch.Tensor, int]:
        batch = to_device(batch, self.model)
        hidden, head = self._hidden(batch)
        weights = batch.get("token_weights", batch.get("weights"))
        loss, n = labelled_lm_loss(hidden, batch["labels"], head, normalizer, self.chunk_size, weights=weights)
        if weights is not None and not torch.is_grad_enabled() and n:  # validation: the head on N rows again
            plain, _ = labelled_lm_loss(hidden, batch["labels"], head, 1.0, self.chunk_size)
            self.tally.add("unweighted_loss", float(plain), n)
        return loss, n

    def per_row(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B,)`` summed NLL and ``(B,)`` labelled-token counts of a right-padded batch (evaluation)."""
        batch = to_device(batch, self.model)
        hidden, head = self._hidden(batch)
        return labelled_nll_per_row(hidden, batch["labels"], head, self.chunk_size)

    def _hidden(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        decoder, head = causal_parts(self.model)
        mask = batch["attention_mask"]
        extra: dict[str, Any] = {}
        if "cu_seq_lens" in batch:  # a packed row: segment bounds go to the segment attention
            bounds = batch["cu_seq_lens"]
            longest = int((bounds[1:] - bounds[:-1]).max())
            extra = {
                "position_ids": batch["position_ids"],
                "cu_seq_lens_q": bounds,
                "cu_seq_lens_k": bounds,
                "max_length_q": longest,
                "max_length_k": longest,
            }
        hidden = decoder_hidden(self.model, decoder, batch["input_ids"], None if bool(mask.all()) else mask, **extra)
        return hidden, head
