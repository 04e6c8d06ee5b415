"""``POST /v1/chat/completions``: the chat template renders the messages; answers stream as SSE or come whole."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from tunesmith.serve.context import Served, log_entry, request_id, served
from tunesmith.serve.errors import ApiError, error_body
from tunesmith.serve.generation import (
    Stream,
    chat_prompt_ids,
    check_final,
    refuse_unsupported,
    sampling,
    submit,
)
from tunesmith.serve.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    ErrorBody,
    Usage,
)

router = APIRouter()
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 404, 413, 429, 504)}


def sse(payload: dict[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)}\n\n"


def submit_choices(ctx: Served, model: str, prompt_ids: list[int], params: Any, n: int) -> list[Stream]:
    """``n`` sequences for one prompt (seed, seed+1, ... when seeded); all or none are queued."""
    streams: list[Stream] = []
    try:
        for i in range(n):
            seeded = replace(params, seed=params.seed + i) if params.seed is not None else params
            streams.append(submit(ctx.engine, model, prompt_ids, seeded, ctx.settings.request_timeout_s))
    except ApiError:
        for stream in streams:
            ctx.engine.cancel(stream.request.request_id)
        raise
    return streams


async def create_chat_completion(body: ChatCompletionRequest, request: Request, ctx: Served) -> Any:
    started = time.perf_counter()
    refuse_unsupported(body)
    prompt_ids = chat_prompt_ids(ctx.engine, body)
    params = sampling(body, ctx.settings, ctx.engine, len(prompt_ids), ctx.settings.default_max_tokens)
    if ctx.engine.chat_stops:  # the template ends a turn with plain text: stop there as at an EOS token
        params = replace(params, stop=tuple(dict.fromkeys([*params.stop, *ctx.engine.chat_stops])))
    meta = {"id": f"chatcmpl-{request_id(request)}", "created": int(time.time()), "model": body.model}
    prompt = [m.model_dump(exclude_none=True) for m in body.messages]
    if body.stream:
        stream = submit_choices(ctx, body.model, prompt_ids, params, 1)[0]
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def record(text: str, final: Any) -> None:
            ctx.log.record(
                log_entry(
                    request,
                    "chat",
                    body.model,
                    prompt,
                    [text],
                    final,
                    len(prompt_ids),
                    final.completion_tokens,
                    started,
                    True,
                )
            )

        events = chat_events(stream, meta, include_usage, record)
        return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
    streams = submit_choices(ctx, body.model, prompt_ids, params, body.n)
    results = await asyncio.gather(*(s.collect(request) for s in streams))
    for _, final in results:
        check_final(final)
    completion_tokens = sum(final.completion_tokens for _, final in results)
    ctx.log.record(
        log_entry(
            request,
            "chat",
            body.model,
            prompt,
            [t for t, _ in results],
            results[0][1],
            len(prompt_ids),
            completion_tokens,
            started,
            False,
        )
    )
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


async def chat_events(stream: Stream, meta: dict[str, Any], include_usage: bool, record: Any) -> AsyncIterator[str]:
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
        if delta.finish_reason in ("timeout", "error"):
            kind = "timeout_error" if delta.finish_reason == "timeout" else "server_error"
            yield sse(error_body(delta.error or f"generation ended: {delta.finish_reason}", kind))
        else:
            yield chunk({}, delta.finish_reason)
        if include_usage:
            usage = {
                "prompt_tokens": delta.prompt_tokens,
                "completion_tokens": delta.completion_tokens,
                "total_tokens": delta.prompt_tokens + delta.completion_tokens,
            }
            yield sse({**meta, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        record("".join(pieces), delta)
    yield sse("[DONE]")


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=ERRORS)
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
    return await create_chat_completion(body, request, served(request))
