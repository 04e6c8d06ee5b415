"""The data card as one self-contained HTML page (and its JSON), drawn from :func:`profile_dataset`'s dict.

The page has to open anywhere a run directory is copied to: a laptop without network, a CI artifact viewer,
an e-mail attachment. So it has no scripts, fonts or stylesheets to fetch: charts are inline SVG drawn by the
small functions below (horizontal bars, a histogram, percentile ranges), and a short ``<style>`` block does the
rest. Every string that came from the data (row texts, labels, file names, group values) goes through
:func:`html.escape`: a tweet holding ``<script>`` must show as text, not run.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunesmith.data.profile import SECTIONS
from tunesmith.rundir import atomic_write_text, write_json

__all__ = ["render_card", "write_card"]

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;padding:0 1rem;color:#1d2430}
h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #d8dde6;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:.95rem;margin:.8rem 0 .3rem}nav a{margin-right:.6rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{padding:.15rem .6rem;border-bottom:1px solid #eef0f4;
text-align:left;vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.meta,.none,.note{color:#5b6575}.none{font-style:italic}.row{display:flex;flex-wrap:wrap;gap:1.5rem}
.ex{font-size:.85rem;max-width:640px;overflow-wrap:anywhere}.warn{color:#a33b20;font-weight:600}
svg text{font:11px system-ui,sans-serif;fill:#1d2430}svg .bar{fill:#4c78a8}svg .alt{fill:#f58518}
svg .axis{stroke:#8892a0;stroke-width:1}
"""
_TITLES = {
    "counts": "Rows",
    "languages": "Languages (detected)",
    "scripts": "Scripts",
    "cmi": "Code-mixing (CMI)",
    "lengths": "Lengths",
    "labels": "Labels",
    "label_by_language": "Label × language",
    "groups": "Groups",
    "duplicates": "Duplicates",
    "leaks": "Leaks between splits",
    "homoglyphs": "Mixed-script words (homoglyphs)",
    "rejects": "Rejected rows",
    "fertility": "Tokenizer fertility",
}
_BAR_W, _LABEL_CHARS = 260, 28


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    return f"{value:.3g}" if isinstance(value, float) else _e(value)


