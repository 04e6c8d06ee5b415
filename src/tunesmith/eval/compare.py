"""``tunesmith compare``: several evaluated runs side by side, as one table (JSON), a terminal table and a page.

Fine-tuning for a low-resource language is mostly a comparison: LoRA against full tuning, one base model
against another, 1,000 rows against 3,000. Each run's ``eval/report.json`` already holds its numbers; this
module lines them up. One row per run and model (the prompting baselines of each run included, since the
baseline a tuned model beat is part of its result), with every metric column present in every row (``None``
where a run's task has no such metric), so runs of different tasks still share one table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import RunDirError
from tunesmith.eval import plots
from tunesmith.eval.curves import overfitting, read_curves
from tunesmith.eval.htmlkit import (
    GENERATION,
    HEADLINE,
    METRICS,
    best_values,
    chart,
    e,
    fmt,
    metric_cell,
    page,
    table,
    with_generation,
)

__all__ = ["compare_runs", "render_compare_html", "train_file_name"]

# Metrics charted together: the rows that have the first share one figure, one panel per metric.
_CHARTS = (("accuracy", "macro_f1"), ("perplexity",), ("chrf", "bleu"))


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def train_file_name(manifest: dict[str, Any]) -> str | None:
    """The training data's file (or dataset) name as the data manifest records its input."""
    source = (manifest.get("inputs") or {}).get("train") or {}
    return Path(str(source.get("path") or source.get("dataset") or "")).name or None


def _data(run_dir: Path) -> tuple[str | None, str | None]:
    """The training data as a reader knows it (file name and rows kept) and the prepared split's hash."""
    manifest = _read(run_dir / "data" / "manifest.json") or {}
    split = (manifest.get("splits") or {}).get("train") or {}
    name = train_file_name(manifest)
    if name and split.get("rows") is not None:
        name = f"{name} ({split['rows']:,} rows)"
    sha = split.get("sha256")
    return name, sha[:12] if sha else None


def _load_run(run_dir: Path) -> dict[str, Any]:
    """One run's report, training summary and curves; a clear error for a run that was never evaluated."""
    if not run_dir.is_dir():
        raise RunDirError(f"compare: {run_dir} is not a directory (pass run directories, e.g. runs/my-run).")
    report = _read(run_dir / "eval" / "report.json")
    if report is None:
        raise RunDirError(
            f"compare: {run_dir} has no eval/report.json; evaluate it first with `tunesmith eval {run_dir}`."
        )
    training = report.get("training") or _read(run_dir / "train.json") or {}
    metrics = run_dir / "metrics.jsonl"
    curves = read_curves(metrics) if metrics.is_file() else None
    return {"report": report, "training": training, "curves": curves}


def _run_entry(run_dir: Path, loaded: dict[str, Any], label: str) -> dict[str, Any]:
    report, training, curves = loaded["report"], loaded["training"], loaded["curves"]
    data, data_sha = _data(run_dir)
    verdict = overfitting(curves) if curves else None
    return {
        "run": label,
        "dir": str(run_dir),
        "task": report.get("task", "labels"),
        "method": report.get("method") or training.get("method"),
        "base": report.get("base_model") or training.get("base"),
        "data": data,
        "data_sha256": data_sha,
        "split": report.get("split"),
        "eval_rows": report.get("rows"),
        "steps": training.get("steps"),
        "tokens_per_s": training.get("tokens_per_s"),
        "best_val_loss": training.get("best_val_loss"),
        "best_step": training.get("best_step"),
        "stopped_early": training.get("stopped_early"),
        "overfitting_warning": verdict["warning"] if verdict else None,
        "gap": verdict["gap"] if verdict else None,
        "val_curve": [list(p) for p in curves["val"]] if curves else [],
    }


def _labels(run_dirs: Sequence[Path], reports: Sequence[dict[str, Any]]) -> list[str]:
    """Each run's name, or its directory where two runs share a name (one config run twice, say)."""
    names = [str(r.get("run") or d.name) for d, r in zip(run_dirs, reports, strict=True)]
    return [str(d) if names.count(n) > 1 else n for d, n in zip(run_dirs, names, strict=True)]


