"""The dpo / orpo / kto loss modules: sequence log-probs of the policy (and the reference), then a pure loss.

Reference log-probs come either from the batch (precomputed once with the base model, before the method
is applied) or from the same model with its adapter switched off under ``no_grad``; never from a second
copy of the model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import torch

from tunesmith.train.batching import to_device
from tunesmith.train.losses import labelled_logps_per_row
from tunesmith.train.preference import losses
from tunesmith.train.preference.config import PreferenceConfig
from tunesmith.train.sft.loss import CausalLMLoss
from tunesmith.train.tracking import Tally


@contextlib.contextmanager
def adapter_off(model: Any) -> Iterator[None]:
    """The base model's outputs from an adapter-wrapped model, without gradients."""
    with torch.no_grad(), model.disable_adapter():
        yield


def sequence_logps(
    module: CausalLMLoss, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B,)`` summed answer log-probs and answer token counts; the LM head runs on answer tokens only."""
    hidden, head = module._hidden({"input_ids": input_ids, "attention_mask": attention_mask})
    return labelled_logps_per_row(hidden, labels, head, module.chunk_size)


class PreferenceLoss(CausalLMLoss):
    """``forward(batch, normalizer) -> (loss, pairs)`` for dpo (all loss types) and orpo on paired batches."""

    def __init__(
        self, model: Any, objective: str, settings: PreferenceConfig, reference: str, chunk_size: int = 2048
    ) -> None:
        super().__init__(model, chunk_size)
        self.objective, self.settings, self.reference = objective, settings, reference
        self.beta = settings.strength(objective)
        self.tally = Tally(("accuracy", "margin", "reward_chosen", "reward_rejected", "nll_chosen"))

    def _reference_logps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        if "ref_chosen" in batch:
            return batch["ref_chosen"], batch["ref_rejected"]
        if self.reference != "adapter_off":
            raise ValueError("the batch carries no precomputed reference log-probs and the adapter cannot be disabled")
        with adapter_off(self.model):
            ref, _ = sequence_logps(self, batch["input_ids"], batch["attention_mask"], batch["labels"])
        n = batch["units"].numel()
        return ref[:n], ref[n:]

    def forward(self, batch: dict[str, torch.Tensor], normalizer: float | None = None) -> tuple[torch.Tensor, int]:
        batch = to_device(batch, self.model)
        n = batch["units"].numel()
        logps, counts = sequence_logps(self, batch["input_ids"], batch["attention_mask"], batch["labels"])
        chosen, rejected = logps[:n], logps[n:]
        chosen_n, rejected_n = counts[:n].float(), counts[n:].float()
        nll = -chosen.sum() / chosen_n.sum().clamp(min=1)  # the chosen answers' per-token NLL in this batch
        s = self.settings
        if self.objective == "orpo":
            out = losses.orpo_loss(chosen / chosen_n, rejected / rejected_n, nll.expand(n), self.beta)
        elif s.loss_type == "simpo":
            out = losses.simpo_loss(chosen / chosen_n, rejected / rejected_n, self.beta, s.gamma, s.label_smoothing)
        else:
            ref_chosen, ref_rejected = self._reference_logps(batch)
            out = losses.dpo_loss(
                chosen, rejected, ref_chosen, ref_rejected, self.beta, s.loss_type, s.label_smoothing,
                chosen_n, rejected_n,
            )  # fmt: skip
        per_pair = out.losses
        if s.sft_weight and self.objective == "dpo":
            per_pair = per_pair + s.sft_weight * nll
        margin = out.chosen_rewards - out.rejected_rewards
        self.tally.add("accuracy", float((margin > 0).float().sum()), n)
        self.tally.add("margin", float(margin.sum()), n)
        self.tally.add("reward_chosen", float(out.chosen_rewards.sum()), n)
        self.tally.add("reward_rejected", float(out.rejected_rewards.sum()), n)
        self.tally.add("nll_chosen", float(nll.detach()) * n, n)
        return per_pair.sum() / (n if normalizer is None else normalizer), n


class KTOLoss(CausalLMLoss):
    """``forward(batch, normalizer) -> (loss, examples)`` for kto on unpaired batches."""

    def __init__(self, model: Any, settings: PreferenceConfig, reference: str, chunk_size: int = 2048) -> None:
        super().__init__(model, chunk_size)
        self.settings, self.reference = settings, reference
        self.beta = settings.strength("kto")
        self.tally = Tally(("accuracy", "kl", "reward_desirable", "reward_undesirable"))

    def forward(self, batch: dict[str, torch.Tensor], normalizer: float | None = None) -> tuple[torch.Tensor, int]:
        batch = to_device(batch, self.model)
        n = batch["units"].numel()
        logps = answer_logps(self, batch)
        with torch.no_grad():
            kl_logps = answer_logps(self, batch, "kl_")
        if "ref_logps" in batch:
            ref_logps, ref_kl_logps = batch["ref_logps"], batch["ref_kl_logps"]
        else:
            with adapter_off(self.model):
                ref_logps, ref_kl_logps = answer_logps(self, batch), answer_logps(self, batch, "kl_")
        kl = losses.kto_kl(kl_logps, ref_kl_logps)
        s = self.settings
        per_example, rewards = losses.kto_loss(
            logps, ref_logps, batch["desirable"], kl, self.beta, s.desirable_weight, s.undesirable_weight
        )
        good = batch["desirable"]
        self.tally.add("kl", float(kl) * n, n)
        if bool(good.any()):
            self.tally.add("reward_desirable", float(rewards[good].sum()), int(good.sum()))
        if bool((~good).any()):
            self.tally.add("reward_undesirable", float(rewards[~good].sum()), int((~good).sum()))
        # an example is "right" when its reward has the sign its label asks for
        self.tally.add("accuracy", float(((rewards > 0) == good).float().sum()), n)
        return per_example.sum() / (n if normalizer is None else normalizer), n


def scored_batches(
    model: Any,
    examples: Sequence[dict[str, Any]],
    lengths: Sequence[int],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_tokens: int,
    bf16: bool,
    score: Callable[[dict[str, torch.Tensor]], Any],
) -> Iterator[tuple[list[int], Any]]:
    """``(indices, score(batch))`` over token-budget batches of ``examples``, in eval mode, on the model's
    device, without gradients, under bf16 autocast when asked (reference log-probs, held-out scoring)."""
    from tunesmith.train.batching import token_budget_batches

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    for idx in token_budget_batches(lengths, batch_tokens, 64):
        batch = to_device(collate([examples[i] for i in idx]), model)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            yield idx, score(batch)
    model.train(was_training)


def answer_logps(scorer: CausalLMLoss, batch: dict[str, torch.Tensor], prefix: str = "") -> torch.Tensor:
    """Summed answer log-probs of a batch's rows (``prefix="kl_"``: its mismatched rows)."""
    rows = [batch[f"{prefix}{k}"] for k in ("input_ids", "attention_mask", "labels")]
    return sequence_logps(scorer, *rows)[0]