def _short(text: str, n: int = _LABEL_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _none(what: str = "none") -> str:
    return f'<p class="none">{_e(what)}</p>'


def hbars(items: Sequence[tuple[str, float]], fmt: Callable[[float], str] = _num, alt: bool = False) -> str:
    """Horizontal bars, one per ``(label, value)``, scaled to the largest value; labels are cut to fit."""
    if not items:
        return _none()
    top = max(v for _, v in items) or 1
    label_w = 7 * min(_LABEL_CHARS, max(len(str(k)) for k, _ in items)) + 8
    value_w = 7 * max(len(fmt(v)) for _, v in items) + 8
    height = 18 * len(items) + 4
    parts = [f'<svg role="img" width="{label_w + _BAR_W + value_w}" height="{height}">']
    for i, (label, value) in enumerate(items):
        y, w = 18 * i + 2, max(1.0, _BAR_W * value / top) if value else 0.0
        parts.append(
            f'<g><title>{_e(label)}: {_e(fmt(value))}</title><text x="{label_w - 6}" y="{y + 12}" '
            f'text-anchor="end">{_e(_short(str(label)))}</text><rect class="{"alt" if alt else "bar"}" '
            f'x="{label_w}" y="{y}" width="{w:.1f}" height="14"/><text x="{label_w + w + 4:.1f}" y="{y + 12}">'
            f"{_e(fmt(value))}</text></g>"
        )
    return "".join(parts) + "</svg>"


def vbars(items: Sequence[tuple[str, float]], caption: str = "") -> str:
    """A histogram: one vertical bar per bin, the count above it and the bin's label below."""
    if not items or not any(v for _, v in items):
        return _none("no rows")
    top, col, plot = max(v for _, v in items), 40, 110
    width = col * len(items) + 10
    parts = [f'<svg role="img" width="{width}" height="{plot + 44}"><title>{_e(caption)}</title>']
    for i, (label, value) in enumerate(items):
        h = max(1.5, plot * value / top) if value else 0.0  # a bin of one row among thousands stays visible
        x = 5 + col * i
        count = f'<text x="{x + col / 2}" y="{plot + 10 - h:.1f}" text-anchor="middle">{_num(value)}</text>'
        parts.append(
            f'<rect class="bar" x="{x + 4}" y="{plot + 14 - h:.1f}" width="{col - 8}" height="{h:.1f}"/>'
            f'{count if value else ""}<text x="{x + col / 2}" y="{plot + 28}" text-anchor="middle">{_e(label)}</text>'
        )
    parts.append(f'<line class="axis" x1="5" x2="{width - 5}" y1="{plot + 14}" y2="{plot + 14}"/>')
    if caption:
        parts.append(f'<text x="5" y="{plot + 42}">{_e(caption)}</text>')
    return "".join(parts) + "</svg>"


def ranges(rows: Sequence[tuple[str, Mapping[str, float]]], unit: str) -> str:
    """Percentile ranges on one axis: a bar from p5 to p95, a tick at p50 and a dot at the maximum."""
    if not rows:
        return _none()
    top = max(r["max"] for _, r in rows) or 1
    label_w, plot = 7 * min(_LABEL_CHARS, max(len(k) for k, _ in rows)) + 8, 360

    def x(v: float) -> float:
        return label_w + plot * v / top

    parts = [f'<svg role="img" width="{label_w + plot + 60}" height="{22 * len(rows) + 24}">']
    for i, (label, r) in enumerate(rows):
        y = 22 * i + 4
        parts.append(
            f"<g><title>{_e(label)}: p5 {r['p5']}, p50 {r['p50']}, p95 {r['p95']}, max {r['max']} {_e(unit)}</title>"
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{_e(_short(label))}</text>'
            f'<rect class="bar" x="{x(r["p5"]):.1f}" y="{y + 3}" width="{max(1.0, x(r["p95"]) - x(r["p5"])):.1f}" '
            f'height="10"/><rect class="alt" x="{x(r["p50"]) - 1:.1f}" y="{y}" width="3" height="16"/>'
            f'<circle cx="{x(r["max"]):.1f}" cy="{y + 8}" r="3" fill="#5b6575"/></g>'
        )
    y = 22 * len(rows) + 8
    parts.append(f'<line class="axis" x1="{label_w}" x2="{label_w + plot}" y1="{y}" y2="{y}"/>')
    parts.append(f'<text x="{label_w}" y="{y + 13}">0</text>')
    parts.append(f'<text x="{label_w + plot}" y="{y + 13}" text-anchor="end">{_num(top)} {_e(unit)}</text>')
    return "".join(parts) + "</svg>"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool] | None = None) -> str:
    """A table; cells are escaped here, numbers right-aligned (``numeric`` marks those columns)."""
    if not rows:
        return _none()
    numeric = numeric or [False] + [True] * (len(header) - 1)
    head = "".join(f'<th class="{"n" if n else ""}">{_e(h)}</th>' for h, n in zip(header, numeric, strict=True))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"n" if n else ""}">{_num(c)}</td>' for c, n in zip(r, numeric, strict=True))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _per_split(card: Mapping[str, Any], section: str, draw: Callable[[Any], str]) -> str:
    """One titled block per split, side by side."""
    blocks = [f"<div><h3>{_e(name)}</h3>{draw(card[section][name])}</div>" for name in card.get(section, {})]
    return f'<div class="row">{"".join(blocks)}</div>' if blocks else _none()


def _examples(items: Sequence[Mapping[str, Any]]) -> str:
    lines = [
        f"<li><code>{_e(x.get('source', ''))}</code> {_e(x.get('text', x.get('reason', '')))}</li>" for x in items
    ]
    return f'<ul class="ex">{"".join(lines)}</ul>' if lines else ""


def _counts(card: Mapping[str, Any]) -> str:
    items = list(card["counts"].items())
    return hbars(items) + _table(["split", "rows"], items)


def _languages(card: Mapping[str, Any]) -> str:
    known = card.get("settings", {}).get("identifier_languages") or []
    note = f"The language identifier knows {', '.join(known)}; a language it lacks shows as the nearest of these."
    return _per_split(card, "languages", lambda d: hbars(list(d.items())[:12])) + (
        f'<p class="note">{_e(note)}</p>' if known else ""
    )


