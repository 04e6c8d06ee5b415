"""Pure pieces of decoding: picking each row's next token, and releasing text only once it is final.

Every row of a batch has its own temperature, top-p and random generator, so a request's sampled
answer depends on its own seed, not on which other requests share its batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

MIN_TEMPERATURE = 1e-6  # below this, logits / temperature overflows float32: decode greedily
REPLACEMENT = "\ufffd"  # what decoding shows for the first bytes of a character split across tokens


def next_tokens(
    logits: torch.Tensor, temperatures: Sequence[float], top_ps: Sequence[float], generators: Sequence[Any]
) -> list[int]:
    """One token per row of ``logits`` (rows x vocab): argmax where the temperature is 0, else top-p sampling."""
    logits = logits.float()
    greedy = logits.argmax(-1).tolist()
    out = []
    for i, temperature in enumerate(temperatures):
        if temperature < MIN_TEMPERATURE:  # 0 asks for greedy; below float32's range it is greedy in effect
            out.append(int(greedy[i]))
            continue
        # Shifted so the largest logit is 0: a small temperature sends the others to -inf, never to inf - inf.
        probs = torch.softmax((logits[i] - logits[i].max()) / temperature, dim=-1)
        if top_ps[i] < 1.0:
            probs = nucleus(probs, top_ps[i])
        out.append(int(torch.multinomial(probs, 1, generator=generators[i])))
    return out


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the most likely tokens whose probabilities sum to ``top_p`` (always at least one); renormalised."""
    ordered, order = probs.sort(descending=True)
    before = ordered.cumsum(-1) - ordered  # mass of the tokens ranked above each one
    keep = before < top_p
    keep[..., 0] = True  # a top_p too small for float32 (5e-324) still keeps the most likely token
    ordered = torch.where(keep, ordered, torch.zeros_like(ordered))
    kept = torch.zeros_like(probs).scatter(-1, order, ordered)
    return kept / kept.sum()


class TextTail:
    """Incremental detokenisation of one answer that never releases text it might have to take back.

    Held back: a trailing incomplete UTF-8 character (Yorùbá and Hausa diacritics often span tokens),
    and a trailing piece that could be the start of a stop string. When a stop string appears, the text
    before it is the rest of the answer and the stop string itself is never sent (OpenAI's behaviour).
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.ids: list[int] = []
        self.sent = 0
        self.text = ""

    def push(self, token_id: int) -> tuple[str, bool]:
        """Add a token; returns (text now safe to send, whether a stop string ended the answer)."""
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if hits:
            end = max(min(hits), self.sent)
            self.text = text[:end]
            return self._release(end), True
        self.text = text
        return self._release(self._safe_end(text)), False

    def flush(self) -> str:
        """Everything not yet sent (the answer ended without a stop string), as plain decoding shows it."""
        return self._release(len(self.text))

    def _safe_end(self, text: str) -> int:
        end = len(text.rstrip(REPLACEMENT)) if text.endswith(REPLACEMENT) else len(text)
        for stop in self.stop:
            for k in range(min(len(stop) - 1, end), 0, -1):
                if text[end - k : end] == stop[:k]:
                    end -= k
                    break
        return end

    def _release(self, end: int) -> str:
        if end <= self.sent:
            return ""
        piece, self.sent = self.text[self.sent : end], end
        return piece
