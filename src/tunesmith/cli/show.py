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
    if (run.data / "card.html").is_file():
        console.print(f"data card: {run.data / 'card.html'} (and card.json)")
    changes = getattr(result, "changes", [])
    if changes:
        console.print(f"{len(changes)} rows repaired or flagged (each in {run.data / 'changes.jsonl'})")
    for warning in getattr(result, "warnings", [])[:8]:
        console.print(f"[yellow]warning[/]: {warning}")
    by_reason = result.rejects_by_reason()
    if by_reason:
        rt = Table(title=f"{sum(by_reason.values())} rows not kept (each in {run.rejects})", show_edge=False)
        rt.add_column("reason")
        rt.add_column("rows", justify="right")
        for reason, n in by_reason.most_common():
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


def _interval(m: dict[str, Any], key: str) -> str:
    low, high = (m.get("ci") or {}).get(key) or (None, None)
    return f"{_f(low)} – {_f(high)}" if low is not None else "—"


def _footer(
    console: Console, table: Table, report: dict[str, Any], run: Any, rows_file: str, warning: str | None = None
) -> None:
    """The stage-5 table, then its scoring rule, forgetting, any overfitting warning, and where the report is."""
    console.print(table)
    console.print(f"scoring: {report['scoring']}")
    if "forgetting" in report:
        console.print(f"forgetting ({report['forgetting']['suite']} suite): {report['forgetting']['summary']}")
    if warning:
        console.print(f"[yellow]warning[/]: {warning}")
    console.print(f"report: {run.eval / 'report.html'} (and report.md, report.json, {rows_file})")


def preferences(console: Console, report: dict[str, Any], run: Any) -> None:
    title = f"stage 5: {report['split']} split, {report['scored']} held-out pairs"
    table = Table(title=title, show_edge=False)
    ranked = any("spearman" in m for m in report["models"].values())  # ratings: correlation with human scores
    for col in ("model", "accuracy", "95% interval", "margin", "likelihood acc", *(["spearman"] if ranked else [])):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, m in report["models"].items():
        cells = [_f(m["accuracy"]), _interval(m, "accuracy"), _f(m.get("margin")), _f(m.get("likelihood_accuracy"))]
        table.add_row(name, *cells, *([_f(m.get("spearman"))] if ranked else []))
    _footer(console, table, report, run, "pairs.jsonl")


