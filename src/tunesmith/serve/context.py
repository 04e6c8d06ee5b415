"""What every handler needs, injected by the app factory through ``app.state``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from tunesmith.serve.engine import Engine
from tunesmith.serve.metrics import Metrics
from tunesmith.serve.requestlog import RequestLog
from tunesmith.serve.settings import ServerSettings


@dataclass
class Served:
    """The engine, settings, request log and metrics of one app."""

    engine: Engine
    settings: ServerSettings
    log: RequestLog
    metrics: Metrics
    started: int


def served(request: Request) -> Served:
    return request.app.state.served


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", "")) or f"{time.time_ns():x}"


def log_entry(
    request: Request,
    endpoint: str,
    model: str,
    prompt: Any,
    response: list[str],
    final: Any,
    prompt_tokens: int,
    completion_tokens: int,
    started: float,
    stream: bool,
) -> dict[str, Any]:
    """One request log record (the monitor stage stores these)."""
    return {
        "time": time.time(),
        "request_id": request_id(request),
        "endpoint": endpoint,
        "model": model,
        "prompt": prompt,
        "response": response,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_s": round(time.perf_counter() - started, 4),
        "finish_reason": final.finish_reason if final is not None else None,
        "stream": stream,
    }
