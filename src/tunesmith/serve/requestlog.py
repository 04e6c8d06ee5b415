"""Where the server reports each answered request. The monitor stage stores them in a database; the
server only needs something with :meth:`record` that never blocks (called on the event loop)."""

from __future__ import annotations

from typing import Any, Protocol


class RequestLog(Protocol):
    def record(self, entry: dict[str, Any]) -> None: ...


class NullLog:
    """Keeps nothing (the default when no monitor store is configured)."""

    def record(self, entry: dict[str, Any]) -> None:
        return None


class MemoryLog:
    """Keeps entries in a bounded list (tests, and a quick look without a database)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.entries: list[dict[str, Any]] = []
        self.limit = limit
        self.dropped = 0

    def record(self, entry: dict[str, Any]) -> None:
        if len(self.entries) >= self.limit:
            self.dropped += 1
            return
        self.entries.append(entry)
