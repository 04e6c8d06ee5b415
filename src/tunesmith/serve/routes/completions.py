"""``POST /v1/completions``: plain text continuation (no chat template), one or several prompts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from tunesmith.serve.context import Exchange, Served, request_id, served
from tunesmith.serve.errors import ApiError
from tunesmith.serve.generation import (
    Stream,
    check_final,
    refuse_unsupported,
    require_model,
    sampling,
    text_prompt_ids,
)
from tunesmith.serve.protocol import Completion, CompletionChoice, CompletionRequest, Usage
from tunesmith.serve.routes.chat import ERRORS, Record, streamed, submit_choices
from tunesmith.serve.sse import DONE, failure, sse, usage_event

router = APIRouter()


async def create_completion(body: CompletionRequest, request: Request, ctx: Served) -> Any:
    refuse_unsupported(body)
    require_model(ctx.engine, body.model)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if not prompts:
        raise ApiError(400, "prompt is an empty list", param="prompt")
    if body.stream and len(prompts) > 1:
        raise ApiError(400, "stream takes one prompt, not a list", param="prompt")
    encoded = [text_prompt_ids(ctx.engine, p) for p in prompts]
    params = [sampling(body, ctx.settings, ctx.engine, len(ids), 16) for ids in encoded]
    meta = {"id": f"cmpl-{request_id(request)}", "created": int(time.time()), "model": body.model}
    prompt_tokens = sum(len(ids) for ids in encoded)
    exchange = Exchange(request, "completions", body.model, body.prompt, prompt_tokens, body.stream)
    if body.stream:
        stream = submit_choices(ctx, body.model, [(encoded[0], params[0])], 1)[0]
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return streamed(ctx, exchange, lambda record: completion_events(stream, meta, include_usage, record))
    streams = submit_choices(ctx, body.model, list(zip(encoded, params, strict=True)), body.n)
    results = await asyncio.gather(*(s.collect(request) for s in streams))
    for _, final in results:
        check_final(final)
    completion_tokens = sum(final.completion_tokens for _, final in results)
    ctx.log.record(exchange.entry([t for t, _ in results], results[0][1], completion_tokens))
    return Completion(
        **meta,
        choices=[
            CompletionChoice(index=i, text=text, finish_reason=str(final.finish_reason))
            for i, (text, final) in enumerate(results)
        ],
        usage=Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        ),
    )


async def completion_events(
    stream: Stream, meta: dict[str, Any], include_usage: bool, record: Record
) -> AsyncIterator[str]:
    def chunk(text: str, finish: str | None = None) -> str:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return sse({**meta, "object": "text_completion", "choices": [choice]})

    pieces: list[str] = []
    async for delta in stream.deltas():
        pieces.append(delta.text)
        if delta.finish_reason is None:
            if delta.text:
                yield chunk(delta.text)
            continue
        yield failure(delta) or chunk(delta.text, delta.finish_reason)
        if include_usage:
            yield usage_event(meta, "text_completion", delta)
        record("".join(pieces), delta)
    yield DONE


@router.post("/v1/completions", response_model=Completion, responses=ERRORS)
async def completions(body: CompletionRequest, request: Request) -> Any:
    return await create_completion(body, request, served(request))
