"""Rollouts: sample answers with the policy's KV cache, then score every answer token once.

A rollout row is ``[left-padded prompt | answer | right padding]``. Position ids come from the attention
mask, so a prompt's tokens sit at the same positions whatever its padding, in sampling and in scoring.
Index ``t`` of the per-token tensors ``(B, T - 1)`` is the prediction of token ``t + 1``; ``mask`` marks
those that are answer tokens (the end-of-turn token included, so the policy learns where to stop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tunesmith.data.format import chat_prompt_text, encode
from tunesmith.eval.generate import _left_pad, stop_ids_and_strings
from tunesmith.train.sft.loss import causal_parts


@dataclass
class Rollouts:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, T - 1) answer tokens
    responses: list[str]
    logps: torch.Tensor | None = None  # (B, T - 1), the sampling policy's
    ref_logps: torch.Tensor | None = None
    values: torch.Tensor | None = None
    scores: torch.Tensor | None = None  # (B,)

    def rows(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids[idx],
            "attention_mask": self.attention_mask[idx],
            "position_ids": self.position_ids[idx],
            "mask": self.mask[idx],
        }


class ValueHead(torch.nn.Module):
    """A scalar value per position from the policy's last hidden state (zero-initialised: V = 0 at the start)."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.float()).squeeze(-1)


@torch.no_grad()
def sample(
    model: Any,
    tokenizer: Any,
    prompts: list[Any],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    seed: int,
    autocast: bool,
) -> Rollouts:
    """One sampled answer per prompt from ``model``, as a :class:`Rollouts` (greedy answers for evaluation come
    from :func:`tunesmith.eval.generate.generate`)."""
    device = next(model.parameters()).device
    stop_ids, _ = stop_ids_and_strings(tokenizer, model, None)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    prompt_rows = [encode(tokenizer, chat_prompt_text(tokenizer, p)) for p in prompts]
    ids, mask = _left_pad(prompt_rows, pad_id, device)
    torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            use_cache=True,
            eos_token_id=stop_ids,
            pad_token_id=pad_id,
            repetition_penalty=1.0,
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            top_k=0,
        )
    model.train(was_training)
    answers = []
    for row in out[:, ids.shape[1] :].tolist():
        end = next((i for i, t in enumerate(row) if t in stop_ids), None)
        answers.append(row[: end + 1] if end is not None else row)  # keep the stop token: it is an action
    texts = [tokenizer.decode(a, skip_special_tokens=True).strip() for a in answers]
    return assemble(prompt_rows, answers, pad_id, device, texts)


def assemble(
    prompt_rows: list[list[int]], answers: list[list[int]], pad_id: int, device: Any, responses: list[str]
) -> Rollouts:
    """Left-padded prompts followed by their answers and right padding, with position ids and answer mask."""
    width_prompt = max(len(p) for p in prompt_rows)
    width = width_prompt + max(max(len(a) for a in answers), 1)
    ids = torch.full((len(answers), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(answers), width), dtype=torch.long)
    answer = torch.zeros((len(answers), width), dtype=torch.long)
    for i, (p, a) in enumerate(zip(prompt_rows, answers, strict=True)):
        start = width_prompt - len(p)
        ids[i, start:width_prompt] = torch.tensor(p)
        attn[i, start : width_prompt + len(a)] = 1
        if a:
            ids[i, width_prompt : width_prompt + len(a)] = torch.tensor(a)
            answer[i, width_prompt : width_prompt + len(a)] = 1
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    return Rollouts(ids.to(device), attn.to(device), positions.to(device), answer[:, 1:].float().to(device), responses)


def token_stats(
    model: Any, value_head: ValueHead | None, rows: dict[str, torch.Tensor], temperature: float
) -> dict[str, torch.Tensor]:
    """Per answer token: log-prob of the sampled token (at the sampling temperature), entropy, and value."""
    decoder, head = causal_parts(model)
    hidden = decoder(
        input_ids=rows["input_ids"],
        attention_mask=rows["attention_mask"],
        position_ids=rows["position_ids"],
        use_cache=False,
    ).last_hidden_state[:, :-1]
    mask = rows["mask"].bool()
    logits = head(hidden[mask]).float() / temperature  # (N, V): the head on answer positions only
    logp_all = torch.log_softmax(logits, -1)
    targets = rows["input_ids"][:, 1:][mask]
    shape = rows["mask"].shape
    logps = torch.zeros(shape, dtype=torch.float32, device=hidden.device)
    logps = logps.masked_scatter(mask, logp_all.gather(1, targets[:, None])[:, 0])
    entropy = torch.zeros(shape, dtype=torch.float32, device=hidden.device)
    detached = logp_all.detach()
    entropy = entropy.masked_scatter(mask, -(detached.exp() * detached).sum(-1))
    out = {"logps": logps, "entropy": entropy}
    if value_head is not None:
        out["values"] = value_head(hidden) * rows["mask"]
    return out