def rewards(console: Console, report: dict[str, Any], run: Any) -> None:
    table = Table(title=f"stage 5: {report['split']} split, {report['scored']} held-out prompts", show_edge=False)
    for col in ("model", "mean reward", "95% interval"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, m in report["models"].items():
        table.add_row(name, _f(m["reward"]), _interval(m, "reward"))
    _footer(console, table, report, run, "answers.jsonl")


def evaluation(console: Console, report: dict[str, Any], run: Any) -> None:
    if report.get("task") == "rewards":
        rewards(console, report, run)
        return
    if report.get("task") == "perplexity":
        perplexity(console, report, run)
        return
    if report.get("task") == "preferences":
        preferences(console, report, run)
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
    warning = report.get("overfitting", {}).get("warning")
    _footer(console, table, report, run, "predictions.jsonl", warning)


def stage(console: Console, name: str, value: Any, run: Any) -> None:
    if name == "export":
        export(console, value)
        return
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


_SPARK = " ▁▂▃▄▅▆▇█"


def _spark(counts: list[int]) -> str:
    """A histogram in one line of block characters, log-scaled: one tall bin must not flatten the rest."""
    import math

    top = math.log1p(max(counts, default=0)) or 1.0
    return "".join(_SPARK[math.ceil(8 * math.log1p(n) / top)] if n else "·" for n in counts)


def _share(p: float) -> str:
    """A percentage that never rounds a minority away: 99.6%, 4.2%, 0.078%."""
    return "100%" if p >= 99.95 else f"{p:.1f}%" if p >= 1 else f"{p:.2g}%"


def _top(counts: dict[str, int], k: int = 3) -> str:
    total = sum(counts.values()) or 1
    shown = [f"{name} {_share(100 * n / total)}" for name, n in list(counts.items())[:k]]
    return ", ".join(shown) + (f" +{len(counts) - k}" if len(counts) > k else "")


def _inspect_overview(console: Console, result: dict[str, Any]) -> None:
    table = Table(title=f"{result['kind']} records", show_edge=False)
    for col, justify in (("split", "left"), ("rows", "right"), ("rejects", "right")):
        table.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("languages", overflow="fold")
    table.add_column("scripts (letters)", overflow="fold")
    for name in result["splits"]:
        file = result.get("files", {}).get(name, {})
        shares = {s: round(v * 1e6) for s, v in result["scripts"][name]["shares"].items()}
        table.add_row(
            name,
            f"{result['counts'][name]:,}",
            f"{file.get('rejects', 0):,}",
            _top(result["languages"][name]),
            _top(shares, 2),
        )
    console.print(table)


def _inspect_cmi(console: Console, result: dict[str, Any]) -> None:
    table = Table(title="code-mixing index (0 = one language)", show_edge=False)
    for col in ("split", "rows measured", "mixed", "mean", "mean if mixed", "0 ... 100 (log)"):
        table.add_column(col, justify="left" if col in ("split", "0 ... 100 (log)") else "right", no_wrap=True)
    for name, c in result["cmi"].items():
        measured = f"{c['rows']:,}" + (f"/{c['of_rows']:,}" if c["rows"] < c["of_rows"] else "")
        table.add_row(
            name,
            measured,
            _pct(100 * c["mixed_fraction"]),
            f"{c['mean_cmi']:.1f}",
            f"{c['mean_cmi_mixed']:.1f}",
            _spark([n for _, n in c["histogram"]]),
        )
    console.print(table)


def _inspect_lengths(console: Console, result: dict[str, Any]) -> None:
    table = Table(title="lengths", show_edge=False)
    for col in ("split", "field", "unit", "p5", "p50", "p95", "max"):
        table.add_column(col, justify="left" if col in ("split", "field", "unit") else "right", no_wrap=True)
    for name, fields in result["lengths"].items():
        for field, units in fields.items():
            for unit, p in units.items():
                table.add_row(name, field, unit, *(f"{p[k]:,}" for k in ("p5", "p50", "p95", "max")))
    console.print(table)


def _inspect_duplicates(console: Console, result: dict[str, Any]) -> None:
    table = Table(title="duplicates within a split", show_edge=False)
    for col in ("split", "exact", "other label", "near clusters", "rows in them", "largest"):
        table.add_column(col, justify="left" if col == "split" else "right", no_wrap=True)
    for name, d in result["duplicates"].items():
        largest = d["largest"][0]["size"] if d["largest"] else 0
        counts = (d["exact"], d.get("label_conflicts", 0), d["near_clusters"], d["near_rows"], largest)
        table.add_row(name, *(f"{n:,}" for n in counts))
    console.print(table)


def _loc(where: str) -> str:
    """``train.tsv:12`` for ``/long/path/to/train.tsv:12``: the file name is enough on a terminal."""
    return where.replace("\\", "/").rsplit("/", 1)[-1]


def _inspect_leaks(console: Console, result: dict[str, Any]) -> None:
    if not result["leaks"]:
        return
    table = Table(title="leaks into later splits", show_edge=False)
    for col in ("earlier → later", "exact", "near", "leaked"):
        table.add_column(col, justify="left" if col == "earlier → later" else "right", no_wrap=True)
    for leak in result["leaks"]:
        share = _pct(100 * leak["rows"] / leak["of_rows"]) if leak["of_rows"] else "—"
        pair = f"{leak['earlier']} → {leak['later']}"
        table.add_row(pair, f"{leak['exact']:,}", f"{leak['near']:,}", f"{leak['rows']:,} ({share})")
    console.print(table)
    examples = [e for leak in result["leaks"] for e in leak["exact_examples"][:1] + leak["near_examples"][:1]]
    for example in examples[:4]:
        same = "=" if example["jaccard"] == 1.0 else f"≈{example['jaccard']:.2f}"
        where = f"  e.g. {_loc(example['source'])} {same} {_loc(example['earlier'])}: "
        if len(where) + 30 > console.width:  # long file names: the text goes on its own line
            console.print(where.rstrip(), highlight=False)
            where = "    "
        room = console.width - len(where) - 1
        text = example["text"].replace("\n", " ")
        console.print(f"{where}{text[: room - 1] + '…' if len(text) > room else text}", highlight=False)


def _inspect_labels(console: Console, result: dict[str, Any]) -> None:
    for name, by_language in result["label_by_language"].items():
        if not by_language:
            continue
        labels = sorted({label for row in by_language.values() for label in row})
        table = Table(title=f"{name}: label × language", show_edge=False)
        table.add_column("language", no_wrap=True)
        for label in [*labels, "total"]:
            table.add_column(label, justify="right", no_wrap=True)
        rows = list(by_language.items())
        for lang, row in rows[:8]:
            table.add_row(lang, *(f"{row.get(label, 0):,}" for label in labels), f"{sum(row.values()):,}")
        if len(rows) > 8:
            rest = [sum(row.get(label, 0) for _, row in rows[8:]) for label in labels]
            table.add_row(f"({len(rows) - 8} more)", *(f"{n:,}" for n in rest), f"{sum(rest):,}")
        console.print(table)


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _inspect_problems(console: Console, result: dict[str, Any]) -> None:
    for name, h in result["homoglyphs"].items():
        if h["rows"]:
            words = ", ".join(f"{w['word']}→{w['suggestion'] or '?'}" for w in h["top"][:6])
            rows = _rows(h["rows"])
            console.print(f"[bold]{name}[/]: {rows} with mixed-script words: {words}", highlight=False)
        if h.get("literal_escapes"):
            rows = _rows(h["literal_escapes"])
            console.print(f"[bold]{name}[/]: {rows} with a literal \\n (an escape never decoded)", highlight=False)
    rejects = result.get("rejects") or {}
    if rejects.get("total"):
        table = Table(title=f"{rejects['total']:,} rows rejected", show_edge=False)
        table.add_column("reason", overflow="fold")
        table.add_column("rows", justify="right")
        for reason, n in rejects["by_reason"].items():
            table.add_row(reason, f"{n:,}")
        console.print(table)
    fertility = (result.get("fertility") or {}).get("languages", {})
    if fertility:
        table = Table(title=f"tokenizer fertility ({result['settings']['tokenizer']})", show_edge=False)
        for col in ("language", "rows", "tokens/word", "byte fallback"):
            table.add_column(col, justify="left" if col == "language" else "right", no_wrap=True)
        for lang, f in list(fertility.items())[:10]:
            tpw, bfr = f["tokens_per_word"], f["byte_fallback_rate"]
            table.add_row(lang, f"{f['rows']:,}", _f(tpw), "—" if bfr is None else _pct(100 * bfr))
        console.print(table)


def inspect(console: Console, result: dict[str, Any]) -> None:
    """The data inspect report: one compact table per part of the card, each fitting 80 columns."""
    _inspect_overview(console, result)
    _inspect_cmi(console, result)
    _inspect_lengths(console, result)
    _inspect_duplicates(console, result)
    _inspect_leaks(console, result)
    _inspect_labels(console, result)
    _inspect_problems(console, result)
    known = result.get("settings", {}).get("identifier_languages")
    if known:
        console.print(f"[dim]language ID knows {', '.join(known)}; other languages show as the nearest of these[/]")
    timings = result.get("timings", {})
    if timings:
        console.print(f"[dim]read in {timings['read_s']:.1f} s, profiled in {timings['profile_s']:.1f} s[/]")


_COMPARE_TITLES = {
    "accuracy": "acc",
    "macro_f1": "macro\nF1",
    "perplexity": "ppl",
    "nll_per_word": "nll/\nword",
    "chrf": "chrF",
}


def _compare_cell(key: str, value: Any, ci: Any, best: Any) -> str:
    """The value (bold when best in its column) over its 95% interval, dimmed, on a second line."""
    from tunesmith.eval.htmlkit import fmt

    text = f"[bold]{fmt(key, value)}[/]" if best is not None and value == best else fmt(key, value)
    if ci and ci[0] is not None and ci[1] is not None:
        text += f"\n[dim]{_short_number(ci[0])}–{_short_number(ci[1])}[/]"
    return text


def _short_number(x: float) -> str:
    """.61 for a share, 236 for a perplexity: an interval must fit under its value in a narrow column."""
    return f"{x:.2f}".removeprefix("0") if abs(x) < 1 else f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def compare(console: Console, result: dict[str, Any]) -> None:
    """``tunesmith compare``: runs as bold header rows, their models beneath; at most three metrics, 80 columns."""
    from tunesmith.eval.htmlkit import best_values

    columns = [k for k in result["columns"] if k in _COMPARE_TITLES][:3]
    best = best_values([r["metrics"] for r in result["rows"]], columns)
    table = Table(title=f"{len(result['runs'])} runs compared", show_edge=False)
    table.add_column("run / model", overflow="fold", max_width=24)
    for key in columns:
        table.add_column(_COMPARE_TITLES[key], justify="right", no_wrap=True)
    for title in ("steps", "tok/s", "best\nval"):
        table.add_column(title, justify="right", no_wrap=True)
    previous = None
    for r in result["rows"]:
        if r["run"] != previous:
            table.add_row(f"[bold]{r['run']}[/]")
            previous = r["run"]
        cells = [_compare_cell(k, r["metrics"][k], r["ci"][k], best.get(k)) for k in columns]
        speed = "—" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:,.0f}"
        table.add_row(f"  {r['model']}", *cells, _f(r["steps"]), speed, _f(r["best_val_loss"]))
    console.print(table)
    console.print("[dim]bold: best in its column; dim: 95% interval; training figures on tuned rows[/]")
    for run in result["runs"]:
        data = f", {run['data']}" if run["data"] else ""
        console.print(f"{run['run']}: {run['method']}, {run['base']}{data}", highlight=False)
        if run["overfitting_warning"]:
            console.print(f"  [yellow]warning[/]: {run['overfitting_warning']}", highlight=False)


