"""What every handler needs, injected by the app factory through ``app.state``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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


@dataclass
class Exchange:
    """One request as the request log records it; :meth:`entry` completes it with the answer."""

    request: Request
    endpoint: str
    model: str
    prompt: Any
    prompt_tokens: int
    stream: bool
    started: float = field(default_factory=time.perf_counter)

    def entry(self, responses: list[str], final: Any, completion_tokens: int) -> dict[str, Any]:
        return {
            "time": time.time(),
            "request_id": request_id(self.request),
            "endpoint": self.endpoint,
            "model": self.model,
            "prompt": self.prompt,
            "response": responses,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "latency_s": round(time.perf_counter() - self.started, 4),
            "finish_reason": final.finish_reason if final is not None else None,
            "stream": self.stream,
        }
