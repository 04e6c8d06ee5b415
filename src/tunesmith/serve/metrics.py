"""Prometheus text-format metrics for one app (no process-global registry: two apps never share counts)."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in pairs)
    return "{" + inner + "}"


class Metrics:
    """Counters and a latency histogram per (endpoint, status), plus gauges read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        self.latency_counts: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, Callable[[], dict[str, float]]] = {}

    def observe(self, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(("path", path), ("status", str(status)))] += 1
            self.latency_counts[path][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum[path] += seconds

    def render(self) -> str:
        lines = [
            "# HELP tunesmith_http_requests_total HTTP requests answered, by path and status.",
            "# TYPE tunesmith_http_requests_total counter",
        ]
        with self._lock:
            for labels, n in sorted(self.requests.items()):
                lines.append(f"tunesmith_http_requests_total{_labels(labels)} {n}")
            lines += [
                "# HELP tunesmith_http_request_seconds Time from request to the last byte of the response.",
                "# TYPE tunesmith_http_request_seconds histogram",
            ]
            for path, counts in sorted(self.latency_counts.items()):
                running = 0
                for bound, n in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
                    running += n
                    lines.append(
                        f"tunesmith_http_request_seconds_bucket{_labels((('path', path), ('le', bound)))} {running}"
                    )
                lines.append(
                    f"tunesmith_http_request_seconds_sum{_labels((('path', path),))} {self.latency_sum[path]:.6f}"
                )
                lines.append(f"tunesmith_http_request_seconds_count{_labels((('path', path),))} {running}")
        for prefix, read in self.gauges.items():
            for name, value in read().items():
                kind = "counter" if name.endswith("_total") else "gauge"
                lines += [f"# TYPE {prefix}_{name} {kind}", f"{prefix}_{name} {value:g}"]
        return "\n".join(lines) + "\n"


def engine_gauges(stats: dict[str, float]) -> dict[str, float]:
    """The engine's counters under Prometheus names."""
    steps = stats.get("decode_steps", 0)
    return {
        "requests_total": stats.get("requests", 0),
        "prompt_tokens_total": stats.get("prompt_tokens", 0),
        "generated_tokens_total": stats.get("generated_tokens", 0),
        "decode_steps_total": steps,
        "mean_batch_rows": stats.get("decoded_rows", 0) / steps if steps else 0.0,
        "queue_depth": stats.get("waiting", 0),
        "active_sequences": stats.get("active", 0),
        "rejected_total": stats.get("rejected", 0),
        "errors_total": stats.get("errors", 0),
        **{f"{k}_total": v for k, v in stats.items() if k.startswith("finished_")},
    }


def log_gauges(log: Any) -> dict[str, float]:
    """The request log writer's counters, and the latest drift check's verdict when the store has one."""
    stats = log.stats()
    out = {f"{k}_total": v for k, v in stats.items() if k not in ("queue", "pending_retry")}
    out["queue_depth"] = stats.get("queue", 0)
    out["pending_retry"] = stats.get("pending_retry", 0)
    store = getattr(log, "store", None)
    if store is not None:
        try:
            checks = store.drift_checks(limit=1)
        except Exception:  # the store is down: the writer's counters say so; the scrape must still answer
            checks = []
        if checks:
            out["drift_drifted"] = float(checks[-1]["drifted"])
            out["drift_alerts"] = float(len(checks[-1]["alerts"]))
            out["drift_checked_at"] = float(checks[-1]["time"])
    return out