def _scripts(card: Mapping[str, Any]) -> str:
    rows = [
        [name, ", ".join(f"{k} {v:,}" for k, v in s["dominant"].items()), _shares(s["shares"])]
        for name, s in card["scripts"].items()
    ]
    return _table(["split", "rows by dominant script", "share of letters"], rows, [False, False, False])


def _shares(shares: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {100 * v:.3g}%" for k, v in list(shares.items())[:6]) or "no letters"


def _cmi(card: Mapping[str, Any]) -> str:
    def draw(c: Mapping[str, Any]) -> str:
        note = (
            f"{c['rows']:,} of {c['of_rows']:,} rows measured" if c["rows"] < c["of_rows"] else f"{c['rows']:,} rows"
        )
        caption = f"mixed rows {100 * c['mixed_fraction']:.0f}%, mean CMI {c['mean_cmi']:.1f} ({note})"
        return vbars([(k, v) for k, v in c["histogram"]], caption)

    return _per_split(card, "cmi", draw) + '<p class="note">CMI per row (Das and Gambäck 2014): 0 = one language.</p>'


def _lengths(card: Mapping[str, Any]) -> str:
    out = []
    units = dict.fromkeys(u for s in card["lengths"].values() for f in s.values() for u in f)
    for unit in units:
        rows = [
            (f"{s} · {f}", v[unit]) for s, fields in card["lengths"].items() for f, v in fields.items() if unit in v
        ]
        table = [[label, r["p5"], r["p50"], r["p95"], r["max"], r["mean"]] for label, r in rows]
        header = ["split · field", "p5", "p50", "p95", "max", "mean"]
        out.append(f"<h3>{_e(unit)}</h3>{ranges(rows, unit)}{_table(header, table)}")
    return "".join(out) or _none()


def _labels(card: Mapping[str, Any]) -> str:
    if not any(card["labels"].values()):
        return _none("this record kind has no label")
    return _per_split(card, "labels", lambda d: hbars(list(d.items())))


def _label_by_language(card: Mapping[str, Any]) -> str:
    def draw(table: Mapping[str, Mapping[str, int]]) -> str:
        labels = sorted({lab for row in table.values() for lab in row})
        rows = [[lang, *(row.get(lab, 0) for lab in labels), sum(row.values())] for lang, row in table.items()]
        return _table(["language", *labels, "total"], rows)

    if not any(card["label_by_language"].values()):
        return _none("this record kind has no label")
    return _per_split(card, "label_by_language", draw)


def _groups(card: Mapping[str, Any]) -> str:
    blocks = [
        f"<h3>{_e(split)}: {_e(column)}</h3>{hbars(list(values.items())[:20])}"
        for split, columns in card["groups"].items()
        for column, values in columns.items()
    ]
    return "".join(blocks) or _none("no group columns")


def _duplicates(card: Mapping[str, Any]) -> str:
    dups = card["duplicates"]
    rows = [[n, d["exact"], d.get("label_conflicts", 0), d["near_clusters"], d["near_rows"]] for n, d in dups.items()]
    header = ["split", "exact repeats", "with another label", "near-duplicate clusters", "rows in clusters"]
    out = [_table(header, rows)]
    for name, d in dups.items():
        if d["near_clusters"]:
            out.append(f"<h3>{_e(name)}: cluster sizes</h3>{vbars([(k, v) for k, v in d['cluster_sizes']])}")
            out += [f"<p>{c['size']} rows, e.g.:</p>{_examples(c['examples'])}" for c in d["largest"][:5]]
    return "".join(out)


def _leaks(card: Mapping[str, Any]) -> str:
    if not card["leaks"]:
        return _none("one split only: nothing to leak into")
    rows = [[f"{x['earlier']} → {x['later']}", x["exact"], x["near"], x["rows"], x["of_rows"]] for x in card["leaks"]]
    out = [_table(["earlier → later", "exact", "near", "rows leaked", "of rows"], rows)]
    for x in card["leaks"]:
        for what in ("exact", "near"):
            shown = [
                {**e, "text": f"{e['text']} (= {e['earlier']}, Jaccard {e['jaccard']})"} for e in x[f"{what}_examples"]
            ]
            if shown:
                out.append(f"<h3>{_e(x['later'])} rows {what}ly in {_e(x['earlier'])}</h3>{_examples(shown)}")
    return "".join(out)


def _homoglyphs(card: Mapping[str, Any]) -> str:
    out = []
    for name, h in card["homoglyphs"].items():
        rows = [[w["word"], "+".join(w["scripts"]), w["suggestion"] or "—", w["count"], w["first"]] for w in h["top"]]
        table = _table(
            ["word", "scripts", "suggested", "count", "first seen"], rows, [False, False, False, True, False]
        )
        escapes = h.get("literal_escapes", 0)
        note = f'<p class="warn">{_rows(escapes)} with a literal \\n (an escape never decoded)</p>' if escapes else ""
        out.append(f"<h3>{_e(name)}: {_rows(h['rows'])} with mixed-script words</h3>{table if rows else ''}{note}")
    return "".join(out) or _none()


def _rejects(card: Mapping[str, Any]) -> str:
    rejects = card["rejects"]
    if not rejects:
        return _none("not recorded")
    if not rejects["total"]:
        return _none("no rows rejected")
    out = [f"<p>{_rows(rejects['total'])} rejected.</p>", hbars(list(rejects["by_reason"].items()), alt=True)]
    out += [f"<h3>{_e(r)}</h3>{_examples(x)}" for r, x in rejects.get("examples", {}).items()]
    return "".join(out)


def _fixed(value: float | None, pattern: str = "{:.1%}") -> str:
    return "—" if value is None else pattern.format(value)


def _fertility(card: Mapping[str, Any]) -> str:
    fert = card["fertility"]
    if not fert:
        return _none("no tokenizer given")
    langs = fert["languages"]
    rows = [
        [k, v["rows"], v["words"], v["tokens"], v["tokens_per_word"], v["byte_fallback_rate"]]
        for k, v in langs.items()
    ]
    tokenizer = card.get("settings", {}).get("tokenizer") or "tokenizer"
    return (
        f"<p>{_e(tokenizer)}: {_e(fert['definition'])}.</p>"
        + hbars([(k, v["tokens_per_word"] or 0) for k, v in langs.items()], fmt=lambda v: f"{v:.2f} tokens/word")
        + _table(["language", "rows", "words", "tokens", "tokens/word", "byte fallback"], rows)
    )


_RENDER: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "counts": _counts,
    "languages": _languages,
    "scripts": _scripts,
    "cmi": _cmi,
    "lengths": _lengths,
    "labels": _labels,
    "label_by_language": _label_by_language,
    "groups": _groups,
    "duplicates": _duplicates,
    "leaks": _leaks,
    "homoglyphs": _homoglyphs,
    "rejects": _rejects,
    "fertility": _fertility,
}


