"""What the report page and the compare page share: the metric catalogue, number formats, cells, the page shell.

Both pages must agree on how a metric is named, formatted and which direction is better, or the same run
would read differently on the two; so those live here, once.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tunesmith.eval import plots

# key -> (column title, higher is better: True / False / None for counts and ratios that have no "best")
METRICS: dict[str, tuple[str, bool | None]] = {
    "accuracy": ("accuracy", True),
    "macro_f1": ("macro-F1", True),
    "weighted_f1": ("weighted-F1", True),
    "loss": ("loss", False),
    "perplexity": ("perplexity", False),
    "nll_per_word": ("nll / word", False),
    "chrf": ("chrF", True),
    "chrf_pp": ("chrF++", True),
    "bleu": ("BLEU", True),
    "exact_match": ("exact match", True),
    "length_ratio": ("length ratio", None),
    "margin": ("reward margin", True),
    "likelihood_accuracy": ("likelihood accuracy", True),
    "reward": ("mean reward", True),
}
HEADLINE = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "margin",
    "likelihood_accuracy",
    "reward",
    "loss",
    "perplexity",
    "nll_per_word",
)
GENERATION = ("chrf", "chrf_pp", "bleu", "exact_match", "length_ratio")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1040px;padding:0 1rem;color:#1d2430}
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.15rem;border-bottom:1px solid #d8dde6;padding-bottom:.2rem;
margin-top:2rem}h3{font-size:.95rem;margin:1rem 0 .3rem}nav a{margin-right:.7rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{padding:.2rem .6rem;border-bottom:1px solid #eef0f4;
text-align:left;vertical-align:top}th{font-weight:600;background:#f6f7f9}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums;white-space:nowrap}th.c{text-align:center}
.ci{display:block;font-size:.78rem;color:#5b6575}.meta,.note{color:#5b6575}.meta{margin:.15rem 0}
.warn{color:#a33b20;font-weight:600}.good{color:#2e7d32}p.warn{background:#fdf1ee;border-left:4px solid #a33b20;
padding:.5rem .8rem}.tag{white-space:nowrap;font-size:.72rem;background:#eceff3;border-radius:3px;padding:0 .3rem;
color:#5b6575}
.row{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}img.chart{max-width:100%;height:auto}
code{font-size:.85em;background:#f3f4f6;padding:0 .2rem;border-radius:3px;overflow-wrap:anywhere}
td code{white-space:nowrap}
"""


def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def fmt(key: str, value: Any) -> str:
    """A metric value as the pages print it; ``—`` for a missing one."""
    if value is None or isinstance(value, bool):
        return "—" if value is None else str(value)
    if not isinstance(value, int | float):
        return e(value)
    if isinstance(value, int) or key in ("tokens", "n"):
        return f"{int(value):,}"
    if key == "tokens_per_s":
        return f"{value:,.0f}"
    if key == "perplexity":
        return f"{value:,.2f}"
    if key in ("chrf", "chrf_pp", "bleu"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def generation_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Generation metrics per model: a top-level ``generation`` map or a ``generation`` key in each model."""
    models = report.get("models", {})
    out = {n: m["generation"] for n, m in models.items() if isinstance(m.get("generation"), dict)}
    top = report.get("generation")
    if isinstance(top, dict):
        out.update({n: g for n, g in top.items() if isinstance(g, dict) and n in models})
    return out


def with_generation(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each model's metrics with its generation metrics merged in, intervals (``ci``) merged too."""
    gen = generation_of(report)
    out = {}
    for name, m in report.get("models", {}).items():
        g = gen.get(name, {})
        out[name] = {**g, **m, "ci": {**(g.get("ci") or {}), **(m.get("ci") or {})}}
    return out


def best_values(rows: Iterable[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """The best value of each metric over ``rows`` (only where two or more rows have one: one value is no win)."""
    rows = list(rows)
    out = {}
    for key in keys:
        higher = METRICS.get(key, ("", None))[1]
        values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
        if higher is not None and len(values) > 1:
            out[key] = max(values) if higher else min(values)
    return out


def metric_cell(key: str, value: Any, ci: Sequence[float] | None, best: float | None) -> str:
    """A right-aligned cell: the value (bold when it is the best) and its interval on a second line."""
    text = fmt(key, value)
    if best is not None and isinstance(value, int | float) and value == best:
        text = f"<b>{text}</b>"
    if ci and len(ci) == 2 and ci[0] is not None and ci[1] is not None:
        text += f'<span class="ci">{fmt(key, ci[0])}–{fmt(key, ci[1])}</span>'
    return f'<td class="n">{text}</td>'


def table(header: Sequence[str], rows: Sequence[Sequence[str]], show_header: bool = True) -> str:
    """A table of pre-rendered cells: a cell that already is a ``<td>`` is kept, anything else is wrapped.

    Cells are HTML already (callers escape the text they put in); header titles are escaped here, and a title
    sits right-aligned over a column whose first cell is a numeric ``<td class="n">``.
    """
    first = [str(c) for c in rows[0]] if rows else []
    numeric = [i < len(first) and first[i].startswith('<td class="n"') for i in range(len(header))]
    head = "".join(
        f'<th class="n">{e(h)}</th>' if n else f"<th>{e(h)}</th>" for h, n in zip(header, numeric, strict=True)
    )
    head = f"<tr>{head}</tr>" if show_header else ""
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in map(str, r)) + "</tr>" for r in rows
    )
    return f"<table>{head}{body}</table>"


def chart(draw: Callable[..., str], *args: Any, alt: str) -> str:
    """An ``<img>`` of ``draw(*args)``, or one line saying why there is none (matplotlib is the eval extra)."""
    if not plots.available():
        return f'<p class="note">[{e(alt)}: charts need matplotlib: pip install "tunesmith[eval]"]</p>'
    return f'<img class="chart" alt="{e(alt)}" src="{draw(*args)}">'


def page(
    title: str, body: str, nav: Sequence[tuple[str, str]] = (), footer: str = "tunesmith evaluation report"
) -> str:
    """The document around ``body``: one inline style block, no scripts, nothing fetched."""
    links = "".join(f'<a href="#{e(sid)}">{e(name)}</a>' for sid, name in nav)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{e(title)}</title><style>{STYLE}</style></head>'
        f"<body><h1>{e(title)}</h1>{f'<nav>{links}</nav>' if links else ''}{body}"
        '<p class="meta">' + e(footer) + "</p></body></html>\n"
    )
