"""Label prediction by log-likelihood: each candidate label is scored by the model, the best one wins.

Scoring labels instead of parsing generated text is robust for small models (they need not follow the
answer format), and it is the same computation for the base model and the tuned one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from tunesmith.adapters.prompting import decoder_hidden
from tunesmith.data.format import chat_completion_text, chat_prompt_text, encode
from tunesmith.train.batching import right_pad, token_budget_batches
from tunesmith.train.sft.loss import causal_parts


def label_continuations(tokenizer: Any, labels: Sequence[str], prompt: str = "x") -> dict[str, list[int]]:
    """Token ids of each label as the start of an assistant answer (what training taught the model)."""
    out = {}
    for lab in labels:
        full = encode(tokenizer, chat_completion_text(tokenizer, prompt, lab))
        n = len(encode(tokenizer, lab))
        out[lab] = full[:n]
    return out


def _forward_positions(
    model: Any, rows: list[list[int]], positions: list[list[int]], pad_id: int
) -> list[torch.Tensor]:
    """Log-softmax rows of the LM head at the given positions of each (right-padded) sequence."""
    decoder, head = causal_parts(model)
    ids, mask = right_pad(rows, pad_id)
    device = next(model.parameters()).device
    hidden = decoder_hidden(model, decoder, ids.to(device), mask.to(device))
    out = []
    for i, pos in enumerate(positions):
        out.append(torch.log_softmax(head(hidden[i, pos]).float(), dim=-1))
    return out


@torch.no_grad()
def score_labels(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str | list[dict[str, str]]],
    labels: Sequence[str],
    batch_tokens: int = 8192,
    autocast: bool = False,
    progress: Any = None,
    description: str = "scoring",
) -> list[dict[str, float]]:
    """Sum of log-probabilities of each label's tokens after each prompt: one dict per prompt.

    When every label is one token, one forward per prompt scores all labels (the prompt is shared);
    otherwise each (prompt, label) pair is scored as its own sequence.
    """
    model.eval()
    conts = label_continuations(tokenizer, labels)
    single = all(len(c) == 1 for c in conts.values())
    prompt_ids = [encode(tokenizer, chat_prompt_text(tokenizer, p)) for p in prompts]
    pad = tokenizer.pad_token_id
    device_type = next(model.parameters()).device.type
    ctx = torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast)
    results: list[dict[str, float]] = [{} for _ in prompts]
    jobs: list[tuple[int, str | None]]
    if single:
        jobs = [(i, None) for i in range(len(prompts))]
        seqs = prompt_ids
    else:
        jobs = [(i, lab) for i in range(len(prompts)) for lab in labels]
        seqs = [prompt_ids[i] + conts[lab] for i, lab in jobs]  # type: ignore[index]
    task = progress.add_task(description, total=len(jobs)) if progress else None
    for batch in token_budget_batches([len(s) for s in seqs], batch_tokens, 64):
        rows = [seqs[j] for j in batch]
        if single:
            positions = [[len(r) - 1] for r in rows]
        else:
            positions = []
            for j in batch:
                i, lab = jobs[j]
                start = len(prompt_ids[i]) - 1
                positions.append(list(range(start, start + len(conts[lab]))))  # type: ignore[index]
        with ctx:
            logps = _forward_positions(model, rows, positions, pad)
        for j, lp in zip(batch, logps, strict=True):
            i, lab = jobs[j]
            if single:
                for name, c in conts.items():
                    results[i][name] = float(lp[0, c[0]])
            else:
                targets = torch.tensor(conts[lab], device=lp.device)  # type: ignore[index]
                results[i][lab] = float(lp.gather(-1, targets.unsqueeze(-1)).sum())  # type: ignore[index]
        if progress:
            progress.advance(task, len(batch))
    return results


def predict(scores: list[dict[str, float]]) -> list[str]:
    """The highest-scoring label of each row."""
    return [max(s, key=s.__getitem__) for s in scores]
