"""``POST /v1/chat/completions``: the chat template renders the messages; answers stream as SSE or come whole."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from tunesmith.serve.context import Exchange, Served, request_id, served
from tunesmith.serve.engine import Delta, SamplingParams
from tunesmith.serve.errors import ApiError, documented
from tunesmith.serve.generation import (
    Stream,
    chat_prompt_ids,
    check_final,
    refuse_unsupported,
    require_model,
    sampling,
    submit,
)
from tunesmith.serve.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    Usage,
)
from tunesmith.serve.sse import DONE, HEADERS, STREAMED, failure, sse, usage_event

router = APIRouter()
ERRORS = {**documented(404, 429, 504), **STREAMED}
Record = Callable[[str, Delta], None]


def submit_choices(ctx: Served, model: str, prompts: list[tuple[list[int], SamplingParams]], n: int) -> list[Stream]:
    """``n`` sequences for each (prompt ids, sampling) (seed, seed+1, ... when seeded); all or none are queued."""
    streams: list[Stream] = []
    try:
        for prompt_ids, params in prompts:
            for i in range(n):
                seeded = replace(params, seed=params.seed + i) if params.seed is not None else params
                streams.append(submit(ctx.engine, model, prompt_ids, seeded, ctx.settings.request_timeout_s))
    except ApiError:
        for stream in streams:
            ctx.engine.cancel(stream.request.request_id)
        raise
    return streams


def streamed(ctx: Served, exchange: Exchange, events: Callable[[Record], AsyncIterator[str]]) -> StreamingResponse:
    """An SSE response whose finished answer goes to the request log."""

    def record(text: str, final: Delta) -> None:
        ctx.log.record(exchange.entry([text], final, final.completion_tokens))

    return StreamingResponse(events(record), media_type="text/event-stream", headers=HEADERS)


async def create_chat_completion(body: ChatCompletionRequest, request: Request, ctx: Served) -> Any:
    refuse_unsupported(body)
    require_model(ctx.engine, body.model)
    prompt_ids = chat_prompt_ids(ctx.engine, body)
    params = sampling(body, ctx.settings, ctx.engine, len(prompt_ids), ctx.settings.default_max_tokens)
    if ctx.engine.chat_stops:  # the template ends a turn with plain text: stop there as at an EOS token
        params = replace(params, stop=tuple(dict.fromkeys([*params.stop, *ctx.engine.chat_stops])))
    meta = {"id": f"chatcmpl-{request_id(request)}", "created": int(time.time()), "model": body.model}
    prompt = [m.model_dump(exclude_none=True) for m in body.messages]
    exchange = Exchange(request, "chat", body.model, prompt, len(prompt_ids), body.stream)
    if body.stream:
        stream = submit_choices(ctx, body.model, [(prompt_ids, params)], 1)[0]
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return streamed(ctx, exchange, lambda record: chat_events(stream, meta, include_usage, record))
    streams = submit_choices(ctx, body.model, [(prompt_ids, params)], body.n)
    results = await asyncio.gather(*(s.collect(request) for s in streams))
    for _, final in results:
        check_final(final)
    completion_tokens = sum(final.completion_tokens for _, final in results)
    ctx.log.record(exchange.entry([t for t, _ in results], results[0][1], completion_tokens))
    return ChatCompletion(
        **meta,
        choices=[
            ChatChoice(index=i, message=AssistantMessage(content=text), finish_reason=str(final.finish_reason))
            for i, (text, final) in enumerate(results)
        ],
        usage=Usage(
            prompt_tokens=len(prompt_ids),
            completion_tokens=completion_tokens,
            total_tokens=len(prompt_ids) + completion_tokens,
        ),
    )


async def chat_events(stream: Stream, meta: dict[str, Any], include_usage: bool, record: Record) -> AsyncIterator[str]:
    """SSE chunks as OpenAI sends them: the role first, then content pieces, the finish reason, usage, [DONE]."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**meta, "object": "chat.completion.chunk", "choices": [choice]})

    yield chunk({"role": "assistant", "content": ""})
    pieces: list[str] = []
    async for delta in stream.deltas():
        if delta.text:
            pieces.append(delta.text)
            yield chunk({"content": delta.text})
        if delta.finish_reason is None:
            continue
        yield failure(delta) or chunk({}, delta.finish_reason)
        if include_usage:
            yield usage_event(meta, "chat.completion.chunk", delta)
        record("".join(pieces), delta)
    yield DONE


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=ERRORS)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    return await create_chat_completion(body, request, served(request))
