"""Pure ASGI middleware: request ids and metrics, API keys, and a request body limit.

Written against ASGI directly rather than ``BaseHTTPMiddleware`` so streamed responses pass through
untouched and a client that disconnects is still seen by the handler.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tunesmith.serve.errors import error_body
from tunesmith.serve.metrics import Metrics

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
OPEN_PATHS = ("/health",)
KNOWN_PATHS = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/models",
    "/v1/load_lora_adapter",
    "/v1/unload_lora_adapter",
    "/v1/feedback",
    "/health",
    "/metrics",
)


async def send_error(send: Callable[[dict], Awaitable[None]], status: int, body: dict, headers: Iterable = ()) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RequestIdAndMetrics:
    """Give each request an id (the client's ``X-Request-ID`` when well formed) and time it to its last byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = _header(scope, b"x-request-id")
        request_id = given if given and REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start, status = time.perf_counter(), 500

        async def wrapped(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.metrics.observe(_route(scope), status, time.perf_counter() - start)

        await self.app(scope, receive, wrapped)


def _route(scope: dict) -> str:
    """The path when it is one of ours, else ``other`` (arbitrary paths must not grow the label set)."""
    path = scope.get("path", "")
    return path if path in KNOWN_PATHS else "other"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """Bearer API keys, held only as SHA-256 hashes and compared in constant time."""

    def __init__(self, app: ASGIApp, hashes: Iterable[str]) -> None:
        self.app = app
        self.hashes = [h.strip().lower() for h in hashes if h.strip()]

    def allows(self, key: str | None) -> bool:
        digest = hash_key(key or "")
        ok = False
        for stored in self.hashes:  # every hash is compared: timing does not reveal which one matched
            ok |= hmac.compare_digest(digest, stored)
        return ok and key is not None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.hashes or scope.get("path") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        auth = _header(scope, b"authorization") or ""
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if not self.allows(key):
            body = error_body("Incorrect or missing API key (Authorization: Bearer KEY).", "invalid_request_error")
            body["error"]["code"] = "invalid_api_key"
            return await send_error(send, 401, body, [(b"www-authenticate", b"Bearer")])
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.limit:
            return await send_error(send, 413, self._error())
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await send_error(send, 413, self._error())
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # later calls see the client's disconnect

        await self.app(scope, replay, send)

    def _error(self) -> dict:
        return error_body(f"request body over the limit of {self.limit} bytes", "invalid_request_error", None)
