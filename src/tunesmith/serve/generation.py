"""Shared by the completion handlers: request -> prompt ids and sampling, and the engine -> asyncio bridge."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from tunesmith.serve.engine import Delta, Engine, GenerationRequest, QueueFull, SamplingParams, UnknownModel
from tunesmith.serve.errors import ApiError
from tunesmith.serve.protocol import ChatCompletionRequest, CompletionRequest
from tunesmith.serve.settings import ServerSettings


def refuse_unsupported(body: ChatCompletionRequest | CompletionRequest) -> None:
    """Options that would change the answer and that this server cannot honour: a 400 naming each."""
    if body.logprobs:
        raise ApiError(400, "logprobs are not supported by this server", param="logprobs")
    if isinstance(body, ChatCompletionRequest) and body.tools:
        raise ApiError(400, "tools (function calling) are not supported by this server", param="tools")
    if isinstance(body, CompletionRequest) and body.echo:
        raise ApiError(400, "echo is not supported by this server", param="echo")
    if body.stream and body.n > 1:
        raise ApiError(400, "n > 1 is only supported without stream", param="n")


def require_model(engine: Engine, model: str) -> None:
    """A 404 for a model the engine does not serve, before any work is done for the request."""
    if model not in engine.model_names():
        raise ApiError(
            404,
            f"The model '{model}' does not exist; GET /v1/models lists the served ones.",
            param="model",
            code="model_not_found",
        )


def chat_prompt_ids(engine: Engine, body: ChatCompletionRequest) -> list[int]:
    """The chat template's rendering of the messages, ending where the assistant's answer starts."""
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    try:
        text = engine.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja2 TemplateError, or a template that raises on this role order
        raise ApiError(400, f"the model's chat template refused these messages: {exc}", param="messages") from None
    return list(engine.tokenizer(text, add_special_tokens=False)["input_ids"])


def text_prompt_ids(engine: Engine, prompt: str) -> list[int]:
    ids = list(engine.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ApiError(400, "the prompt is empty", param="prompt")
    return ids


def sampling(body: Any, settings: ServerSettings, engine: Engine, prompt_tokens: int, default: int) -> SamplingParams:
    """Sampling parameters with the limits applied: too long a request is a 400, never a silent cut."""
    asked = getattr(body, "max_completion_tokens", None) or body.max_tokens
    if asked is not None and asked > settings.max_tokens_limit:
        raise ApiError(
            400, f"max_tokens {asked} is over this server's limit of {settings.max_tokens_limit}", param="max_tokens"
        )
    room = engine.max_context - prompt_tokens
    if room < 1:
        raise ApiError(
            400,
            f"the prompt has {prompt_tokens} tokens; this model's context is {engine.max_context}",
            param="messages",
            code="context_length_exceeded",
        )
    if asked is not None and asked > room:
        raise ApiError(
            400,
            f"prompt ({prompt_tokens} tokens) + max_tokens ({asked}) exceeds this model's context of "
            f"{engine.max_context} tokens",
            param="max_tokens",
            code="context_length_exceeded",
        )
    max_tokens = asked if asked is not None else min(default, settings.max_tokens_limit, room)
    return SamplingParams(max_tokens, body.temperature, body.top_p, body.seed, body.stops())


class Stream:
    """One submitted sequence; its deltas arrive on this event loop's queue from the engine's thread."""

    def __init__(self, engine: Engine, request: GenerationRequest) -> None:
        self.engine, self.request = engine, request
        self.queue: asyncio.Queue[Delta] = asyncio.Queue()
        self.finished = False
        loop = asyncio.get_running_loop()

        def sink(delta: Delta) -> None:
            with contextlib.suppress(RuntimeError):  # the event loop has closed (server shutting down)
                loop.call_soon_threadsafe(self.queue.put_nowait, delta)

        try:
            engine.submit(request, sink)
        except QueueFull as exc:
            raise ApiError(
                429,
                str(exc),
                "rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(int(exc.retry_after))},
            ) from None
        except UnknownModel:
            raise ApiError(
                404,
                f"The model '{request.model}' does not exist; GET /v1/models lists the served ones.",
                param="model",
                code="model_not_found",
            ) from None

    async def deltas(self) -> AsyncIterator[Delta]:
        """The deltas until the final one; cancels the sequence if the consumer stops early."""
        try:
            while True:
                delta = await self.queue.get()
                if delta.finish_reason:
                    self.finished = True
                yield delta
                if self.finished:
                    return
        finally:
            if not self.finished:
                self.engine.cancel(self.request.request_id)

    async def collect(self, request: Request, poll_s: float = 0.5) -> tuple[str, Delta]:
        """The whole answer; gives up (and cancels) when the HTTP client disconnects while waiting."""
        pieces: list[str] = []
        try:
            while True:
                try:
                    delta = await asyncio.wait_for(self.queue.get(), poll_s)
                except TimeoutError:
                    if await request.is_disconnected():
                        raise asyncio.CancelledError from None
                    continue
                pieces.append(delta.text)
                if delta.finish_reason:
                    self.finished = True
                    return "".join(pieces), delta
        finally:
            if not self.finished:
                self.engine.cancel(self.request.request_id)


def submit(engine: Engine, model: str, prompt_ids: list[int], params: SamplingParams, timeout_s: float) -> Stream:
    request = GenerationRequest(uuid.uuid4().hex, model, prompt_ids, params, timeout_s)
    return Stream(engine, request)


def check_final(final: Delta) -> None:
    """Turn an engine-side failure into the HTTP error a non-streamed answer returns."""
    if final.finish_reason == "timeout":
        raise ApiError(504, "the request ran past the server's time limit", "timeout_error", code="timeout")
    if final.finish_reason == "error":
        raise ApiError(500, f"generation failed: {final.error}", "server_error")
