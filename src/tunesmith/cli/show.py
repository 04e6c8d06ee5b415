"""What the CLI prints: rich tables for each stage's result. No logic beyond formatting."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def data(console: Console, result: Any, run: Any) -> None:
    if result is None:
        console.print(f"[bold]data[/]: prepared data in {run.data} is current; skipped")
        return
    table = Table(title="stage 1: data", show_edge=False)
    table.add_column("split")
    table.add_column("rows", justify="right")
    for name, n in result.counts.items():
        table.add_row(name, str(n))
    console.print(table)
    kind = f"{result.kind} records; " if getattr(result, "kind", "") else ""
    console.print(f"{kind}labels: {', '.join(result.labels) or '—'}; {result.input_rows} input rows")
    changes = getattr(result, "changes", [])
    if changes:
        console.print(f"{len(changes)} rows repaired or flagged (each in {run.data / 'changes.jsonl'})")
    for warning in getattr(result, "warnings", [])[:8]:
        console.print(f"[yellow]warning[/]: {warning}")
    if result.rejects:
        rt = Table(title=f"{len(result.rejects)} rows not kept (each in {run.rejects})", show_edge=False)
        rt.add_column("reason")
        rt.add_column("rows", justify="right")
        for reason, n in result.rejects_by_reason().most_common():
            rt.add_row(reason, str(n))
        console.print(rt)


def train(console: Console, summary: dict[str, Any], run: Any) -> None:
    if summary["method"] == "fewshot":
        console.print(
            f"[bold]train[/]: fewshot ({summary['select']}): no weights change; "
            f"{summary['demonstrations']} demonstrations per query -> {summary['output']}"
        )
        return
    console.print(
        f"[bold]train[/]: {summary['method']} on {summary['base']}: {summary['trainable_params']:,} trainable params "
        f"({summary['trainable_pct']}%), {summary['steps']} steps, {summary['tokens_per_s']:,} tok/s "
        f"({summary['precision']}), final loss {_f(summary['final_train_loss'])}, best val loss "
        f"{_f(summary['best_val_loss'])} -> {summary['output']}"
    )


def perplexity(console: Console, report: dict[str, Any], run: Any) -> None:
    table = Table(title=f"stage 5: {report['split']} split, {report['rows']} held-out rows", show_edge=False)
    for col in ("model", "loss", "perplexity", "tokens"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, m in report["models"].items():
        table.add_row(name, _f(m["loss"]), f"{m['perplexity']:.2f}", f"{m['tokens']:,}")
    console.print(table)
    console.print(f"scoring: {report['scoring']}; report: {run.eval / 'report.md'}")


def evaluation(console: Console, report: dict[str, Any], run: Any) -> None:
    if report.get("task") == "perplexity":
        perplexity(console, report, run)
        return
    table = Table(title=f"stage 5: {report['split']} split, {report['rows']} held-out rows", show_edge=False)
    models = list(report["models"].values())
    rule = next((m["calibration"] for m in models if "calibration" in m), None)
    other = "argmax" if rule == "batch" else "calibrated"
    columns = ["model", "accuracy", "macro-F1", "weighted-F1"] + ([f"{other} acc / macro-F1"] if rule else [])
    for col in columns:
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, m in report["models"].items():
        cells = [name, _f(m["accuracy"]), _f(m["macro_f1"]), _f(m.get("weighted_f1"))]
        if rule:
            o = m.get("other_rule", {})
            cells.append(f"{_f(o.get('accuracy'))} / {_f(o.get('macro_f1'))}")
        table.add_row(*cells)
    console.print(table)
    console.print(f"scoring: {report['scoring']}")
    console.print(f"report: {run.eval / 'report.md'} (and report.json, predictions.jsonl)")


def stage(console: Console, name: str, value: Any, run: Any) -> None:
    {"data": data, "train": train, "eval": evaluation}[name](console, value, run)


def final(console: Console, result: dict[str, Any]) -> None:
    console.print(f"[bold green]done[/]: run directory {result['run_dir']}")


def models(console: Console, rows: list[dict[str, str]]) -> None:
    table = Table(title="embedded models (no network needed)")
    for col in ("name", "kind", "package", "installed", "location"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["kind"], r["package"], r["installed"], r["location"])
    console.print(table)
    console.print("Also accepted as model.base: a local HF model dir, a .gguf file, or a hub id (needs network).")


def mapping(console: Console, title: str, info: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("key")
    table.add_column("value", overflow="fold")
    for key, value in info.items():
        if isinstance(value, dict):
            for k, v in value.items():
                table.add_row(f"{key}.{k}", str(v))
        else:
            table.add_row(key, str(value))
    console.print(table)


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _pct(p: float) -> str:
    return f"{p:.0f}%" if p >= 10 else f"{p:.1f}%" if p >= 0.1 else f"{p:.2g}%"


def plan(console: Console, result: dict[str, Any], path: Any) -> None:
    table = Table(
        title=f"methods for {result['model']}: {result['objective']}, {result['precision']}, "
        f"{result['batch_tokens']} tokens per micro-batch, {result['train_rows']:,} training rows"
    )
    table.add_column("method", no_wrap=True)
    for col in ("trains", "weights", "grad+opt", "activ.", "peak", "cost"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, m in result["methods"].items():
        mem = m["memory_gb"]
        label = ("> " if name == result["recommended"] else "  ") + name
        label += " *" if name == result["configured"] else ""
        table.add_row(
            label,
            f"{_count(m['trainable_params'])} ({_pct(m['trainable_pct'])})",
            f"{sum(mem['weights'].values()):.2f}",
            f"{mem['gradients'] + mem['optimizer']:.2f}",
            f"{mem['activations'] + mem['head']:.2f}",
            f"{mem['peak']:.2f}",
            f"{m['step_cost_vs_full']:.2f}x",
        )
    console.print(table)
    console.print("> recommended, * configured; memory in GB; cost: compute per step relative to full tuning")
    for name, why in result["not_applicable"].items():
        console.print(f"[dim]{name}: not applicable here ({why})[/dim]")
    runtime = next(iter(result["methods"].values()))["memory_gb"]["runtime"] if result["methods"] else 0
    console.print(
        f"{result['device']}: {result['memory_available_gb']:.1f} GB available of {result['memory_total_gb']:.1f} GB. "
        f"Peak = weights + gradients + optimizer + activations + LM head + runtime ({runtime:.2f} GB)."
    )
    console.print(f"[bold]Recommended: {result['recommended']}[/bold]: {result['why']}.")
    console.print(f"Written to {path}")
