"""What the prompt-learning methods (prompt, prefix, ptuning) share: the decoder call.

These methods train virtual tokens rather than weights: prompt tuning and P-tuning prepend learned input
embeddings, prefix tuning prepends learned keys and values in every layer. PEFT's model ``forward`` adds
them, but tunesmith's losses and scorers run the decoder and the LM head separately (so the head only
sees labelled positions); :func:`decoder_hidden` adds the virtual tokens exactly as PEFT's forward does
and returns hidden states aligned with the real tokens (tested equal to PEFT's own logits).

Each example needs its own virtual tokens, so these methods cannot pack several examples into one row.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


def is_prompt_learning(model: Any) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(config is not None and config.is_prompt_learning)


def cache_argument(module: Any) -> str | None:
    """The name under which ``module.forward`` takes a key/value cache (transformers 5.2x renamed it)."""
    params = inspect.signature(module.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


def decoder_hidden(
    model: Any, decoder: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, **extra: Any
) -> torch.Tensor:
    """Last hidden states ``(B, T, H)`` of ``input_ids``, with the method's virtual tokens in front if any."""
    if not is_prompt_learning(model):
        return decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **extra).last_hidden_state
    if "cu_seq_lens_q" in extra:
        raise ValueError("prompt-learning methods cannot train on packed rows; set train.packing: false")
    batch, n = input_ids.shape[0], model.active_peft_config.num_virtual_tokens
    if attention_mask is not None:
        prefix = torch.ones(batch, n, dtype=attention_mask.dtype, device=attention_mask.device)
        attention_mask = torch.cat([prefix, attention_mask], dim=1)
    prompt = model.get_prompt(batch_size=batch)
    if model.active_peft_config.peft_type == "PREFIX_TUNING":  # prompt is a cache of per-layer keys and values
        cache = {cache_argument(decoder) or "past_key_values": prompt}
        return decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=True, **cache).last_hidden_state
    embeds = decoder.get_input_embeddings()(input_ids)
    embeds = torch.cat([prompt.to(embeds.dtype), embeds], dim=1)
    return decoder(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False).last_hidden_state[:, n:]
