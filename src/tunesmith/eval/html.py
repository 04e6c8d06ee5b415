"""``eval/report.html``: the evaluation report as one self-contained page.

The page must open wherever a run directory is copied (a laptop offline, a CI artifact viewer, an e-mail), so
it fetches nothing: the style is one ``<style>`` block and the charts are SVG data URIs (:mod:`.plots`). Every
string from the run (model names, labels, group values, file names) goes through :func:`html.escape`: a group
value holding ``<script>`` shows as text.

Sections appear only when the report has their data, in the order a reader asks the questions: did tuning
beat the prompting baselines, and by more than the noise (headline, intervals, paired tests)? Did training
overfit (loss curves)? Where does the model go wrong (confusion, groups)? What did it lose (forgetting)? The
keys that later evaluation stages add (``ci``, ``group_gap``, ``paired``, ``forgetting``, ``generation``) are
rendered when present and skipped when absent, so older reports still render.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.errors import RunDirError
from tunesmith.eval import html_sections, plots
from tunesmith.eval.curves import overfitting, read_curves, read_series
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
from tunesmith.rundir import atomic_write_text

__all__ = ["render_report_html", "write_report_html"]


def _models(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return report.get("models", {})


def _is_tuned(name: str) -> bool:
    return name.startswith("tuned")


def _headline(report: dict[str, Any]) -> str:
    models = _models(report)
    source = with_generation(report)
    keys = [k for k in HEADLINE if any(m.get(k) is not None for m in models.values())]
    if not keys:  # a generation task: its generation metrics are the headline
        keys = [k for k in GENERATION if any(m.get(k) is not None for m in source.values())]
    best = best_values(source.values(), keys)
    rule = next((m["calibration"] for m in models.values() if "calibration" in m), None)
    counted = "rows" if any("n" in m for m in models.values()) else "tokens"
    header = ["model", *(METRICS[k][0] for k in keys), counted]
    header += [f"{'argmax' if rule == 'batch' else 'calibrated'}: acc / macro-F1"] if rule else []
    rows = []
    for name, m in source.items():
        ci = m.get("ci") or {}
        cells = [e(name), *(metric_cell(k, m.get(k), ci.get(k), best.get(k)) for k in keys)]
        cells.append(f'<td class="n">{fmt("n", m.get("n" if counted == "rows" else "tokens"))}</td>')
        if rule:
            other = m.get("other_rule", {})
            pair = f"{fmt('accuracy', other.get('accuracy'))} / {fmt('macro_f1', other.get('macro_f1'))}"
            cells.append(f'<td class="n">{pair}</td>')
        rows.append(cells)
    ci = any(m.get("ci") for m in source.values())
    note = "Best value per column in bold" + ("; under it, the 95% bootstrap interval." if ci else ".")
    note = f'<p class="note">{note}</p>' if len(models) > 1 else ""
    return table(header, rows) + note + _baseline_chart(source, keys) + _paired(report)


def _paired_tests(paired: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(pair, test)`` rows from ``{pair: test}`` or ``{pair: {metric: test}}`` (McNemar's has counts, no delta)."""
    out = []
    for name, tests in paired.items():
        if "p_value" in tests:
            out.append((name, tests))
            continue
        for metric, test in tests.items():
            if isinstance(test, dict):
                out.append((name, {"metric": test.get("metric", metric), **test}))
    return out


def _paired(report: dict[str, Any]) -> str:
    rows = []
    for name, p in _paired_tests(report.get("paired") or {}):
        metric = p.get("metric", "")
        higher = METRICS.get(metric, ("", "loss" not in metric))[1]
        low, high, delta, p_value = p.get("low"), p.get("high"), p.get("delta"), p.get("p_value")
        if delta is None and "b" in p:  # McNemar: rows only the first model got right minus only the second
            delta, metric = None, f"{metric} (McNemar: {p['b']} vs {p['c']} rows)"
            better = p["b"] > p["c"]
        else:
            better = delta is not None and (delta > 0) == bool(higher)
        if low is not None and high is not None:  # noqa: SIM108  (mypy narrows None only in an if-block)
            clear = low > 0 or high < 0
        else:  # a test without an interval (McNemar, permutation): its p-value decides
            clear = p_value is not None and p_value < 0.05
        verdict = ("better" if better else "worse") if clear else "no clear difference"
        interval = f"{low:+.3f} to {high:+.3f}" if low is not None and high is not None else "—"
        rows.append(
            [
                e(name),
                e(METRICS.get(metric, (metric,))[0]),
                "—" if delta is None else f"{delta:+.3f}",
                interval,
                "—" if p_value is None else f"{p_value:.3g}",
                f'<span class="{"good" if clear and better else "warn" if clear else ""}">{verdict}</span>',
            ]
        )
    if not rows:
        return ""
    header = ["paired test", "metric", "difference", "95% interval", "p", "verdict"]
    return "<h3>Paired comparisons (same rows)</h3>" + table(header, rows)


