"""The in-process engine: continuous batching over one KV cache, on the CPU or one GPU.

One thread owns the model. Each turn of its loop it runs queued admin commands (adapter load and
unload), admits waiting requests up to ``max_batch`` rows (prefilled together, left-padded, only the
last position's logits computed), then decodes one token for every live row in a single forward. A row
leaves as soon as it stops (EOS or end-of-turn token, a stop string, ``max_tokens``, the context limit,
its deadline, or a client that went away), and a waiting request takes its place at the next turn: the
batch never waits for its slowest member, which is what makes 16 concurrent clients several times faster
than answering them one after another (decoding a small model is bound by reading its weights, and a
batch reads them once per step for all rows).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tunesmith.adapters.prompting import cache_argument
from tunesmith.serve.adapters import AdapterPool
from tunesmith.serve.engine import Delta, GenerationRequest, Sink, UnknownModel
from tunesmith.serve.inflight import Inflight
from tunesmith.serve.kvbatch import KVBatch, positions_from_mask
from tunesmith.serve.sampling import TextTail, next_tokens

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineSettings:
    """Limits of the batching engine.

    Attributes:
        max_batch: rows decoded together; more requests wait.
        max_waiting: requests allowed to wait; beyond it ``submit`` raises QueueFull (HTTP 429).
        prefill_tokens: prompt tokens admitted in one turn (a long prompt is admitted alone).
        max_context: prompt plus answer tokens per row (default: the model's position limit).
    """

    max_batch: int = 16
    max_waiting: int = 64
    prefill_tokens: int = 4096
    max_context: int | None = None


def context_window(model_config: Any, settings: EngineSettings) -> int:
    """Prompt plus answer tokens per row: ``settings.max_context``, at most the model's position limit."""
    limit = getattr(model_config, "max_position_embeddings", None) or 2048
    return min(settings.max_context or limit, limit)


@dataclass
class _Row:
    request: GenerationRequest
    sink: Sink
    tail: TextTail
    generator: torch.Generator | None
    deadline: float | None
    last: int = -1
    generated: int = 0
    cancelled: bool = False
    started: float = field(default_factory=time.monotonic)


class BatchingEngine:
    """Continuous batching with per-row sampling and stopping over an :class:`AdapterPool`."""

    def __init__(
        self,
        pool: AdapterPool,
        tokenizer: Any,
        stop_ids: list[int],
        settings: EngineSettings | None = None,
        chat_stops: tuple[str, ...] = (),
    ) -> None:
        self.pool = pool
        self.chat_stops = chat_stops  # end-of-turn text of templates that close turns without a special token
        self.tokenizer = tokenizer
        self.settings = settings or EngineSettings()
        self.max_context = context_window(pool.model.config, self.settings)
        self.stop_ids = set(stop_ids)
        # how the model's forward names its KV cache (transformers renamed it); read once, not every step
        inner = pool.model.get_base_model() if hasattr(pool.model, "get_base_model") else pool.model
        self._cache_name = cache_argument(inner) or "past_key_values"
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
        self.inflight = Inflight()
        self.counters = self.inflight.counters
        self._waiting: deque[_Row] = deque()
        self._active: list[_Row] = []
        self._kv = KVBatch()

    # --- the protocol -------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return self.pool.names()

    def submit(self, request: GenerationRequest, sink: Sink) -> None:
        if not self.pool.has(request.model):
            raise UnknownModel(request.model)
        params = request.params
        generator = None
        if params.temperature > 0:
            # n > 1 seeds its answers seed, seed + 1...: wrap into the generator's 64 bits
            seed = params.seed % (1 << 64) if params.seed is not None else secrets.randbits(63)
            generator = torch.Generator().manual_seed(seed)
        deadline = time.monotonic() + request.timeout_s if request.timeout_s else None
        row = _Row(request, sink, TextTail(self.tokenizer, params.stop), generator, deadline)
        with self.inflight.cond:
            if len(self._waiting) >= self.settings.max_waiting:
                raise self.inflight.refuse(len(self._waiting), self.settings.max_batch)
            self._waiting.append(row)
            self.inflight.by_id[request.request_id] = row
            self.inflight.cond.notify()

    def cancel(self, request_id: str) -> None:
        self.inflight.cancel(request_id)

    def load_adapter(self, name: str, path: str) -> dict[str, Any]:
        return self.inflight.call(lambda: self.pool.load(name, Path(path)))

    def unload_adapter(self, name: str) -> None:
        def unload() -> None:
            self.inflight.check_idle(name)
            self.pool.unload(name)

        self.inflight.call(unload)

    def stats(self) -> dict[str, float]:
        return {**self.counters, "waiting": len(self._waiting), "active": len(self._active)}

    def start(self) -> None:
        self.inflight.start(self._loop, "tunesmith-engine")

    def shutdown(self) -> None:
        self.inflight.stop()
        for row in [*self._active, *self._waiting]:
            self._finish(row, "cancelled")
        self._active, self._kv = [], KVBatch()
        self._waiting.clear()

    # --- the loop -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        inflight = self.inflight
        while True:
            with inflight.cond:
                while not (inflight.stopping or self._waiting or self._active or inflight.commands):
                    inflight.cond.wait()
                if inflight.stopping:
                    return
                commands = inflight.take_commands()
                admitted = self._take()
            inflight.run(commands)
            try:
                self.step(admitted)
            except Exception as exc:  # a failing forward must not take the server down: fail this batch
                log.exception("engine step failed")
                self.counters["errors"] += 1
                for row in [*self._active, *admitted]:
                    self._finish(row, "error", error=f"{type(exc).__name__}: {exc}")
                self._active, self._kv = [], KVBatch()

    def step(self, admitted: list[_Row]) -> None:
        """Prefill ``admitted`` rows, drop cancelled and late rows, decode one token for every live row."""
        with torch.inference_mode():
            if admitted:
                self._prefill(admitted)
            self._drop([r for r in self._active if self._expired(r)])
            if self._active:
                self._decode()

    def _take(self) -> list[_Row]:
        taken: list[_Row] = []
        budget = self.settings.prefill_tokens
        while self._waiting and len(self._active) + len(taken) < self.settings.max_batch:
            row = self._waiting[0]
            if self._expired(row):
                self._waiting.popleft()
                self._finish(row, "cancelled" if row.cancelled else "timeout")
                continue
            if taken and len(row.request.prompt_ids) > budget:
                break
            budget -= len(self._waiting.popleft().request.prompt_ids)
            taken.append(row)
        return taken

    def _expired(self, row: _Row) -> bool:
        return row.cancelled or (row.deadline is not None and time.monotonic() > row.deadline)

    def _forward(
        self, input_ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, rows: list[_Row], cache: Any
    ) -> Any:
        model = self.pool.model
        extra = self.pool.forward_kwargs([r.request.model for r in rows])
        if cache is not None:
            extra[self._cache_name] = cache
        out = model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1, **extra
        )
        new_cache = out.get("cache", None) if hasattr(out, "get") else None
        return out.logits[:, -1], new_cache if new_cache is not None else out.past_key_values

    def _prefill(self, rows: list[_Row]) -> None:
        device = next(self.pool.model.parameters()).device
        length = max(len(r.request.prompt_ids) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            prompt = row.request.prompt_ids
            ids[i, length - len(prompt) :] = torch.tensor(prompt)
            mask[i, length - len(prompt) :] = 1
            self.counters["requests"] += 1
            self.counters["prompt_tokens"] += len(prompt)
        ids, mask = ids.to(device), mask.to(device)
        logits, cache = self._forward(ids, mask, positions_from_mask(mask), rows, None)
        self._kv.add(cache, mask)
        self._active.extend(rows)
        self._advance(rows, logits)

    def _decode(self) -> None:
        rows = self._active
        mask, positions = self._kv.grow()
        device = mask.device
        ids = torch.tensor([[r.last] for r in rows], device=device)
        logits, cache = self._forward(ids, mask, positions, rows, self._kv.cache)
        self._kv.cache = cache
        self.counters["decode_steps"] += 1
        self.counters["decoded_rows"] += len(rows)
        self._advance(rows, logits)

    def _advance(self, rows: list[_Row], logits: torch.Tensor) -> None:
        params = [r.request.params for r in rows]
        tokens = next_tokens(
            logits, [p.temperature for p in params], [p.top_p for p in params], [r.generator for r in rows]
        )
        finished = [row for row, token in zip(rows, tokens, strict=True) if self._push(row, token)]
        self._drop(finished, already_finished=True)

    def _push(self, row: _Row, token: int) -> bool:
        """Take one sampled token; True when the row has finished (its last Delta sent)."""
        row.last = token
        row.generated += 1
        self.counters["generated_tokens"] += 1
        if token in self.stop_ids:
            self._finish(row, "stop")
            return True
        text, hit_stop = row.tail.push(token)
        if hit_stop:
            self._finish(row, "stop", text)
            return True
        total = len(row.request.prompt_ids) + row.generated
        if row.generated >= row.request.params.max_tokens or total >= self.max_context:
            self._finish(row, "length", text + row.tail.flush())
            return True
        if text:
            row.sink(Delta(text))
        return False

    def _drop(self, rows: list[_Row], already_finished: bool = False) -> None:
        if not rows:
            return
        gone = {id(r) for r in rows}
        if not already_finished:
            for row in rows:
                self._finish(row, "cancelled" if row.cancelled else "timeout")
        keep = [i for i, r in enumerate(self._active) if id(r) not in gone]
        self._kv.keep(keep)
        self._active = [self._active[i] for i in keep]

    def _finish(self, row: _Row, reason: str, text: str = "", error: str | None = None) -> None:
        self.inflight.finish(row, reason, text, error)