def precompute_reference(
    model: Any, examples: list[dict[str, Any]], pad_id: int, batch_tokens: int, bf16: bool, progress: Any = None
) -> None:
    """Score every example with ``model`` (the base, before the method is applied) and store the reference
    log-probs on the examples (``ref_chosen``/``ref_rejected``, or ``ref_logps``/``ref_kl_logps``)."""
    from tunesmith.train.preference.data import collate_pairs, collate_unpaired

    if not examples:
        return
    scorer = CausalLMLoss(model)
    paired = "chosen_ids" in examples[0]
    collate = partial(collate_pairs if paired else collate_unpaired, pad_id=pad_id)

    def score(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        return answer_logps(scorer, batch), None if paired else answer_logps(scorer, batch, "kl_")

    task = progress.add_task("reference log-probs", total=len(examples)) if progress else None
    lengths = [e["length"] for e in examples]
    for idx, (logps, kl) in scored_batches(model, examples, lengths, collate, batch_tokens, bf16, score):
        n = len(idx)
        for j, i in enumerate(idx):
            e = examples[i]
            if paired:
                e["ref_chosen"], e["ref_rejected"] = float(logps[j]), float(logps[n + j])
            else:
                e["ref_logps"], e["ref_kl_logps"] = float(logps[j]), float(kl[j])
        if progress:
            progress.advance(task, n)
