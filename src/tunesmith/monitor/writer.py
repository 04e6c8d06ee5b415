"""The server's request log: a bounded queue and one background thread that annotates and stores records.

``record`` is called on the event loop and never blocks it: it puts the entry on a bounded queue or, when
the queue is full, counts it as dropped (shown in ``/metrics``, never silent). The thread takes batches,
detects each prompt's language, script and code-mixing index, applies the privacy mode (redact PII, or
keep only hashes), and inserts them. When the database is unavailable the batch is kept and retried with
backoff, and the failures are counted; only when the retry buffer is full are the oldest records dropped,
and counted.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tunesmith.monitor.redact import redact, sha256

log = logging.getLogger(__name__)
Privacy = Literal["full", "redact", "hashes"]


@dataclass(frozen=True)
class WriterSettings:
    """``privacy``: ``full`` stores text as sent, ``redact`` replaces PII first, ``hashes`` stores only hashes."""

    privacy: Privacy = "redact"
    capacity: int = 10_000
    batch: int = 64
    retry_buffer: int = 50_000
    max_backoff_s: float = 30.0


def user_text(prompt: Any) -> str:
    """The text a language is detected on: the last user message of a chat, or the prompt text."""
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
        users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
        content = users[-1] if users else prompt[-1].get("content", "")
        return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    if isinstance(prompt, list):
        return str(prompt[0]) if prompt else ""
    return str(prompt)


def default_annotator(template: dict[str, str] | None = None) -> Callable[[str], dict[str, Any]]:
    """Language, script and CMI of a text, with the data stage's shipped identifier.

    ``template`` (``prefix``/``suffix``, as :func:`tunesmith.monitor.drift_run.strip_template` finds them in a
    run's training prompts) is cut off first, so a fixed instruction around the user's text does not decide
    the language the log records.
    """
    from tunesmith.data.codemix import row_cmi
    from tunesmith.data.langid import load_default
    from tunesmith.data.script import dominant_script

    identifier = load_default()
    prefix, suffix = (template or {}).get("prefix", ""), (template or {}).get("suffix", "")

    def annotate(text: str) -> dict[str, Any]:
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        if suffix and text.endswith(suffix):
            text = text[: -len(suffix)]
        language, _ = identifier.predict(text)
        return {"language": language, "script": dominant_script(text), "cmi": round(row_cmi(text, identifier), 2)}

    return annotate


def _map_texts(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_map_texts(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: (_map_texts(v, fn) if k in ("content", "text") else v) for k, v in value.items()}
    return value


def to_row(entry: dict[str, Any], privacy: Privacy, annotate: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """A ``requests`` table row from a server log entry."""
    text = user_text(entry["prompt"])
    detected = annotate(text) if text.strip() else {"language": None, "script": None, "cmi": None}
    prompt, response, redactions = entry["prompt"], entry["response"], 0
    if privacy == "redact":

        def clean(value: str) -> str:
            nonlocal redactions
            out, n = redact(value)
            redactions += n
            return out

        prompt, response = _map_texts(prompt, clean), _map_texts(response, clean)
    prompt_json = json.dumps(prompt, ensure_ascii=False)
    response_json = json.dumps(response, ensure_ascii=False)
    return {
        "request_id": entry["request_id"],
        "time": entry["time"],
        "endpoint": entry["endpoint"],
        "model": entry["model"],
        "prompt": None if privacy == "hashes" else prompt_json,
        "response": None if privacy == "hashes" else response_json,
        "prompt_sha256": sha256(json.dumps(entry["prompt"], ensure_ascii=False)),
        "response_sha256": sha256(json.dumps(entry["response"], ensure_ascii=False)),
        "prompt_tokens": entry["prompt_tokens"],
        "completion_tokens": entry["completion_tokens"],
        "choices": len(entry["response"]),
        "latency_s": entry["latency_s"],
        "finish_reason": entry["finish_reason"],
        "stream": bool(entry["stream"]),
        "redactions": redactions,
        **detected,
    }


class StoreWriter:
    """A :class:`~tunesmith.serve.requestlog.RequestLog` that writes to a monitor :class:`Store` in the background."""

    def __init__(
        self,
        store: Any,
        settings: WriterSettings | None = None,
        annotate: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or WriterSettings()
        self.annotate = annotate
        self.queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(self.settings.capacity)
        self.recent: OrderedDict[str, int] = OrderedDict()  # request id -> number of answers (feedback checks)
        self.counters = {
            "written": 0,
            "feedback_written": 0,
            "dropped": 0,
            "unreadable": 0,
            "write_errors": 0,
            "retried": 0,
        }
        self._pending: list[tuple[str, dict[str, Any]]] = []  # table rows ready to insert
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tunesmith-request-log", daemon=True)
        self._thread.start()

    # --- called on the event loop: never blocks ----------------------------------------------------
    def record(self, entry: dict[str, Any]) -> None:
        self._remember(entry["request_id"], len(entry.get("response") or []))
        self._put("request", entry)

    def record_feedback(self, row: dict[str, Any]) -> None:
        self._put("feedback", row)

    def answers(self, request_id: str) -> int | None:
        """How many answers a recent request had (None when not among the recent ones)."""
        return self.recent.get(request_id)

    def stats(self) -> dict[str, float]:
        return {**self.counters, "queue": self.queue.qsize(), "pending_retry": len(self._pending)}

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (up to ``timeout``), then stop."""
        deadline = time.monotonic() + timeout
        while (self.queue.qsize() or self._pending) and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(timeout=5)

    def _remember(self, request_id: str, answers: int) -> None:
        self.recent[request_id] = answers
        if len(self.recent) > 100_000:
            self.recent.popitem(last=False)

    def _put(self, kind: str, value: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((kind, value))
        except queue.Full:
            self.counters["dropped"] += 1

    # --- the writer thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            batch = self._take()
            if not batch and not self._pending:
                continue
            self._pending.extend(self._rows(batch))
            try:
                self._write(self._pending)
            except Exception as exc:  # the database is down or busy: keep the records, retry later
                self.counters["write_errors"] += 1
                self.counters["retried"] += len(self._pending)
                log.warning("request log: write failed (%s); %d records kept for retry", exc, len(self._pending))
                overflow = len(self._pending) - self.settings.retry_buffer
                if overflow > 0:
                    del self._pending[:overflow]
                    self.counters["dropped"] += overflow
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff_s)
                continue
            self._pending = []
            backoff = 0.5

    def _take(self) -> list[tuple[str, dict[str, Any]]]:
        try:
            batch = [self.queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < self.settings.batch:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _rows(self, items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
        """Table rows for queued entries; an entry that cannot be turned into a row is counted and logged."""
        if self.annotate is None:
            self.annotate = default_annotator()
        rows = []
        for kind, value in items:
            try:
                rows.append(
                    (kind, to_row(value, self.settings.privacy, self.annotate) if kind == "request" else value)
                )
            except Exception:
                self.counters["unreadable"] += 1
                log.exception("request log: entry %s could not be stored", value.get("request_id"))
        return rows

    def _write(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        request_rows = [r for k, r in rows if k == "request"]
        feedback_rows = [r for k, r in rows if k == "feedback"]
        self.store.add(request_rows, feedback_rows)
        self.counters["written"] += len(request_rows)
        self.counters["feedback_written"] += len(feedback_rows)