def compare_runs(run_dirs: Sequence[Path | str]) -> dict[str, Any]:
    """Line up the evaluations of several runs.

    Args:
        run_dirs: Run directories, each with ``eval/report.json`` (``metrics.jsonl``, ``train.json`` and
            ``data/manifest.json`` are read when present).

    Returns:
        ``{"columns": [metric keys], "runs": [one entry per run: dir, task, method, base, data, steps,
        tokens_per_s, best_val_loss, overfitting_warning, val_curve...], "rows": [one per run and model: run,
        model, tuned, method, base, data, task, metrics {column: value or None}, ci {column: [low, high] or
        None}, steps, tokens_per_s, best_val_loss (training figures on tuned rows only)]}``.

    Raises:
        RunDirError: A directory is missing or has no ``eval/report.json`` (the message names it and the
            command that writes it).
    """
    dirs = [Path(d) for d in run_dirs]
    loaded = [_load_run(d) for d in dirs]
    labels = _labels(dirs, [x["report"] for x in loaded])
    runs = [_run_entry(d, x, label) for d, x, label in zip(dirs, loaded, labels, strict=True)]
    per_model = [
        (run, name, metrics)
        for run, x in zip(runs, loaded, strict=True)
        for name, metrics in with_generation(x["report"]).items()
    ]
    columns = [k for k in (*HEADLINE, *GENERATION) if any(m.get(k) is not None for _, _, m in per_model)]
    rows = []
    for run, name, m in per_model:
        tuned = name.startswith("tuned")
        rows.append(
            {
                "run": run["run"],
                "model": name,
                "tuned": tuned,
                "method": run["method"] if tuned else None,
                "base": run["base"],
                "data": run["data"],
                "task": run["task"],
                "metrics": {k: m.get(k) for k in columns},
                "ci": {k: m["ci"].get(k) for k in columns},
                **{k: run[k] if tuned else None for k in ("steps", "tokens_per_s", "best_val_loss")},
            }
        )
    return {"columns": columns, "runs": runs, "rows": rows}


def _runs_table(result: dict[str, Any]) -> str:
    rows = []
    for r in result["runs"]:
        best = "—" if r["best_val_loss"] is None else f"{fmt('loss', r['best_val_loss'])} (step {r['best_step']})"
        rows.append(
            [
                f"<b>{e(r['run'])}</b>"
                + ("" if Path(r["dir"]).name == r["run"] else f"<br><code>{e(r['dir'])}</code>"),
                e(r["task"]),
                e(r["method"] or "—"),
                f"<code>{e(r['base'] or '—')}</code>",
                e(r["data"] or "—") + (f"<br><code>{e(r['data_sha256'])}</code>" if r["data_sha256"] else ""),
                f'<td class="n">{fmt("n", r["steps"])}</td>',
                f'<td class="n">{fmt("tokens_per_s", r["tokens_per_s"])}</td>',
                f'<td class="n">{best}</td>',
            ]
        )
    header = ["run", "task", "method", "base", "training data", "steps", "tokens / s", "best val loss"]
    warnings = "".join(
        f'<p class="warn">{e(r["run"])}: {e(r["overfitting_warning"])}</p>'
        for r in result["runs"]
        if r["overfitting_warning"]
    )
    return table(header, rows) + warnings


def _metrics_table(result: dict[str, Any]) -> str:
    columns = result["columns"]
    best = best_values([r["metrics"] for r in result["rows"]], columns)
    rows = []
    for r in result["rows"]:
        model = f"<b>{e(r['model'])}</b>" if r["tuned"] else e(r["model"])
        cells = [metric_cell(k, r["metrics"][k], r["ci"][k], best.get(k)) for k in columns]
        rows.append([e(r["run"]), model, *cells])
    return table(["run", "model", *(METRICS[k][0] for k in columns)], rows) + (
        '<p class="note">Best value per column in bold, under it the 95% bootstrap interval where measured. '
        "Compare only runs evaluated on the same split of the same data.</p>"
    )


def _charts(result: dict[str, Any]) -> str:
    out = []
    for keys in _CHARTS:
        rows = [r for r in result["rows"] if r["metrics"].get(keys[0]) is not None]
        shown = [k for k in keys if any(r["metrics"].get(k) is not None for r in rows)]
        if not rows:
            continue
        names = [f"{r['run']}\n{r['model']}" for r in rows]
        panels = [
            (METRICS[k][0], [(r["metrics"].get(k), *(r["ci"].get(k) or (None, None))) for r in rows]) for k in shown
        ]
        out.append(chart(plots.model_bars, names, panels, [r["tuned"] for r in rows], alt=" and ".join(shown)))
    curves = {r["run"]: [tuple(p) for p in r["val_curve"]] for r in result["runs"] if r["val_curve"]}
    if curves:
        note = '<p class="note">Losses compare only between runs with the same objective, data and tokenizer.</p>'
        out.append("<h3>Validation loss</h3>" + chart(plots.val_curves, curves, alt="validation loss by run") + note)
    return "".join(out)


def render_compare_html(result: dict[str, Any]) -> str:
    """One self-contained page: the runs, the metrics table, bar charts with intervals and validation curves."""
    body = (
        f'<section id="runs"><h2>Runs</h2>{_runs_table(result)}</section>'
        f'<section id="metrics"><h2>Metrics</h2>{_metrics_table(result)}</section>'
        f'<section id="charts"><h2>Charts</h2>{_charts(result)}</section>'
    )
    nav = [("runs", "Runs"), ("metrics", "Metrics"), ("charts", "Charts")]
    return page(f"Comparing {len(result['runs'])} runs", body, nav, footer="tunesmith compare")