def render_card(card: Mapping[str, Any], title: str) -> str:
    """One self-contained HTML page with a section (and chart) for each part of the card.

    Args:
        card: The dict of :func:`tunesmith.data.profile.profile_dataset` (or a ``card.json`` read back).
        title: The page title, e.g. the run name.
    """
    nav = " ".join(f'<a href="#{s}">{_e(_TITLES[s])}</a>' for s in SECTIONS)
    splits = ", ".join(f"{s} ({card['counts'].get(s, 0):,} rows)" for s in card.get("splits", []))
    sections = []
    for name in SECTIONS:
        body = _RENDER[name](card) if card.get(name) is not None else _none("not measured")
        sections.append(f'<section id="{name}"><h2>{_e(_TITLES[name])}</h2>{body}</section>')
    settings = ", ".join(f"{k}={v}" for k, v in card.get("settings", {}).items())
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width,initial-scale=1"><title>{_e(title)}</title><style>{_STYLE}</style></head>'
        f'<body><h1>{_e(title)}</h1><p class="meta">{_e(card.get("kind", ""))} records; splits: {_e(splits)}</p>'
        f'<nav>{nav}</nav>{"".join(sections)}<p class="meta">tunesmith data card v{_e(card.get("version", ""))}; '
        f"{_e(settings)}</p></body></html>\n"
    )


def write_card(card: Mapping[str, Any], directory: str | Path, title: str) -> tuple[Path, Path]:
    """Write ``card.json`` and ``card.html`` into ``directory`` (each via a temp file and ``os.replace``).

    Returns:
        The paths of ``card.json`` and ``card.html``.
    """
    directory = Path(directory)
    json_path, html_path = directory / "card.json", directory / "card.html"
    write_json(json_path, card)
    atomic_write_text(html_path, render_card(card, title))
    return json_path, html_path