def export(console: Console, result: dict[str, Any]) -> None:
    """The files an export wrote, their sizes, and how to use them."""
    table = Table(title=f"export {result['format']} -> {result['out']}")
    table.add_column("file")
    table.add_column("size", justify="right")
    for f in result["files"]:
        table.add_row(f["path"], f"{f['bytes'] / 1e6:,.1f} MB")
    console.print(table)
    if result.get("note"):
        console.print(f"[yellow]note:[/] {result['note']}", highlight=False)
    out = result["out"]
    ollama = f"`ollama create NAME -f {out}/Modelfile`" if result.get("ollama") else "add --ollama for a Modelfile"
    loader = "AutoModelForSequenceClassification" if result.get("labels") else "AutoModelForCausalLM"
    usage = {
        "hf": f"{loader}.from_pretrained('{out}')" + ("" if result.get("labels") else f", or `tunesmith serve {out}`"),
        "gguf": f"llama.cpp, or Ollama: {ollama}",
        "adapter": f"AutoPeftModelForCausalLM.from_pretrained('{out}'); card in {out}/README.md",
    }[result["format"]]
    console.print(f"use: {usage}", highlight=False)


def serving(console: Console, models: list[str], host: str, port: int, keys: bool, store: str | None) -> None:
    """Where the server listens, what it serves, where requests are logged, and a first request to try."""
    url = f"http://{host}:{port}/v1"
    console.print(f"serving {', '.join(models)} at {url} ({'API keys required' if keys else 'no API key'})")
    console.print(f"request log: {store.split('@')[-1] if store else 'off'}", highlight=False)
    console.print(
        f"try: OpenAI(base_url='{url}', api_key='{'YOUR_KEY' if keys else 'none'}').chat.completions.create("
        f"model='{models[-1]}', messages=[{{'role': 'user', 'content': 'hello'}}])",
        highlight=False,
    )