def _baseline_chart(source: dict[str, dict[str, Any]], keys: list[str]) -> str:
    """Bars of the first two headline metrics; error bars are the intervals."""
    if len(source) < 2:
        return ""
    shown = [k for k in keys if k not in ("loss", "tokens")][:2]
    panels = [
        (METRICS[k][0], [(m.get(k), *((m.get("ci") or {}).get(k) or (None, None))) for m in source.values()])
        for k in shown
    ]
    names = list(source)
    return chart(plots.model_bars, names, panels, [_is_tuned(n) for n in names], alt="baseline comparison")


def _training(report: dict[str, Any], curves: dict[str, Any] | None) -> str:
    parts = []
    verdict = report.get("overfitting") or (overfitting(curves) if curves else None)
    if curves and (curves["train"] or curves["val"]):
        v = verdict or {}
        parts.append(
            chart(
                plots.loss_curves,
                curves["train"],
                curves["val"],
                v.get("best_step"),
                v.get("early_stop_step"),
                v.get("rising_evals", 0) if v.get("rising") else 0,
                v.get("train_window", 5),
                alt="training and validation loss",
            )
        )
    panels = _metric_panels((curves or {}).get("series") or {})
    if panels:
        parts.append(chart(plots.metric_panels, panels, alt="reward, KL and accuracy per step"))
    if verdict:
        parts.append(_verdict(verdict))
    if report.get("training"):
        parts.append(_training_table(report["training"]))
    return "".join(parts)


SERIES = ("reward", "val_reward", "kl", "entropy", "accuracy", "val_accuracy", "margin", "val_margin")


def _metric_panels(series: dict[str, list[tuple[int, float]]]) -> list[tuple[str, dict[str, Any]]]:
    """PPO's reward and KL curves, or a preference run's accuracy and margin curves, where logged."""
    panels: list[tuple[str, dict[str, Any]]] = []
    for title, train_key, val_key, train_name, val_name in (
        ("mean reward", "reward", "val_reward", "training (sampled)", "validation (greedy)"),
        ("KL to the base model", "kl", None, "per answer", None),
        ("entropy per token", "entropy", None, "sampled answers", None),
        ("pairwise accuracy", "accuracy", "val_accuracy", "training", "validation"),
        ("reward margin", "margin", "val_margin", "training", "validation"),
    ):
        pairs = ((train_key, train_name), (val_key, val_name))
        lines = {str(name): series[key] for key, name in pairs if key and name and key in series}
        if lines:
            panels.append((title, lines))
    return panels


def _verdict(v: dict[str, Any]) -> str:
    lines = []
    if v.get("warning"):
        lines.append(f'<p class="warn">Overfitting: {e(v["warning"])}</p>')
    if v.get("best_step") is not None:
        lines.append(
            f"<p>Best validation loss {fmt('loss', v['best_val_loss'])} at step {v['best_step']} "
            f"({v['evaluations']} evaluation{'s' if v['evaluations'] != 1 else ''}); last "
            f"{fmt('loss', v['last_val_loss'])}. Generalisation gap at the last evaluation (validation minus the "
            f"mean of the last {v.get('train_window', 5)} logged training losses): <b>{fmt('loss', v['gap'])}</b>.</p>"
        )
    if v.get("early_stop_step") is not None:
        lines.append(f"<p>Training stopped early at step {v['early_stop_step']}.</p>")
    if v.get("evaluations", 0) == 0:
        lines.append('<p class="note">No validation loss was logged (no validation split): no overfitting check.</p>')
    elif v["evaluations"] == 1:
        lines.append(
            '<p class="note">With one validation the curve shows no trend; <code>train.eval_every: N</code> '
            "validates every N steps.</p>"
        )
    return "".join(lines)


