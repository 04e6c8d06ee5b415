"""The evaluation report's charts, drawn with matplotlib and returned as SVG ``data:`` URIs for ``<img>`` tags.

Why SVG with ``svg.fonttype: none``: the text stays text, so the browser draws group names and labels in
whatever script the language uses (DejaVu, matplotlib's own font, has no Ge'ez or N'Ko), and the charts stay
sharp when zoomed. Why an ``<img>`` data URI rather than inline ``<svg>``: each chart is its own document, so
the ids matplotlib writes cannot collide between charts, and nothing in a chart can run as script.

Figures are built with :class:`matplotlib.figure.Figure` directly, never ``pyplot``: no global figure
registry, no GUI backend to pick, nothing left open between calls. matplotlib is the ``eval`` extra and is
imported inside each function; :func:`available` lets the page say why charts are missing.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "available",
    "confusion",
    "forgetting_bars",
    "group_bars",
    "loss_curves",
    "metric_panels",
    "model_bars",
    "threshold_bars",
    "time_panels",
    "val_curves",
]

COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#eeca3b")
GREY, BEST, WORSE, BETTER = "#bab0ac", "#2e7d32", "#c0392b", "#2e7d32"
_RC: Any = {  # typed Any: matplotlib types rc keys as a Literal union
    "svg.fonttype": "none",
    "svg.hashsalt": "tunesmith",  # the same report gives the same bytes
    "font.size": 9,
    "font.family": ["DejaVu Sans", "sans-serif"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "legend.frameon": False,
}
_MAX_POINTS = 1500  # points per drawn line
Bar = tuple[float | None, float | None, float | None]  # value, interval low, interval high


def available() -> bool:
    """Whether matplotlib (the ``eval`` extra) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def _figure(width: float, height: float, **subplots: Any) -> Iterator[tuple[Any, Any]]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig, fig.subplots(**subplots)


