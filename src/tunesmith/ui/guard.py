"""Requests the dashboard refuses before any handler runs: other sites' pages and rebound host names.

The dashboard starts training runs and loads models, and has no login: it trusts whoever can reach it,
which by default is this machine only. Two browser attacks reach a loopback server all the same: a page on
another site posting to ``http://127.0.0.1:PORT`` (cross-site request forgery), and a name the attacker
controls re-pointed at 127.0.0.1 (DNS rebinding). The first sends an ``Origin`` that is not ours, the second
a ``Host`` that is not ours; both get 403.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")
SAFE_METHODS = (b"GET", b"HEAD", b"OPTIONS")


def _host_name(value: str) -> str:
    """``name`` of ``name:port`` (and of ``[v6]:port``), lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class SameOriginGuard:
    """ASGI middleware: ``Host`` must be one of ``hosts`` (names, any port), and a state-changing request that
    carries an ``Origin`` must come from the host it is sent to."""

    def __init__(self, app: Any, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if self.hosts and _host_name(host) not in self.hosts:
            await _refuse(send, f"host '{host}' is not this dashboard's; open it as http://localhost:PORT")
            return
        origin = headers.get(b"origin")
        if scope.get("method", "GET").encode() not in SAFE_METHODS and origin is not None:
            origin_host = urlsplit(origin.decode("latin-1")).netloc.lower()
            if origin_host != host.lower():
                await _refuse(send, "cross-site request refused: the dashboard only takes changes from its own pages")
                return
        await self.app(scope, receive, send)


async def _refuse(send: Any, message: str) -> None:
    body = json.dumps({"error": {"message": message, "type": "forbidden", "code": "forbidden"}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
