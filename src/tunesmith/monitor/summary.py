"""What the monitor report says, computed from the store's rows (pure functions; the page only draws it)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

WIDTHS = (10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)  # bucket widths tried, seconds
TOP_LANGUAGES = 5


def bucket_width(times: Sequence[float], most: int = 60) -> int:
    """The narrowest width from :data:`WIDTHS` that puts the span of ``times`` in at most ``most`` buckets."""
    span = (max(times) - min(times)) if times else 0.0
    return next((w for w in WIDTHS if span / w <= most), WIDTHS[-1])


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def traffic(requests: Sequence[dict[str, Any]], width: int) -> list[dict[str, Any]]:
    """Per time bucket: requests, latency p50/p95, prompt and completion tokens, language counts."""
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in requests:
        groups[int(row["time"] // width)].append(row)
    out = []
    for key in range(min(groups), max(groups) + 1) if groups else []:
        rows = groups.get(key, [])
        latencies = [r["latency_s"] for r in rows]
        out.append(
            {
                "start": key * width,
                "requests": len(rows),
                "latency_p50": _percentile(latencies, 0.5) if rows else None,
                "latency_p95": _percentile(latencies, 0.95) if rows else None,
                "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
                "completion_tokens": sum(r["completion_tokens"] for r in rows),
                "languages": dict(Counter(r.get("language") or "und" for r in rows)),
            }
        )
    return out


def feedback_by_model(requests: Sequence[dict[str, Any]], feedback: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per served model: requests, thumbs up/down and the down share, mean rating, choices, rankings, corrections,
    and side-by-side comparisons won and lost (the loser is the model of the request named in the value)."""
    model_of = {r["request_id"]: r["model"] for r in requests}
    out: dict[str, dict[str, Any]] = {m: {"requests": 0} for m in sorted(set(model_of.values()))}
    for row in requests:
        out[row["model"]]["requests"] += 1
    ratings: dict[str, list[float]] = defaultdict(list)
    for item in feedback:
        model = model_of.get(item["request_id"], "(not in the log)")
        stats = out.setdefault(model, {"requests": 0})
        key = {"thumbs": f"thumbs_{item['value']}", "comparison": "wins"}.get(item["kind"], item["kind"])
        stats[key] = stats.get(key, 0) + 1
        if item["kind"] == "comparison":
            loser = out.setdefault(model_of.get(str(item["value"]), "(not in the log)"), {"requests": 0})
            loser["losses"] = loser.get("losses", 0) + 1
        if item["kind"] == "rating":
            value = item["value"]
            ratings[model].append(float(value["value"] if isinstance(value, dict) else value))
    for model, stats in out.items():
        thumbs = stats.get("thumbs_up", 0) + stats.get("thumbs_down", 0)
        stats["negative_rate"] = stats.get("thumbs_down", 0) / thumbs if thumbs else None
        stats["mean_rating"] = statistics.fmean(ratings[model]) if ratings[model] else None
        kinds = ("thumbs_up", "thumbs_down", "rating", "choice", "ranking", "correction", "wins")
        stats["feedback"] = sum(stats.get(k, 0) for k in kinds)
    return out


def recommendation(
    latest_drift: dict[str, Any] | None, by_model: dict[str, Any], negative_rate: float, min_thumbs: int
) -> dict[str, Any]:
    """Whether to retrain, and why: the latest drift check flagged drift, or a model's thumbs-down share is over
    ``negative_rate`` with at least ``min_thumbs`` thumbs."""
    reasons = []
    if latest_drift and latest_drift.get("drifted"):
        reasons += [f"drift: {a}" for a in latest_drift.get("alerts", [])] or ["drift flagged by the latest check"]
    for model, stats in by_model.items():
        thumbs = stats.get("thumbs_up", 0) + stats.get("thumbs_down", 0)
        rate = stats.get("negative_rate")
        if rate is not None and thumbs >= min_thumbs and rate > negative_rate:
            reasons.append(f"{model}: {rate:.0%} of {thumbs} thumbs are down (threshold {negative_rate:.0%})")
    return {"retrain": bool(reasons), "reasons": reasons}


def summarise(
    requests: Sequence[dict[str, Any]],
    feedback: Sequence[dict[str, Any]],
    drift_checks: Sequence[dict[str, Any]],
    negative_rate: float = 0.3,
    min_thumbs: int = 20,
) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    times = [r["time"] for r in requests]
    width = bucket_width(times)
    latencies = [r["latency_s"] for r in requests]
    by_model = feedback_by_model(requests, feedback)
    languages = Counter(r.get("language") or "und" for r in requests)
    latest = drift_checks[-1] if drift_checks else None
    return {
        "requests": len(requests),
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "bucket_s": width,
        "latency_p50": _percentile(latencies, 0.5) if latencies else None,
        "latency_p95": _percentile(latencies, 0.95) if latencies else None,
        "prompt_tokens": sum(r["prompt_tokens"] for r in requests),
        "completion_tokens": sum(r["completion_tokens"] for r in requests),
        "redactions": sum(r.get("redactions") or 0 for r in requests),
        "finish_reasons": dict(Counter(r.get("finish_reason") or "?" for r in requests)),
        "languages": dict(languages.most_common()),
        "top_languages": [lang for lang, _ in languages.most_common(TOP_LANGUAGES)],
        "traffic": traffic(requests, width),
        "feedback": len(feedback),
        "by_model": by_model,
        "drift_checks": [
            {"time": c["time"], "rows": c["rows"], "drifted": c["drifted"], "alerts": c["alerts"]}
            for c in drift_checks
        ],
        "latest_drift": latest["report"] if latest else None,
        "recommendation": recommendation(latest, by_model, negative_rate, min_thumbs),
    }