def _uri(fig: Any) -> str:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _rolling(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over ``window`` points (fewer at the start), as :func:`curves.smoothed_loss` takes it."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def _log_axis(ax: Any) -> None:
    """A log y axis labelled 0.1, 0.2, 0.5, 1, 2, 5 rather than powers of ten."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def loss_curves(
    train: Sequence[tuple[int, float]],
    val: Sequence[tuple[int, float]],
    best_step: int | None,
    early_stop_step: int | None = None,
    rising_evals: int = 0,
    window: int = 5,
) -> str:
    """Training loss (logged and smoothed), validation loss, the best step and any final rising run in red."""
    with _figure(7.2, 3.2) as (fig, ax):
        if train:
            stride = max(1, len(train) // _MAX_POINTS)  # a long run logs every step: the SVG must stay small
            steps, losses = [s for s, _ in train], [v for _, v in train]
            smooth = _rolling(losses, window)
            ax.plot(steps[::stride], losses[::stride], color=COLORS[0], alpha=0.3, lw=0.8, label="training (logged)")
            ax.plot(steps[::stride], smooth[::stride], color=COLORS[0], lw=1.6, label=f"training (mean of {window})")
        if val:
            ax.plot(
                [s for s, _ in val], [v for _, v in val], color=COLORS[1], marker="o", ms=4, lw=1.6, label="validation"
            )
        if rising_evals and len(val) > rising_evals:
            tail = val[-rising_evals - 1 :]
            ax.plot(
                [s for s, _ in tail],
                [v for _, v in tail],
                color=WORSE,
                marker="o",
                ms=4,
                lw=2,
                label=f"rising for {rising_evals} evaluations",
            )
        if best_step is not None:
            ax.axvline(best_step, color=BEST, ls="--", lw=1, label=f"best validation (step {best_step})")
        if early_stop_step is not None:
            ax.axvline(early_stop_step, color=GREY, ls=":", lw=1.5, label=f"early stop (step {early_stop_step})")
        ys = [v for _, v in train] + [v for _, v in val]
        if ys and min(ys) > 0 and max(ys) / min(ys) > 20:  # spikes would flatten everything else
            _log_axis(ax)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return _uri(fig)


def confusion(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> str:
    """A heatmap coloured by the share of each gold row (recall), annotated with counts and shares."""
    n = len(labels)
    side = min(7.0, 1.6 + 0.55 * n)
    with _figure(side + 0.6, side, squeeze=True) as (fig, ax):
        shares = [[c / (sum(row) or 1) for c in row] for row in matrix]
        image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if n <= 12:
            for i, row in enumerate(matrix):
                for j, count in enumerate(row):
                    color = "white" if shares[i][j] > 0.55 else "#1d2430"
                    ax.text(j, i, f"{count}\n{shares[i][j]:.0%}", ha="center", va="center", color=color, fontsize=8)
        names = [_short(str(lab), 14) for lab in labels]
        ax.set_xticks(range(n), names, rotation=30 if max(map(len, names), default=0) > 6 else 0, ha="right")
        ax.set_yticks(range(n), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(_short(title, 40))
        ax.spines[:].set_visible(False)
        fig.colorbar(image, ax=ax, shrink=0.7, label="share of gold row")
        return _uri(fig)


def _hbar(ax: Any, y: float, bar: Bar, height: float, color: str, hatch: str | None = None) -> None:
    value, low, high = bar
    if value is None:
        return
    ax.barh(y, value, height=height, color=GREY if hatch else color, edgecolor=color, hatch=hatch, lw=0.8)
    if low is not None and high is not None:
        ax.errorbar(value, y, xerr=[[value - low], [high - value]], color="#1d2430", capsize=2, lw=0.8)


def group_bars(values: Sequence[str], series: dict[str, list[tuple[Bar, bool]]], metric: str) -> str:
    """Grouped horizontal bars, one group per group value and one bar per model; few-row groups grey, hatched.

    Args:
        values: Group values, top to bottom.
        series: ``{model: [((score, low, high), few_rows)]}``, aligned with ``values``.
        metric: The axis label.
    """
    from matplotlib.patches import Patch

    k = max(len(series), 1)
    height = 0.8 / k
    with _figure(7.2, 0.9 + 0.22 * len(values) * k + 0.1 * len(values)) as (fig, ax):
        for m, bars in enumerate(series.values()):
            for i, (bar, few) in enumerate(bars):
                _hbar(
                    ax,
                    i + (m - (k - 1) / 2) * height,
                    bar,
                    height * 0.9,
                    COLORS[m % len(COLORS)],
                    "////" if few else None,
                )
        ax.set_yticks(range(len(values)), [_short(str(v)) for v in values])
        ax.invert_yaxis()
        tops = [b[0][2] if b[0][2] is not None else b[0][0] for bars in series.values() for b in bars]
        top = max((t for t in tops if t is not None), default=1.0)
        ax.set_xlim(0, 1.0 if top <= 1.0 else top * 1.1)  # shares on a fixed 0-1 axis; losses fit their own
        ax.set_xlabel(metric)
        handles = [Patch(color=COLORS[m % len(COLORS)], label=_short(name, 30)) for m, name in enumerate(series)]
        if any(few for bars in series.values() for _, few in bars):
            handles.append(Patch(facecolor=GREY, edgecolor="#5b6575", hatch="////", label="few rows (unreliable)"))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return _uri(fig)


def model_bars(names: Sequence[str], panels: Sequence[tuple[str, Sequence[Bar]]], highlight: Sequence[bool]) -> str:
    """One panel per metric, one horizontal bar per model with its interval; ``highlight`` marks tuned models."""
    lines = max((n.count("\n") + 1 for n in names), default=1)  # "run\nmodel" labels on the compare page
    size = (3.4 * len(panels) + 0.8, 0.7 + (0.34 + 0.14 * (lines - 1)) * len(names))
    with _figure(*size, ncols=len(panels), sharey=True, squeeze=False) as (fig, axes):
        for ax, (metric, bars) in zip(axes[0], panels, strict=True):
            top = 0.0
            for i, bar in enumerate(bars):
                _hbar(ax, i, bar, 0.7, COLORS[1] if highlight[i] else COLORS[0])
                if bar[0] is not None:
                    end = bar[2] if bar[2] is not None else bar[0]  # the label goes past the interval
                    top = max(top, end)
                    ax.text(end, i, f" {bar[0]:.3g}", va="center", ha="left", fontsize=8)
            ax.set_xlim(0, top * 1.25 or 1)
            ax.set_title(metric)
        labels = ["\n".join(_short(part, 30) for part in n.split("\n")) for n in names]
        axes[0][0].set_yticks(range(len(names)), labels)
        axes[0][0].invert_yaxis()
        return _uri(fig)


def forgetting_bars(items: Sequence[tuple[str, float, bool]]) -> str:
    """Relative change (%) per retention metric, red where the tuned model got worse."""
    with _figure(6.0, 0.8 + 0.4 * len(items)) as (fig, ax):
        for i, (_, change, worse) in enumerate(items):
            ax.barh(i, change, height=0.6, color=WORSE if worse else BETTER)
            ax.text(change, i, f" {change:+.1f}% ", va="center", ha="left" if change >= 0 else "right", fontsize=8)
        ax.axvline(0, color="#1d2430", lw=0.8)
        span = max((abs(c) for _, c, _ in items), default=1.0) * 1.4 or 1.0
        ax.set_xlim(-span, span)
        ax.set_yticks(range(len(items)), [label for label, _, _ in items])
        ax.invert_yaxis()
        ax.set_xlabel("tuned vs base (% change)")
        return _uri(fig)


def val_curves(series: dict[str, Sequence[tuple[int, float]]]) -> str:
    """Validation loss of several runs on one axis (``tunesmith compare``)."""
    with _figure(7.2, 3.0) as (fig, ax):
        for i, (name, points) in enumerate(series.items()):
            ax.plot(
                [s for s, _ in points],
                [v for _, v in points],
                marker="o",
                ms=3.5,
                lw=1.4,
                color=COLORS[i % len(COLORS)],
                label=_short(name, 40),
            )
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("validation loss")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        return _uri(fig)


def metric_panels(panels: Sequence[tuple[str, dict[str, Sequence[tuple[int, float]]]]]) -> str:
    """Side-by-side panels of per-step metrics (PPO's reward and KL, a preference run's accuracy and margin),
    each with its training series and, where logged, its validation series as dots."""
    with _figure(3.6 * len(panels), 3.0, ncols=len(panels), squeeze=False) as (fig, axes):
        for ax, (title, series) in zip(axes[0], panels, strict=True):
            for i, (name, points) in enumerate(series.items()):
                steps, values = [s for s, _ in points], [v for _, v in points]
                if name.startswith("validation"):
                    ax.plot(steps, values, color=COLORS[1], marker="o", ms=4, lw=1.2, label=name)
                else:
                    stride = max(1, len(points) // _MAX_POINTS)
                    ax.plot(steps[::stride], values[::stride], color=COLORS[i % len(COLORS)], lw=1.2, label=name)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
        return _uri(fig)


def time_panels(panels: Sequence[tuple[str, dict[str, Sequence[tuple[float, float]]], bool]]) -> str:
    """Stacked panels over wall-clock time (the monitor report): each ``(title, series, stacked)``; x values
    are unix seconds, drawn as dates; a stacked panel fills the series one on another (shares that sum to 1)."""
    import datetime as dt

    with _figure(7.6, 2.1 * len(panels), nrows=len(panels), squeeze=False, sharex=True) as (fig, axes):
        for ax, (title, series, stacked) in zip(axes[:, 0], panels, strict=True):
            if stacked and series:
                xs = [dt.datetime.fromtimestamp(t) for t, _ in next(iter(series.values()))]
                ys = [[v for _, v in points] for points in series.values()]
                ax.stackplot(xs, ys, labels=[_short(k) for k in series], colors=COLORS[: len(series)], alpha=0.85)
            else:
                for i, (name, points) in enumerate(series.items()):
                    xs = [dt.datetime.fromtimestamp(t) for t, _ in points]
                    ax.plot(
                        xs,
                        [v for _, v in points],
                        color=COLORS[i % len(COLORS)],
                        lw=1.4,
                        marker="o",
                        ms=2.5,
                        label=_short(name, 30),
                    )
            ax.set_title(title, fontsize=9, loc="left")
            if series:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.autofmt_xdate()
        return _uri(fig)


def threshold_bars(items: Sequence[tuple[str, float, float]]) -> str:
    """Each drift statistic as a bar against its threshold (a tick); bars over their threshold are red."""
    with _figure(6.4, 0.45 * len(items) + 0.9) as (fig, ax):
        for i, (_, value, limit) in enumerate(items):
            ratio = value / limit if limit else 0.0
            ax.barh(i, ratio, height=0.6, color=COLORS[4] if ratio > 1 else COLORS[0])
            ax.text(ratio, i, f" {value:.3g} / {limit:.3g}", va="center", fontsize=8)
        ax.axvline(1.0, color="#1d2430", lw=1, ls="--")
        ax.set_yticks(range(len(items)), [label for label, _, _ in items])
        ax.invert_yaxis()
        ax.set_xlabel("statistic / threshold (over 1 = alert)")
        return _uri(fig)