_TRAINING_ROWS = (
    ("method", "method"),
    ("objective", "objective"),
    ("base", "base model"),
    ("trainable_params", "trainable parameters"),
    ("steps", "optimizer steps"),
    ("epochs_completed", "epochs"),
    ("tokens_seen", "tokens seen"),
    ("tokens_per_s", "tokens / s"),
    ("train_seconds", "seconds"),
    ("precision", "precision"),
    ("final_train_loss", "final training loss"),
    ("best_val_loss", "best validation loss"),
    ("best_step", "best step"),
    ("stopped_early", "stopped early"),
    ("select", "demonstrations chosen by"),
    ("demonstrations", "demonstrations per query"),
)


def _training_table(t: dict[str, Any]) -> str:
    rows = []
    for key, label in _TRAINING_ROWS:
        if t.get(key) is None:
            continue
        value = t[key]
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif key == "trainable_params" and t.get("trainable_pct") is not None:
            value = f"{value:,} ({t['trainable_pct']:.3g}%)"
        elif isinstance(value, float):
            value = f"{value:,.4g}" if "loss" in key else f"{value:,.1f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        rows.append([label, e(value)])
    if t.get("class_weights"):
        rows.append(["class weights", e(", ".join(f"{k} {v:.3g}" for k, v in t["class_weights"].items()))])
    return "<h3>Training summary</h3>" + table(["", ""], rows, show_header=False)


def _meta(report: dict[str, Any]) -> str:
    parts = [
        f"task <b>{e(report.get('task', 'labels'))}</b>",
        f"split <code>{e(report.get('split', '?'))}</code>, {report.get('rows', 0):,} rows",
        f"base model <code>{e(report.get('base_model', '?'))}</code>",
        f"method <b>{e(report.get('method', '?'))}</b>",
    ]
    lines = [f'<p class="meta">{"; ".join(parts)}</p>']
    if report.get("labels"):
        gold = report.get("gold_counts", {})
        labels = ", ".join(f"{e(lab)} ({gold[lab]:,})" if lab in gold else e(lab) for lab in report["labels"])
        lines.append(f'<p class="meta">labels (gold rows): {labels}</p>')
    if report.get("scoring"):
        lines.append(f'<p class="meta">scoring: {e(report["scoring"])}</p>')
    return "".join(lines)


def render_report_html(report: dict[str, Any], curves: dict[str, Any] | None, card: dict[str, Any] | None) -> str:
    """The whole report page; a pure function of its inputs, so tests and ``compare`` need no run dir.

    Args:
        report: ``eval/report.json`` as a dict (a precomputed ``overfitting`` entry is used when present).
        curves: :func:`tunesmith.eval.curves.read_curves` of the run's ``metrics.jsonl``, or ``None``.
        card: ``data/card.json``, or ``None``.

    Returns:
        The HTML document, with a section (and a link at the top) for each part the inputs hold.
    """
    sections = [
        ("headline", "Tuned vs baselines", _headline(report)),
        ("training", "Training and overfitting", _training(report, curves)),
        ("confusion", "Confusion", html_sections.confusion(report)),
        ("groups", "By group", html_sections.groups(report)),
        ("forgetting", "Forgetting", html_sections.forgetting(report)),
        ("generation", "Generation", html_sections.generation_section(report)),
        ("data", "Data", html_sections.data(card)),
    ]
    body = _meta(report) + "".join(
        f'<section id="{sid}"><h2>{title}</h2>{html}</section>' for sid, title, html in sections if html
    )
    nav = [(sid, title) for sid, title, html in sections if html]
    return page(f"Evaluation: {report.get('run', '')}", body, nav)


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_report_html(run_dir: Path, out: Path | None = None) -> Path:
    """Render ``eval/report.json`` with the run's curves, training summary and data card into one HTML file.

    Args:
        run_dir: The run directory; ``eval/report.json`` must exist.
        out: Where to write; by default ``run_dir/eval/report.html`` (written via a temp file and rename).

    Returns:
        The path written.
    """
    run_dir = Path(run_dir)
    report = _read_json(run_dir / "eval" / "report.json")
    if report is None:
        raise RunDirError(f"{run_dir}: no eval/report.json; run `tunesmith eval {run_dir}` first.")
    if "training" not in report and (training := _read_json(run_dir / "train.json")):
        report["training"] = training
    metrics = run_dir / "metrics.jsonl"
    curves = read_curves(metrics) if metrics.is_file() else None
    if curves is not None:
        curves["series"] = read_series(metrics, SERIES)
    out = out or run_dir / "eval" / "report.html"
    atomic_write_text(out, render_report_html(report, curves, _read_json(run_dir / "data" / "card.json")))
    return out
