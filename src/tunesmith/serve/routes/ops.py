"""``GET /health`` (no key needed: load balancers probe it) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from tunesmith.serve.context import served
from tunesmith.serve.errors import documented

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    ctx = served(request)
    stats = ctx.engine.stats()
    return {
        "status": "ok",
        "models": ctx.engine.model_names(),
        "waiting": stats.get("waiting", 0),
        "active": stats.get("active", 0),
    }


@router.get("/metrics", response_class=PlainTextResponse, responses=documented())
async def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(served(request).metrics.render(), media_type="text/plain; version=0.0.4")
