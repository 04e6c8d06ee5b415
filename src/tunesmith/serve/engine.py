"""The engine protocol: what the HTTP layer needs from whatever decodes tokens.

Handlers render prompts to token ids, submit a :class:`GenerationRequest` with a sink, and receive
:class:`Delta` pieces of text from the engine's thread until one carries a ``finish_reason``. The
in-process :class:`~tunesmith.serve.batching.BatchingEngine` and :class:`~tunesmith.serve.vllm_engine.VLLMEngine`
(vLLM's scheduler, on CUDA or vLLM's CPU build) implement it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

FINISH_REASONS = ("stop", "length", "timeout", "cancelled", "error")


@dataclass(frozen=True)
class SamplingParams:
    """How to pick tokens: ``temperature`` 0 is greedy; ``seed`` makes sampling repeatable per request."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass
class GenerationRequest:
    """One sequence to generate: prompt token ids, the served model (base or adapter) and sampling."""

    request_id: str
    model: str
    prompt_ids: list[int]
    params: SamplingParams = field(default_factory=SamplingParams)
    timeout_s: float | None = None


@dataclass(frozen=True)
class Delta:
    """New text of one sequence; the last one has a ``finish_reason`` (one of :data:`FINISH_REASONS`)."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


Sink = Callable[[Delta], None]


class QueueFull(Exception):
    """The engine's waiting queue is full: answer 429 and ask the client to retry after ``retry_after`` s."""

    def __init__(self, waiting: int, retry_after: float) -> None:
        super().__init__(f"the server is busy: {waiting} requests are waiting; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class UnknownModel(LookupError):
    """The request names a model (base or adapter) that is not loaded."""


class Engine(Protocol):
    """What a serving backend offers the HTTP layer."""

    tokenizer: Any
    max_context: int
    chat_stops: tuple[str, ...]

    def model_names(self) -> list[str]: ...

    def submit(self, request: GenerationRequest, sink: Sink) -> None:
        """Queue ``request``; ``sink`` is called from the engine's thread. Raises QueueFull, UnknownModel."""
        ...

    def cancel(self, request_id: str) -> None: ...

    def load_adapter(self, name: str, path: str) -> dict[str, Any]: ...

    def unload_adapter(self, name: str) -> None: ...

    def stats(self) -> dict[str, float]: ...

    def start(self) -> None: ...

    def shutdown(self) -> None: ...
