"""Batched greedy generation with the KV cache, and label parsing for classification by generation.

Evaluation must never need more memory than training, so prompts are generated in batches of a fixed
number of rows, each batch holding one key/value cache of ``batch_size x (prompt + max_new_tokens)``
positions that is freed before the next. The cache turns each new token into one position's forward
instead of a forward over the whole sequence (quadratic work without it).

Prompts are sorted by length so a batch wastes little on padding, and padded on the left so that every
row's next token sits in the last column; the attention mask hides the padding and position ids are
derived from it, so greedy outputs do not depend on the batch a prompt lands in (tested against
one-by-one generation and against a cache-free greedy loop). Plain models and weight adapters (LoRA,
DoRA, IA3, bottleneck) go through transformers' ``generate``; the prompt-learning methods need a loop of
their own (:func:`_greedy_virtual_tokens`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from tunesmith.adapters.prompting import cache_argument, is_prompt_learning
from tunesmith.data.format import chat_completion_text, chat_prompt_text, encode
from tunesmith.train.sft.loss import causal_parts

Prompt = str | list[dict[str, str]]
_SENTINEL = "Zq7answerZq7"


def end_of_turn(tokenizer: Any) -> tuple[int | None, str | None]:
    """What the chat template writes right after an assistant answer: a special token id, or else a text.

    The template is rendered with a sentinel answer and the text after it is inspected: ChatML (SmolLM2,
    Qwen) closes a turn with ``<|im_end|>``, Llama 3 with ``<|eot_id|>``, Gemma with ``<end_of_turn>``,
    Phi-3 with ``<|end|>``. These are often not the tokenizer's ``eos_token``, and a model that emits
    one has finished its answer, so generation must stop there. When the marker is plain text (a template
    without special tokens) it is returned as a stop string instead; ``(None, None)`` when there is none.
    """
    try:
        after = chat_completion_text(tokenizer, "x", _SENTINEL)
    except Exception:  # DataError (prompt not a prefix of the chat) or a template that refuses this chat
        return None, None
    if _SENTINEL not in after:
        return None, None
    tail = after[after.index(_SENTINEL) + len(_SENTINEL) :].strip()
    if not tail:
        return None, None
    ids = encode(tokenizer, tail)
    added = set(getattr(tokenizer, "added_tokens_decoder", {}) or {}) | set(tokenizer.all_special_ids)
    if ids and ids[0] in added:
        return ids[0], None
    return None, tail


def stop_ids_and_strings(tokenizer: Any, model: Any, stop: Sequence[str] | None) -> tuple[list[int], list[str]]:
    """Token ids that end an answer (tokenizer and model EOS, the template's end of turn) and stop strings."""
    ids: list[int] = []
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for candidate in [tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])]:
        if candidate is not None and candidate not in ids:
            ids.append(int(candidate))
    turn_id, turn_text = end_of_turn(tokenizer)
    if turn_id is not None and turn_id not in ids:
        ids.append(turn_id)
    strings = [s for s in (stop or []) if s]
    if turn_text and turn_text not in strings:
        strings.append(turn_text)
    return ids, strings


def _left_pad(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, T)`` input ids and attention mask with each row right-aligned (padding on the left)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def _cut(tokens: list[int], stop_ids: set[int]) -> list[int]:
    """The tokens before the first stop id (what follows is the stop token and padding)."""
    return next((tokens[:i] for i, t in enumerate(tokens) if t in stop_ids), tokens)


def _batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Row indices in batches of at most ``batch_size``, longest prompts first (similar lengths pad little).

    Longest first: a batch that does not fit in memory fails at once, not at the end of the run.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _hits_stop(tokenizer: Any, tokens: list[int], strings: list[str]) -> bool:
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    return any(s in text for s in strings)


