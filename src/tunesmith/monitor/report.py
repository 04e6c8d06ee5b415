"""``tunesmith monitor report``: one self-contained HTML page (and JSON) of what the deployed model met.

Traffic, latency percentiles and tokens over time; the language mix over time (the question a
low-resource deployment lives by: are users writing in the languages the model was tuned on?); drift
checks against their thresholds; feedback per served model; and a retrain recommendation with the two
commands that act on it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tunesmith.eval import plots
from tunesmith.eval.htmlkit import chart, e, page, table

THRESHOLD_KEYS = (  # (path to the statistic in the drift report, threshold key, label)
    (("language", "js"), "language_js", "language mix (JS)"),
    (("script", "js"), "script_js", "script mix (JS)"),
    (("length", "chars", "psi"), "length_psi", "characters per text (PSI)"),
    (("length", "words", "psi"), "length_psi", "words per text (PSI)"),
    (("fertility", "tokens_per_word_change"), "fertility_change", "tokens per word (relative change)"),
    (("fertility", "unknown_rate_change"), "unknown_rate_change", "unknown-token share (change)"),
    (("semantic", "domain_auc", "auc"), "semantic_auc", "embeddings (domain AUC)"),
)


def _at(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = report
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _traffic_chart(summary: dict[str, Any]) -> str:
    buckets = summary["traffic"]
    if len(buckets) < 2:
        return '<p class="note">Too little traffic for charts over time yet (one time bucket).</p>'
    per = summary["bucket_s"]
    top = summary["top_languages"]

    def series(key: str) -> list[tuple[float, float]]:
        return [(b["start"], b[key]) for b in buckets if b[key] is not None]

    shares = {
        lang: [(b["start"], b["languages"].get(lang, 0) / b["requests"] if b["requests"] else 0.0) for b in buckets]
        for lang in top
    }
    panels = [
        (f"requests per {f'{per // 60} min' if per >= 60 else f'{per} s'}", {"requests": series("requests")}, False),
        ("latency (s)", {"p50": series("latency_p50"), "p95": series("latency_p95")}, False),
        ("tokens", {"prompt": series("prompt_tokens"), "completion": series("completion_tokens")}, False),
        ("language share of requests", shares, True),
    ]
    return chart(plots.time_panels, panels, alt="traffic, latency, tokens and language mix over time")


def threshold_items(report: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(label, |statistic|, threshold) for each drift statistic of one check that has a threshold."""
    thresholds = report.get("thresholds", {})
    items = []
    for path, key, label in THRESHOLD_KEYS:
        value = _at(report, path)
        if isinstance(value, int | float) and thresholds.get(key):
            items.append((label, abs(float(value)), float(thresholds[key])))
    return items


def _drift_section(summary: dict[str, Any]) -> str:
    latest = summary["latest_drift"]
    if not latest:
        return '<p class="note">No drift check yet: run <code>tunesmith monitor drift RUN_DIR</code>.</p>'
    items = threshold_items(latest)
    body = ""
    if latest.get("alerts"):
        body += "".join(f'<p class="warn">{e(a)}</p>' for a in latest["alerts"])
    else:
        body += '<p class="good">The latest window is within every threshold.</p>'
    if items:
        body += chart(plots.threshold_bars, items, alt="drift statistics against their thresholds")
    rows = [
        [_when(c["time"]), str(c["rows"]), "yes" if c["drifted"] else "no", e("; ".join(c["alerts"]))]
        for c in summary["drift_checks"][-20:]
    ]
    body += table(["checked", "window rows", "drifted", "alerts"], rows)
    return body


def _feedback_section(summary: dict[str, Any]) -> str:
    rows = []
    for model, stats in summary["by_model"].items():
        rows.append(
            [
                e(model),
                str(stats["requests"]),
                str(stats["feedback"]),
                str(stats.get("thumbs_up", 0)),
                str(stats.get("thumbs_down", 0)),
                _num(stats["negative_rate"]),
                _num(stats["mean_rating"]),
                str(stats.get("choice", 0)),
                str(stats.get("ranking", 0)),
                str(stats.get("correction", 0)),
                f"{stats.get('wins', 0)} / {stats.get('losses', 0)}",
            ]
        )
    header = [
        "model",
        "requests",
        "feedback",
        "thumbs up",
        "thumbs down",
        "down share",
        "mean rating",
        "choices",
        "rankings",
        "corrections",
        "side by side won / lost",
    ]
    return table(header, rows) if rows else '<p class="note">No requests yet.</p>'


def render(summary: dict[str, Any], title: str, run_dir: str | None) -> str:
    rec = summary["recommendation"]
    target = run_dir or "RUN_DIR"
    if rec["retrain"]:
        reasons = "".join(f"<li>{e(r)}</li>" for r in rec["reasons"])
        advice = f'<p class="warn">Retraining is recommended:</p><ul>{reasons}</ul>' + (
            f"<p>Retrain from the feedback: <code>tunesmith monitor export-data {e(target)}</code>, then "
            f"<code>tunesmith run {e(target)}/feedback/retrain-dpo.yaml</code> (or retrain-kto / -reward / -sft).</p>"
        )
    else:
        advice = '<p class="good">No retraining needed: no drift flagged and negative feedback under threshold.</p>'
    facts = [
        ["requests", str(summary["requests"])],
        ["from / to", f"{_when(summary['first'])} / {_when(summary['last'])}"],
        ["latency p50 / p95 (s)", f"{_num(summary['latency_p50'])} / {_num(summary['latency_p95'])}"],
        ["tokens in / out", f"{summary['prompt_tokens']} / {summary['completion_tokens']}"],
        ["finish reasons", e(", ".join(f"{k} {v}" for k, v in summary["finish_reasons"].items()))],
        ["languages", e(", ".join(f"{k} {v}" for k, v in list(summary["languages"].items())[:8]))],
        ["PII spans redacted", str(summary["redactions"])],
        ["feedback", str(summary["feedback"])],
    ]
    body = (
        f'<section id="advice"><h2>Recommendation</h2>{advice}</section>'
        f'<section id="traffic"><h2>Traffic</h2>{table(["", ""], facts, show_header=False)}'
        f"{_traffic_chart(summary)}</section>"
        f'<section id="drift"><h2>Drift</h2>{_drift_section(summary)}</section>'
        f'<section id="feedback"><h2>Feedback</h2>{_feedback_section(summary)}</section>'
    )
    nav = [("advice", "recommendation"), ("traffic", "traffic"), ("drift", "drift"), ("feedback", "feedback")]
    return page(title, body, nav, footer="tunesmith monitor report")


def write_report(store: Any, out_dir: Path, run_dir: Path | None, negative_rate: float, min_thumbs: int) -> dict:
    """Summarise the store into ``out_dir/report.json`` and ``report.html``; returns the summary."""
    from tunesmith.monitor.summary import summarise
    from tunesmith.rundir import atomic_write_text, write_json

    summary = summarise(store.requests(), store.feedback(), store.drift_checks(), negative_rate, min_thumbs)
    title = f"monitor: {run_dir.name if run_dir else store.url.split('@')[-1]}"
    write_json(out_dir / "report.json", summary)
    atomic_write_text(out_dir / "report.html", render(summary, title, str(run_dir) if run_dir else None))
    return summary
