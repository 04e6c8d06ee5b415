"""Server-sent events as OpenAI streams them: ``data: {json}`` blocks, the end of an answer, ``[DONE]``."""

from __future__ import annotations

import json
from typing import Any

from tunesmith.serve.engine import Delta
from tunesmith.serve.errors import error_body

DONE = "data: [DONE]\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def usage(delta: Delta) -> dict[str, int]:
    return {
        "prompt_tokens": delta.prompt_tokens,
        "completion_tokens": delta.completion_tokens,
        "total_tokens": delta.prompt_tokens + delta.completion_tokens,
    }


def failure(delta: Delta) -> str | None:
    """An error event when the engine ended the answer by timeout or failure (None for a normal end)."""
    if delta.finish_reason not in ("timeout", "error"):
        return None
    kind = "timeout_error" if delta.finish_reason == "timeout" else "server_error"
    return sse(error_body(delta.error or f"generation ended: {delta.finish_reason}", kind))


def usage_event(meta: dict[str, Any], object_name: str, delta: Delta) -> str:
    """The last chunk when ``stream_options.include_usage``: no choices, the token counts."""
    return sse({**meta, "object": object_name, "choices": [], "usage": usage(delta)})


# OpenAPI: a 200 is either the JSON completion or, with "stream": true, an event stream of chunks.
STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the completion (JSON), or with stream=true its chunks as server-sent events",
        "content": {
            "text/event-stream": {  # each event: data is a JSON chunk, or [DONE] at the end
                "schema": {
                    "type": "object",
                    "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
                    "required": ["data"],
                }
            }
        },
    }
}
