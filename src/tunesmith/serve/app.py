"""The app factory: routers, middleware and error handlers around an injected engine and request log.

Nothing happens at import: ``create_app`` builds a new app each call (tests build several), the engine
thread starts and stops with the app's lifespan.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tunesmith.serve.context import Served
from tunesmith.serve.engine import Engine
from tunesmith.serve.errors import HANDLERS, drop_unused_422
from tunesmith.serve.metrics import Metrics, engine_gauges, log_gauges
from tunesmith.serve.middleware import ApiKeys, BodyLimit, RequestIdAndMetrics
from tunesmith.serve.requestlog import NullLog, RequestLog
from tunesmith.serve.routes import chat, completions, feedback, models, ops
from tunesmith.serve.settings import ServerSettings


def create_app(engine: Engine, settings: ServerSettings | None = None, log: RequestLog | None = None) -> FastAPI:
    """An OpenAI-compatible app serving ``engine``'s models."""
    settings = settings or ServerSettings()
    metrics = Metrics()
    log = log or NullLog()

    # Read through app.state at each use: the dashboard swaps the served engine and log at run time.
    def current() -> Served:
        return app.state.served

    metrics.gauges["tunesmith"] = lambda: engine_gauges(current().engine.stats())
    metrics.gauges["tunesmith_request_log"] = lambda: (
        log_gauges(current().log) if hasattr(current().log, "stats") else {}
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current().engine.start()
        try:
            yield
        finally:
            ctx = current()
            ctx.engine.shutdown()
            if hasattr(ctx.log, "close"):
                ctx.log.close()

    app = FastAPI(title="tunesmith", summary="OpenAI-compatible serving of tuned models", lifespan=lifespan)
    app.state.served = Served(engine, settings, log, metrics, int(time.time()))
    for exc_type, handler in HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    for module in (chat, completions, models, ops, feedback):
        app.include_router(module.router)
    documented = app.openapi
    app.openapi = lambda: drop_unused_422(documented())  # type: ignore[method-assign]
    # Added last = outermost: ids and timing see everything, then keys, then the body limit.
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(ApiKeys, hashes=settings.api_key_hashes)
    app.add_middleware(RequestIdAndMetrics, metrics=metrics)
    return app
