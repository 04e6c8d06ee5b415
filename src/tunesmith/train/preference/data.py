"""Preference rows -> token ids -> batches.

A pair becomes ``prompt_ids`` (the chat rendering up to the answer) and the ids of each answer (the text
the full chat adds after the prompt: answer plus end-of-turn markers), the same split SFT uses, so the
log-probability of an answer is exactly what SFT would train. A batch of ``B`` pairs is ``2B`` right-padded
rows, chosen first, with labels only on the answers; ``units`` counts the pairs (what the loss averages).

Unpaired feedback (KTO) is one row per answer with a ``desirable`` flag, plus a mismatched row per example
(its prompt with another example's answer) whose log-ratio estimates the KL term. The mismatch is fixed
when the data is encoded (a seeded rotation), so reference log-probs of those rows can be precomputed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from tunesmith.data.format import chat_completion_text, chat_prompt_text, encode
from tunesmith.train.batching import collate

Example = dict[str, Any]


def _answer_ids(tokenizer: Any, prompt: Any, answer: str) -> list[int]:
    return encode(tokenizer, chat_completion_text(tokenizer, prompt, answer))


def encode_pair(row: dict[str, Any], tokenizer: Any) -> Example:
    """Token ids of a ``{prompt, chosen, rejected}`` row; ``length`` is the padded cost of its two rows."""
    prompt_ids = encode(tokenizer, chat_prompt_text(tokenizer, row["prompt"]))
    chosen = _answer_ids(tokenizer, row["prompt"], row["chosen"])
    rejected = _answer_ids(tokenizer, row["prompt"], row["rejected"])
    longest = len(prompt_ids) + max(len(chosen), len(rejected))
    example: Example = {"prompt_ids": prompt_ids, "chosen_ids": chosen, "rejected_ids": rejected}
    example.update(longest=longest, length=2 * longest)
    if row.get("margin") is not None:
        example["margin"] = float(row["margin"])
    return example


def unpair(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unpaired rows from unpaired data (unchanged) or from pairs (chosen is desirable, rejected is not)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if "chosen" in row:
            out.append({**row, "completion": row["chosen"], "label": True})
            out.append({**row, "completion": row["rejected"], "label": False})
        else:
            out.append(row)
    return out


def encode_unpaired(row: dict[str, Any], tokenizer: Any) -> Example:
    prompt_ids = encode(tokenizer, chat_prompt_text(tokenizer, row["prompt"]))
    answer = _answer_ids(tokenizer, row["prompt"], row["completion"])
    longest = len(prompt_ids) + len(answer)
    return {"prompt_ids": prompt_ids, "answer_ids": answer, "desirable": bool(row["label"]), "longest": longest}


def add_mismatched(examples: list[Example], seed: int) -> None:
    """Give each unpaired example another example's answer (a seeded rotation) for KTO's KL estimate."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    for pos, i in enumerate(order):
        other = examples[order[pos - 1]]["answer_ids"] if len(order) > 1 else examples[i]["answer_ids"]
        ex = examples[i]
        ex["kl_answer_ids"] = other
        ex["length"] = 2 * max(ex["longest"], len(ex["prompt_ids"]) + len(other))


def encode_split(
    rows: Sequence[dict[str, Any]],
    encoder: Callable[[dict[str, Any], Any], Example],
    tokenizer: Any,
    max_length: int,
    split: str,
    rejects: Path,
) -> list[Example]:
    """Encode rows; a row whose longest sequence exceeds ``max_length`` goes to rejects.jsonl with its length
    (cutting it would cut an answer, the very thing being compared)."""
    from tunesmith.train.causal import append_rejects, length_reject

    kept, too_long = [], []
    for row in rows:
        example = encoder(row, tokenizer)
        if example["longest"] > max_length:
            too_long.append(length_reject(row, split, example["longest"], max_length))
            continue
        kept.append(example)
    append_rejects(rejects, too_long)
    return kept


def _rows(prompts: Sequence[list[int]], answers: Sequence[list[int]]) -> list[dict[str, list[int]]]:
    return [{"input_ids": p + a, "labels": [-100] * len(p) + a} for p, a in zip(prompts, answers, strict=True)]


def collate_pairs(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """``2B`` right-padded rows (chosen answers, then rejected) with labels on the answers only."""
    prompts = [e["prompt_ids"] for e in examples]
    rows = _rows(prompts, [e["chosen_ids"] for e in examples]) + _rows(prompts, [e["rejected_ids"] for e in examples])
    batch = collate(rows, pad_id)
    batch["units"] = torch.ones(len(examples))
    if all("ref_chosen" in e for e in examples):
        batch["ref_chosen"] = torch.tensor([e["ref_chosen"] for e in examples], dtype=torch.float32)
        batch["ref_rejected"] = torch.tensor([e["ref_rejected"] for e in examples], dtype=torch.float32)
    if any("margin" in e for e in examples):
        batch["margin"] = torch.tensor([e.get("margin", 0.0) for e in examples], dtype=torch.float32)
    return batch


def collate_unpaired(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """``B`` rows of (prompt, answer) and ``B`` mismatched rows (``kl_*``), with the desirable flags."""
    prompts = [e["prompt_ids"] for e in examples]
    batch = collate(_rows(prompts, [e["answer_ids"] for e in examples]), pad_id)
    mismatched = collate(_rows(prompts, [e["kl_answer_ids"] for e in examples]), pad_id)
    batch.update({f"kl_{k}": v for k, v in mismatched.items()})
    batch["desirable"] = torch.tensor([e["desirable"] for e in examples], dtype=torch.bool)
    batch["units"] = torch.ones(len(examples))
    if all("ref_logps" in e for e in examples):
        batch["ref_logps"] = torch.tensor([e["ref_logps"] for e in examples], dtype=torch.float32)
        batch["ref_kl_logps"] = torch.tensor([e["ref_kl_logps"] for e in examples], dtype=torch.float32)
    return batch
