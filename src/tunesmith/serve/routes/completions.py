"""``POST /v1/completions``: plain text continuation (no chat template), one or several prompts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from tunesmith.serve.context import Served, log_entry, request_id, served
from tunesmith.serve.errors import ApiError, error_body
from tunesmith.serve.generation import Stream, check_final, refuse_unsupported, sampling, text_prompt_ids
from tunesmith.serve.protocol import Completion, CompletionChoice, CompletionRequest, Usage
from tunesmith.serve.routes.chat import ERRORS, SSE_HEADERS, sse, submit_choices

router = APIRouter()


async def create_completion(body: CompletionRequest, request: Request, ctx: Served) -> Any:
    started = time.perf_counter()
    refuse_unsupported(body)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if not prompts:
        raise ApiError(400, "prompt is an empty list", param="prompt")
    if body.stream and len(prompts) > 1:
        raise ApiError(400, "stream takes one prompt, not a list", param="prompt")
    encoded = [text_prompt_ids(ctx.engine, p) for p in prompts]
    params = [sampling(body, ctx.settings, ctx.engine, len(ids), 16) for ids in encoded]
    meta = {"id": f"cmpl-{request_id(request)}", "created": int(time.time()), "model": body.model}
    if body.stream:
        stream = submit_choices(ctx, body.model, encoded[0], params[0], 1)[0]
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def record(text: str, final: Any) -> None:
            ctx.log.record(
                log_entry(
                    request,
                    "completions",
                    body.model,
                    prompts[0],
                    [text],
                    final,
                    len(encoded[0]),
                    final.completion_tokens,
                    started,
                    True,
                )
            )

        return StreamingResponse(
            completion_events(stream, meta, include_usage, record), media_type="text/event-stream", headers=SSE_HEADERS
        )
    streams: list[Stream] = []
    try:
        for ids, p in zip(encoded, params, strict=True):
            streams += submit_choices(ctx, body.model, ids, p, body.n)
    except ApiError:
        for stream in streams:
            ctx.engine.cancel(stream.request.request_id)
        raise
    results = await asyncio.gather(*(s.collect(request) for s in streams))
    for _, final in results:
        check_final(final)
    prompt_tokens = sum(len(ids) for ids in encoded)
    completion_tokens = sum(final.completion_tokens for _, final in results)
    ctx.log.record(
        log_entry(
            request,
            "completions",
            body.model,
            prompts,
            [t for t, _ in results],
            results[0][1],
            prompt_tokens,
            completion_tokens,
            started,
            False,
        )
    )
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
    stream: Stream, meta: dict[str, Any], include_usage: bool, record: Any
) -> AsyncIterator[str]:
    def chunk(text: str, finish: str | None = None) -> str:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return sse({**meta, "object": "text_completion", "choices": [choice]})

    pieces: list[str] = []
    async for delta in stream.deltas():
        if delta.finish_reason in ("timeout", "error"):
            kind = "timeout_error" if delta.finish_reason == "timeout" else "server_error"
            yield sse(error_body(delta.error or f"generation ended: {delta.finish_reason}", kind))
        elif delta.text or delta.finish_reason:
            pieces.append(delta.text)
            yield chunk(delta.text, delta.finish_reason)
        if delta.finish_reason:
            if include_usage:
                usage = {
                    "prompt_tokens": delta.prompt_tokens,
                    "completion_tokens": delta.completion_tokens,
                    "total_tokens": delta.prompt_tokens + delta.completion_tokens,
                }
                yield sse({**meta, "object": "text_completion", "choices": [], "usage": usage})
            record("".join(pieces), delta)
    yield sse("[DONE]")


@router.post("/v1/completions", response_model=Completion, responses=ERRORS)
async def completions(body: CompletionRequest, request: Request) -> Any:
    return await create_completion(body, request, served(request))
