"""What both serving engines keep beside their model: the thread that owns it and the condition it waits on,
admin commands run between two steps, the requests in flight, their counters, the 429 estimate, and how a
request's end reaches its client.

:class:`~tunesmith.serve.batching.BatchingEngine` (in-process) and :class:`~tunesmith.serve.vllm_engine.VLLMEngine`
each hold one :class:`Inflight` and differ only in how they decode.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from tunesmith.errors import ServeError
from tunesmith.serve.engine import Delta, GenerationRequest, QueueFull, Sink

log = logging.getLogger(__name__)

COUNTERS = ("requests", "prompt_tokens", "generated_tokens", "decode_steps", "decoded_rows", "rejected", "errors")


class Row(Protocol):
    """A request in flight, as an engine tracks it (and a ``cancelled`` flag :meth:`Inflight.cancel` sets)."""

    @property
    def request(self) -> GenerationRequest: ...

    @property
    def sink(self) -> Sink: ...

    @property
    def started(self) -> float: ...

    @property
    def generated(self) -> int: ...


class Inflight:
    """The engine thread, its commands and its requests; every method but :meth:`call` is for the engine."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.commands: list[tuple[Callable[[], Any], Future]] = []
        self.by_id: dict[str, Any] = {}  # every request until its end is delivered
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.stopping = False
        self.thread: threading.Thread | None = None
        self._seconds_per_request = 1.0

    def start(self, loop: Callable[[], None], name: str) -> None:
        if self.thread is None:
            self.stopping = False  # a restarted engine (a second app's lifespan) must run again
            self.thread = threading.Thread(target=loop, name=name, daemon=True)
            self.thread.start()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        if self.thread is not None:
            self.thread.join(timeout=30)
            self.thread = None

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the engine thread between two steps (model changes must not race a forward)."""
        if self.thread is None or not self.thread.is_alive():
            return fn()
        future: Future = Future()
        with self.cond:
            self.commands.append((fn, future))
            self.cond.notify()
        return future.result(timeout=600)

    def take_commands(self) -> list[tuple[Callable[[], Any], Future]]:
        """The queued commands (call with ``cond`` held); run them with :meth:`run` outside it."""
        commands, self.commands = self.commands, []
        return commands

    @staticmethod
    def run(commands: list[tuple[Callable[[], Any], Future]]) -> None:
        for fn, future in commands:
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)

    def refuse(self, waiting: int, max_batch: int) -> QueueFull:
        """The 429 for a full queue, with a Retry-After from recent request times."""
        self.counters["rejected"] += 1
        return QueueFull(waiting, max(1.0, math.ceil(waiting / max_batch * self._seconds_per_request)))

    def check_idle(self, model: str) -> None:
        """Refuse to unload ``model`` while requests for it are in flight (queued, admitted or decoding)."""
        users = sum(r.request.model == model for r in self.by_id.values())
        if users:
            raise ServeError(f"adapter '{model}' is in use by {users} requests; unload it when they finish.")

    def cancel(self, request_id: str) -> None:
        row = self.by_id.get(request_id)
        if row is not None:
            row.cancelled = True
            with self.cond:
                self.cond.notify()

    def finish(self, row: Row, reason: str, text: str = "", error: str | None = None) -> None:
        """Send ``row``'s last Delta once (later calls for the same request do nothing) and count its end."""
        if self.by_id.pop(row.request.request_id, None) is None:
            return  # already finished
        key = f"finished_{reason}"
        self.counters[key] = self.counters.get(key, 0) + 1
        elapsed = time.monotonic() - row.started
        self._seconds_per_request = 0.9 * self._seconds_per_request + 0.1 * elapsed
        try:
            row.sink(Delta(text, reason, len(row.request.prompt_ids), row.generated, error))
        except Exception:  # a sink that fails (its client's loop closed) must not stop the others
            log.exception("delivering the end of %s failed", row.request.request_id)
