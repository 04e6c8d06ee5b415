"""The dashboard's app factory: the serving app (``tunesmith serve``'s) plus pages, a JSON API and static files.

One app, so the playground chats through the same ``/v1`` endpoints, engine and request log a deployment
uses, and feedback given in the browser is the feedback ``tunesmith monitor`` reads. Pages are Jinja
templates rendered on the server; a little JavaScript (no build step) draws charts and polls for updates.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tunesmith.eval.htmlkit import METRICS, fmt
from tunesmith.serve.app import create_app
from tunesmith.serve.engine import Engine
from tunesmith.serve.requestlog import RequestLog
from tunesmith.serve.settings import ServerSettings
from tunesmith.ui.guard import LOOPBACK_NAMES, SameOriginGuard
from tunesmith.ui.jobs import Jobs
from tunesmith.ui.playground import IdleEngine, Playground

HERE = Path(__file__).parent


@dataclass
class Dashboard:
    """What the dashboard's handlers share, on ``app.state.ui``."""

    runs_root: Path
    workdir: Path
    jobs: Jobs
    playground: Playground
    templates: Jinja2Templates
    store: str | None = None  # a monitor store given on the command line, beside the runs' own monitor.db
    _stores: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open_store(self, target: str) -> Any:
        """The monitor store at ``target``, opened (and migrated) once and kept."""
        from tunesmith.monitor.store import Store

        with self._lock:
            if target not in self._stores:
                self._stores[target] = Store(target)
            return self._stores[target]


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "—"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.filters["metric"] = lambda value, key="": fmt(key, value)
    t.env.filters["when"] = _when
    t.env.filters["size"] = _size
    t.env.filters["short"] = lambda text: "/".join(Path(str(text)).parts[-3:]) if "/" in str(text) else text
    t.env.globals["METRICS"] = METRICS
    return t


def create_ui_app(
    runs_root: Path,
    workdir: Path | None = None,
    *,
    engine: Engine | None = None,
    log: RequestLog | None = None,
    settings: ServerSettings | None = None,
    served_target: str | None = None,
    store: str | None = None,
    hosts: tuple[str, ...] = LOOPBACK_NAMES,
    loader: Any = None,
    request_log: Any = None,
    max_running: int = 1,
) -> FastAPI:
    """The dashboard for the run directories under ``runs_root``.

    Args:
        runs_root: Folder of run directories (``runs``); runs started from the page go there too.
        workdir: Folder the ``tunesmith run`` commands it starts run in (config paths are relative to it).
        engine, log: A model already loaded to serve in the playground, and its request log (``--serve``);
            without one the playground offers to load a run.
        served_target: What ``engine`` serves (shown on the playground).
        store: An extra monitor store (file or URL) for the monitoring page.
        hosts: Host names the app answers to (DNS-rebinding guard); empty = any.
        loader, request_log: How the playground loads a target (tests pass tiny models).
        max_running: Runs that may train at once.
    """
    app = create_app(engine or IdleEngine(), settings, log)
    workdir = (workdir or Path.cwd()).resolve()
    playground = Playground(app, loader, request_log)
    if engine is not None and served_target:
        playground.mark_served(served_target)
    dashboard = Dashboard(
        runs_root.resolve(), workdir, Jobs(runs_root, workdir, max_running), playground, templates(), store
    )
    app.state.ui = dashboard
    from tunesmith.ui.routes import api, pages

    app.include_router(pages.router)
    app.include_router(api.router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(SameOriginGuard, hosts=hosts)
    return app