def _greedy_virtual_tokens(
    model: Any, tokenizer: Any, ids: torch.Tensor, mask: torch.Tensor, steps: int, stop: set[int], strings: list[str]
) -> torch.Tensor:
    """Greedy decoding with the KV cache for prompt, P-tuning and prefix tuning: new ids ``(B, <= steps)``.

    PEFT's ``generate`` cannot be used for these: it drops position ids, so left padding shifts the
    positions of prompt-tuned rows, and under transformers 5 the prefix cache it passes is ignored. Here
    the virtual tokens come first exactly as in training (:func:`decoder_hidden`): real token ``k`` of a
    row sits at position ``num_virtual_tokens + k`` whatever its padding.
    """
    decoder, head = causal_parts(model)
    n, (batch, _) = model.active_peft_config.num_virtual_tokens, ids.shape
    ones = torch.ones(batch, n, dtype=mask.dtype, device=mask.device)
    full_mask = torch.cat([ones, mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0) + n
    cache_name = cache_argument(decoder) or "past_key_values"
    prompt = model.get_prompt(batch_size=batch)
    if model.active_peft_config.peft_type == "PREFIX_TUNING":  # the prompt is a cache of per-layer keys/values
        inputs: dict[str, Any] = {"input_ids": ids, cache_name: prompt}
    else:
        embeds = decoder.get_input_embeddings()(ids)
        inputs = {"inputs_embeds": torch.cat([prompt.to(embeds.dtype), embeds], dim=1)}
        virtual = torch.arange(n, device=ids.device).expand(batch, n)
        positions = torch.cat([virtual, positions], dim=1)
    out = decoder(**inputs, attention_mask=full_mask, position_ids=positions, use_cache=True)
    new: list[torch.Tensor] = []
    done = torch.zeros(batch, dtype=torch.bool, device=ids.device)
    stop_ids = torch.tensor(sorted(stop), device=ids.device)
    for step in range(steps):
        token = head(out.last_hidden_state[:, -1]).argmax(-1)
        token = torch.where(done, stop_ids[0], token)
        new.append(token)
        done |= torch.isin(token, stop_ids)
        if strings:
            rows = torch.stack(new, dim=1).tolist()
            done |= torch.tensor([_hits_stop(tokenizer, r, strings) for r in rows], device=done.device)
        if bool(done.all()) or step == steps - 1:
            break
        full_mask = torch.cat([full_mask, torch.ones_like(full_mask[:, :1])], dim=1)
        positions = positions[:, -1:] + 1
        cache = {cache_name: out.past_key_values}
        out = decoder(
            input_ids=token[:, None], attention_mask=full_mask, position_ids=positions, use_cache=True, **cache
        )
    return torch.stack(new, dim=1) if new else ids[:, :0]


@torch.no_grad()
def generate_token_ids(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    stop: Sequence[str] | None = None,
    autocast: bool = False,
    progress: Any = None,
    description: str = "generate",
) -> list[list[int]]:
    """The new token ids of each prompt's greedy answer, before the first stop token, in input order.

    See :func:`generate`; a stop string ends a row's generation here, but the ids are not trimmed to it.
    """
    if batch_size < 1 or max_new_tokens < 0:
        raise ValueError(f"batch_size must be >= 1 and max_new_tokens >= 0, got {batch_size}, {max_new_tokens}")
    model.eval()
    rows = [encode(tokenizer, chat_prompt_text(tokenizer, p)) for p in prompts]
    stop_ids, stop_strings = stop_ids_and_strings(tokenizer, model, stop)
    if not stop_ids:
        raise ValueError("the tokenizer has no eos token and the chat template no end-of-turn token")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    device = next(model.parameters()).device
    ctx = torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast)
    virtual = is_prompt_learning(model)
    options: dict[str, Any] = {"stop_strings": stop_strings, "tokenizer": tokenizer} if stop_strings else {}
    results: list[list[int]] = [[] for _ in rows]
    task = progress.add_task(description, total=len(rows)) if progress else None
    for batch in _batches([len(r) for r in rows], batch_size):
        ids, mask = _left_pad([rows[i] for i in batch], pad_id, device)
        if max_new_tokens > 0:
            with ctx:
                if virtual:
                    new = _greedy_virtual_tokens(
                        model, tokenizer, ids, mask, max_new_tokens, {*stop_ids}, stop_strings
                    )
                else:
                    out = model.generate(
                        input_ids=ids,
                        attention_mask=mask,
                        max_new_tokens=max_new_tokens,
                        do_sample=False,
                        num_beams=1,
                        repetition_penalty=1.0,
                        use_cache=True,
                        eos_token_id=stop_ids,
                        pad_token_id=pad_id,
                        **options,
                    )
                    new = out[:, ids.shape[1] :]
            for i, tokens in zip(batch, new.tolist(), strict=True):  # rows that finished early are padded
                results[i] = _cut(tokens, {*stop_ids, pad_id})
        if progress:
            progress.advance(task, len(batch))
    return results


def trim_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Prompt],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    stop: Sequence[str] | None = None,
    autocast: bool = False,
    progress: Any = None,
    description: str = "generate",
) -> list[str]:
    """Greedy answers to ``prompts`` (user strings or message lists), rendered with the chat template.

    Greedy decoding makes evaluation deterministic, so a base model and its tuned version are compared on
    the same footing (lm-evaluation-harness's ``generate_until`` tasks default to it too); the model's own
    sampling and repetition-penalty settings are overridden. Generation of a row stops at
    the tokenizer's or model's EOS, at the chat template's end-of-turn token (:func:`end_of_turn`), at any
    of the ``stop`` strings (the text is cut before it), or after ``max_new_tokens``. Only the new tokens
    are decoded (special tokens skipped) and the text is stripped of surrounding whitespace.

    Works for plain transformers models and PEFT-wrapped ones, virtual-token methods included.
    ``batch_size`` rows are generated at once: memory is bounded by ``batch_size x (longest prompt +
    max_new_tokens)`` cached positions, and the LM head only ever sees the last position.

    Returns:
        One string per prompt, in the order of ``prompts``.
    """
    tokens = generate_token_ids(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        stop=stop,
        autocast=autocast,
        progress=progress,
        description=description,
    )
    _, strings = stop_ids_and_strings(tokenizer, model, stop)
    return [trim_at_stop(tokenizer.decode(t, skip_special_tokens=True), strings).strip() for t in tokens]


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a free-form answer names: the earliest whole-word, case-insensitive match in ``text``.

    Used when a causal LM classifies by generating (``eval.classify_by: generate``) rather than by scoring
    each label's likelihood. The earliest mention wins because answers like "Positive. It is not negative"
    name their choice first; at equal positions the longest label wins ("very negative" over "very").
    "Whole word" means no letter, digit or underscore (any script) directly before or after the match.

    Returns:
        The label as spelled in ``labels``, or None when no label appears (the caller counts it wrong and
        reports how many answers were unparseable).
    """
    best: tuple[int, int, str] | None = None
    for label in labels:
        if not label.strip():
            continue
        match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, flags=re.IGNORECASE)
        if match and (best is None or (match.start(), -len(label)) < best[:2]):
            best = (match.start(), -len(label), label)
    return best[2] if best else None
