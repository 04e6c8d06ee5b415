"""The model behind the dashboard's playground: the same engine, endpoints and request log as ``tunesmith serve``.

The playground's page talks to ``/v1/chat/completions`` and ``/v1/feedback`` of the app it is served from,
so what a user tries in the browser goes through exactly the server they would deploy, and their thumbs and
"which is better" clicks land in the run's ``monitor.db`` like any client's. The dashboard can start with no
model (:class:`IdleEngine`) and load a run on request, in the background; the loaded engine and its request
log replace the app's served ones.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tunesmith.serve.engine import GenerationRequest, Sink, UnknownModel

log = logging.getLogger(__name__)


class IdleEngine:
    """An engine with no model: ``/v1/models`` is empty and every generation request is a 404."""

    tokenizer: Any = None
    max_context = 0
    chat_stops: tuple[str, ...] = ()

    def model_names(self) -> list[str]:
        return []

    def submit(self, request: GenerationRequest, sink: Sink) -> None:
        raise UnknownModel(request.model)

    def cancel(self, request_id: str) -> None:
        return None

    def load_adapter(self, name: str, path: str) -> dict[str, Any]:
        raise UnknownModel("no base model is loaded; serve a run first")

    def unload_adapter(self, name: str) -> None:
        raise UnknownModel(name)

    def stats(self) -> dict[str, float]:
        return {}

    def start(self) -> None:
        return None

    def shutdown(self) -> None:
        return None


@dataclass
class SlotState:
    state: str = "idle"  # idle, loading, ready, failed
    target: str | None = None
    error: str | None = None
    since: float = 0.0


class Playground:
    """Loads a run (or model) into the app's served context, one at a time, off the event loop."""

    def __init__(self, app: Any, loader: Any = None, request_log: Any = None) -> None:
        from tunesmith.serve.launch import build_engine
        from tunesmith.serve.launch import request_log as default_request_log

        self.app = app
        self.loader = loader or (lambda target: build_engine(target))
        self.request_log = request_log or (lambda target: default_request_log(target, None, "redact", False))
        self.status = SlotState()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def describe(self) -> dict[str, Any]:
        ctx = self.app.state.served
        store = getattr(getattr(ctx.log, "store", None), "url", None)
        return {
            "state": self.status.state,
            "target": self.status.target,
            "error": self.status.error,
            "models": ctx.engine.model_names(),
            "store": store.split("@")[-1] if store else None,
        }

    def mark_served(self, target: str) -> None:
        """Record that the app was built with ``target`` already loaded (``tunesmith ui --serve``)."""
        self.status = SlotState("ready", target, None, time.time())

    def load(self, target: Path | str, wait: bool = False) -> None:
        """Start loading ``target``; the current model keeps answering until the new one is ready."""
        with self._lock:
            if self.status.state == "loading":
                raise RuntimeError(f"{self.status.target} is still loading; wait for it first")
            self.status = SlotState("loading", str(target), None, time.time())
            self._thread = threading.Thread(target=self._load, args=(str(target),), daemon=True)
            self._thread.start()
        if wait:
            self._thread.join()

    def _load(self, target: str) -> None:
        try:
            engine = self.loader(target)
            request_log = self.request_log(target)
        except Exception as exc:  # shown on the page: a model that fails to load must not take the UI down
            log.warning("playground: loading %s failed: %s", target, exc)
            self.status = replace(self.status, state="failed", error=str(exc) or type(exc).__name__)
            return
        engine.start()
        old = self.app.state.served
        self.app.state.served = replace(old, engine=engine, log=request_log or old.log)
        old.engine.shutdown()
        if request_log is not None and hasattr(old.log, "close"):
            old.log.close()
        self.status = replace(self.status, state="ready")
