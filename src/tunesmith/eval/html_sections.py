"""The report page's sections after the headline: confusion, groups, forgetting, generation, data.

Each function takes the report (or the data card) and returns the section's HTML, or ``""`` when the report
has nothing for it, so :func:`tunesmith.eval.html.render_report_html` can leave the section (and its link)
out. Text from the run is escaped with :func:`~tunesmith.eval.htmlkit.e` before it enters the page.
"""

from __future__ import annotations

from typing import Any

from tunesmith.eval import plots
from tunesmith.eval.htmlkit import GENERATION, METRICS, best_values, chart, e, fmt, generation_of, metric_cell, table

__all__ = ["confusion", "data", "forgetting", "generation_section", "groups"]

_CHART_GROUPS = 30  # group values drawn in a chart (the largest); the table lists all of them


def _models(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return report.get("models", {})


def confusion(report: dict[str, Any]) -> str:
    """A heatmap per model (shares of each gold row, so a rare label's errors show) and a per-label table."""
    models = {n: m for n, m in _models(report).items() if m.get("confusion")}
    if not models:
        return ""
    maps = "".join(
        chart(plots.confusion, m["confusion"]["labels"], m["confusion"]["matrix"], name, alt=f"confusion: {name}")
        for name, m in models.items()
    )
    return f'<div class="row">{maps}</div>' + _per_label(models)


def _per_label(models: dict[str, dict[str, Any]]) -> str:
    labels = list(next(iter(models.values())).get("per_label", {}))
    if not labels:
        return ""
    head = "".join(f'<th colspan="4" class="c">{e(n)}</th>' for n in models)
    per_model = "".join(f"<th class='n'>{t}</th>" for t in ("precision", "recall", "F1", "predicted"))
    sub = "<th>label</th><th class='n'>gold</th>" + per_model * len(models)
    body = []
    for lab in labels:
        first = next(iter(models.values()))["per_label"][lab]
        cells = [f"<td>{e(lab)}</td><td class='n'>{first.get('support', '—')}</td>"]
        for m in models.values():
            s = m.get("per_label", {}).get(lab, {})
            cells += [f"<td class='n'>{fmt('accuracy', s.get(k))}</td>" for k in ("precision", "recall", "f1")]
            cells.append(f"<td class='n'>{m.get('predicted_counts', {}).get(lab, '—')}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<h3>Per label</h3><table><tr><th></th><th></th>{head}</tr><tr>{sub}</tr>{''.join(body)}</table>"


def groups(report: dict[str, Any]) -> str:
    """Per group key: bars per group value and model (few-row groups hatched), the best-worst gap, a table."""
    models = _models(report)
    keys = list(dict.fromkeys(k for m in models.values() for k in (m.get("groups") or {})))
    return "".join(_group_key(key, models) for key in keys)


_GROUP_METRICS = ("accuracy", "macro_f1", "score")  # "score": a per-row score's mean (loss, chrF) per group


def _group_key(key: str, models: dict[str, dict[str, Any]]) -> str:
    by_model = {n: m["groups"][key] for n, m in models.items() if (m.get("groups") or {}).get(key)}
    values = list(dict.fromkeys(v for groups in by_model.values() for v in groups))
    metrics = [k for k in _GROUP_METRICS if any(k in g for groups in by_model.values() for g in groups.values())]
    if not values or not metrics:
        return ""
    n_of = {v: next((g[v].get("n", 0) for g in by_model.values() if v in g), 0) for v in values}
    shown = sorted(values, key=lambda v: -n_of[v])[:_CHART_GROUPS]
    drawn = metrics[0]
    series = {
        name: [(_bar(groups.get(v, {}), drawn), bool(groups.get(v, {}).get("few_rows"))) for v in shown]
        for name, groups in by_model.items()
    }
    label = METRICS.get(drawn, (drawn,))[0]
    more = f'<p class="note">The {len(shown)} largest of {len(values)} drawn.</p>' if len(shown) < len(values) else ""
    bars = chart(plots.group_bars, shown, series, label, alt=f"{label} by {key}")
    gaps = "".join(_gap_line(n, (models[n].get("group_gap") or {}).get(key), by_model[n]) for n in by_model)
    header = [key, "rows", *(f"{n}: {METRICS.get(k, (k,))[0]}" for k in metrics for n in by_model)]
    rows = []
    for v in values:
        few = any(g.get(v, {}).get("few_rows") for g in by_model.values())
        cells = [
            metric_cell(k, g.get(v, {}).get(k), _ci(g.get(v, {}), k), None) for k in metrics for g in by_model.values()
        ]
        rows.append(
            [e(v) + (' <span class="tag">few rows</span>' if few else ""), f'<td class="n">{n_of[v]:,}</td>', *cells]
        )
    return f"<h3>By {e(key)}</h3>{bars}{more}{gaps}{table(header, rows)}"


def _ci(g: dict[str, Any], metric: str) -> Any:
    """A group's interval: ``{metric: [low, high]}`` for label metrics, a bare ``[low, high]`` for a score."""
    ci = g.get("ci")
    if isinstance(ci, dict):
        return ci.get(metric)
    return ci if isinstance(ci, list) and metric == "score" else None


def _bar(g: dict[str, Any], metric: str) -> tuple[float | None, float | None, float | None]:
    low, high = _ci(g, metric) or (None, None)
    return g.get(metric), low, high


def _gap_line(model: str, gap: dict[str, Any] | None, by_value: dict[str, Any]) -> str:
    """``best``/``worst`` name group values, ``best_value``/``worst_value`` their scores (eval.groups.group_gap)."""
    if not gap or gap.get("gap") is None:
        return ""
    best = by_value.get(gap["best"], {})
    metric = gap.get("metric") or next((k for k in _GROUP_METRICS if best.get(k) == gap["best_value"]), "score")
    name = METRICS.get(metric, (metric,))[0]
    ignored = gap.get("ignored") or []
    left_out = f" Left out as too small to rank: {e(', '.join(map(str, ignored)))}." if ignored else ""
    return (
        f"<p><b>{e(model)}</b>: best {e(gap['best'])} ({fmt(metric, gap['best_value'])}), worst {e(gap['worst'])} "
        f"({fmt(metric, gap['worst_value'])}): a gap of <b>{fmt(metric, gap['gap'])}</b> in {e(name)}.{left_out}</p>"
    )


_RETENTION = {
    "perplexity": "general-text perplexity",
    "loss": "general-text loss",
    "accuracy": "general-question accuracy",
}


def forgetting(report: dict[str, Any]) -> str:
    """The retention suite on the base and the tuned model (:mod:`tunesmith.eval.retention`)."""
    f = report.get("forgetting")
    if not f:
        return ""
    base, tuned = f.get("base", {}), f.get("tuned", {})
    keys = [k for k in _RETENTION if isinstance(base.get(k), int | float) and isinstance(tuned.get(k), int | float)]
    rows, bars = [], []
    for k in keys:
        change = tuned[k] - base[k]
        worse = change > 0 if k != "accuracy" else change < 0
        sign = "+" if change > 0 else ""
        cell = f'<td class="n"><span class="{"warn" if worse else "good"}">{sign}{fmt(k, change)}</span></td>'
        rows.append(
            [e(_RETENTION[k]), f'<td class="n">{fmt(k, base[k])}</td>', f'<td class="n">{fmt(k, tuned[k])}</td>', cell]
        )
        if base[k] and k != "loss":  # the loss moves with the perplexity: one bar for both
            bars.append((_RETENTION[k], 100 * change / base[k], worse))
    questions = f" ({base['questions']} questions)" if base.get("questions") else ""
    return (
        f"<p>Retention suite <code>{e(f.get('suite', ''))}</code>{e(questions)}: the base and the tuned model on "
        "general text and general questions. Higher perplexity or lower accuracy is forgetting.</p>"
        + (f"<p>{e(f['summary'])}</p>" if f.get("summary") else "")
        + table(["measure", "base", "tuned", "change"], rows)
        + (chart(plots.forgetting_bars, bars, alt="forgetting") if bars else "")
    )


def generation_section(report: dict[str, Any]) -> str:
    """chrF, chrF++, BLEU, exact match and length ratio per model, and the sacrebleu signatures that pin them."""
    gen = generation_of(report)
    keys = [k for k in GENERATION if any(g.get(k) is not None for g in gen.values())]
    if not keys:
        return ""
    best = best_values(gen.values(), keys)
    rows = [
        [
            e(n),
            *(metric_cell(k, g.get(k), (g.get("ci") or {}).get(k), best.get(k)) for k in keys),
            f'<td class="n">{fmt("n", g.get("n"))}</td>',
        ]
        for n, g in gen.items()
    ]
    signatures = {s for g in gen.values() for s in (g.get("signatures") or {}).values()}
    sig = "".join(f"<li><code>{e(s)}</code></li>" for s in sorted(signatures))
    return (
        table(["model", *(METRICS[k][0] for k in keys), "rows"], rows)
        + '<p class="note">chrF, chrF++ and BLEU on sacrebleu\'s 0-100 scale; exact match a fraction; length ratio '
        "is output over reference characters (below 1: cut short, above 1: rambling).</p>"
        + (f'<p class="note">sacrebleu signatures:</p><ul class="note">{sig}</ul>' if sig else "")
    )


def _share(pct: float) -> str:
    """99.6%, 4.2%, 0.17%: a minority language never rounds to 0%."""
    return "100%" if pct >= 99.95 else f"{pct:.1f}%" if pct >= 1 else f"{pct:.2g}%"


def data(card: dict[str, Any] | None) -> str:
    """Rows and top languages per split from the data card: what the scores above were measured on."""
    if not card:
        return ""
    rows = []
    for split in card.get("splits", []):
        langs = card.get("languages", {}).get(split, {})
        total = sum(langs.values()) or 1
        top = ", ".join(f"{e(k)} {_share(100 * v / total)}" for k, v in list(langs.items())[:3])
        rows.append([e(split), f'<td class="n">{card.get("counts", {}).get(split, 0):,}</td>', top or "—"])
    rejects = (card.get("rejects") or {}).get("total")
    note = f"<p>{rejects:,} rows rejected during preparation.</p>" if rejects else ""
    return table(["split", "rows", "languages"], rows) + note + '<p><a href="../data/card.html">data card</a></p>'
