"""Feedback rows -> reward-model inputs: pairs, whole rankings, or rated answers.

A causal LM with a chat template reads a (prompt, answer) as the chat rendering of the two turns; an
encoder without one (MiniLM) reads them as a text pair (``[CLS] prompt [SEP] answer [SEP]``), a
dialogue prompt flattened to ``role: text`` lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from tunesmith.data.convert import choice_to_pairs, ranking_to_pairs
from tunesmith.data.format import _prompt_messages, chat_completion_text, chat_prompt_text, encode
from tunesmith.train.batching import right_pad

Example = dict[str, Any]


def _plain(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def answer_ids(tokenizer: Any, prompt: Any, answer: str) -> list[int]:
    """The token ids the reward model reads for ``answer`` to ``prompt``."""
    if isinstance(prompt, str):
        prompt = _prompt_messages(prompt)
    if getattr(tokenizer, "chat_template", None):
        return encode(tokenizer, chat_prompt_text(tokenizer, prompt)) + encode(
            tokenizer, chat_completion_text(tokenizer, prompt, answer)
        )
    return list(tokenizer(_plain(prompt), answer)["input_ids"])


def as_pairs(rows: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Pairwise rows from any paired kind: rankings and choices give every pair they imply."""
    if kind == "ranking":
        return [p for r in rows for p in ranking_to_pairs(r)]
    if kind == "choice":
        return [p for r in rows for p in choice_to_pairs(r)]
    return list(rows)


def encode_pair(row: dict[str, Any], tokenizer: Any) -> Example:
    chosen, rejected = (
        answer_ids(tokenizer, row["prompt"], row["chosen"]),
        answer_ids(tokenizer, row["prompt"], row["rejected"]),
    )
    longest = max(len(chosen), len(rejected))
    example: Example = {"chosen_ids": chosen, "rejected_ids": rejected, "longest": longest, "length": 2 * longest}
    if row.get("margin") is not None:
        example["margin"] = float(row["margin"])
    return example


def encode_ranking(row: dict[str, Any], tokenizer: Any) -> Example:
    ids = [answer_ids(tokenizer, row["prompt"], r) for r in row["responses"]]
    ranks = row.get("ranks") or list(range(1, len(ids) + 1))
    longest = max(len(i) for i in ids)
    return {"response_ids": ids, "ranks": list(ranks), "longest": longest, "length": len(ids) * longest}


def encode_rating(row: dict[str, Any], tokenizer: Any) -> Example:
    ids = answer_ids(tokenizer, row["prompt"], row["response"])
    return {"input_ids": ids, "score": float(row["score"]), "longest": len(ids), "length": len(ids)}


def _pad(rows: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    ids, mask = right_pad(rows, pad_id)
    return {"input_ids": ids, "attention_mask": mask}


def collate_pairs(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """``2B`` rows, chosen then rejected; ``units`` counts the pairs."""
    batch = _pad([e["chosen_ids"] for e in examples] + [e["rejected_ids"] for e in examples], pad_id)
    batch["units"] = torch.ones(len(examples))
    if any("margin" in e for e in examples):
        batch["margin"] = torch.tensor([e.get("margin", 0.0) for e in examples], dtype=torch.float32)
    return batch


def collate_rankings(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Every response of every list as a row; ``ranks`` and ``list_index`` say which list and where."""
    rows = [ids for e in examples for ids in e["response_ids"]]
    batch = _pad(rows, pad_id)
    batch["ranks"] = torch.tensor([r for e in examples for r in e["ranks"]], dtype=torch.long)
    batch["list_index"] = torch.tensor([i for i, e in enumerate(examples) for _ in e["ranks"]], dtype=torch.long)
    batch["units"] = torch.ones(len(examples))
    return batch


def collate_ratings(examples: Sequence[Example], pad_id: int, mean: float, std: float) -> dict[str, torch.Tensor]:
    """Rated answers with standardised targets ``(score - mean) / std``."""
    batch = _pad([e["input_ids"] for e in examples], pad_id)
    batch["target"] = torch.tensor([(e["score"] - mean) / std for e in examples], dtype=torch.float32)
    batch["units"] = torch.ones(len(examples))
    return batch
