"""Loss curves from ``metrics.jsonl`` and what they say about overfitting.

The training engine appends one JSON line per logged step (``loss``), per validation (``val_loss``) and per
event (``event``: early stop; ``error``: a non-finite loss). These pure functions turn that log into the two
curves and a short verdict: where validation loss was lowest, how far it sits above the training loss (the
generalisation gap), and whether it has been climbing at the end, the sign that more steps only memorised the
training split. The report page and ``tunesmith compare`` both read them; neither needs torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["overfitting", "read_curves", "read_series", "smoothed_loss", "smoothing_window"]

Point = tuple[int, float]


def _records(metrics_path: Path) -> list[dict[str, Any]]:
    """Every parseable line; a run killed mid-write leaves a torn last line, which must not hide the rest."""
    out = []
    for line in Path(metrics_path).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            out.append(record)
    return out


def _append(curve: list[Point], step: int, value: float) -> None:
    """Add a point, first dropping any from ``step`` on: a resumed run replays steps after its last checkpoint,
    and the replay (what the saved weights saw) replaces the lines the crashed process wrote."""
    while curve and curve[-1][0] >= step:
        curve.pop()
    curve.append((step, value))


def read_curves(metrics_path: Path) -> dict[str, Any]:
    """The training and validation loss curves and the events of one run.

    Args:
        metrics_path: A run's ``metrics.jsonl``.

    Returns:
        ``{"train": [(step, loss)], "val": [(step, val_loss)], "events": [record]}``, each curve in step
        order. Events are the lines with an ``event`` or ``error`` key, as written.
    """
    curves: dict[str, Any] = {"train": [], "val": [], "events": []}
    for r in _records(metrics_path):
        if "event" in r or "error" in r:
            curves["events"].append(r)
        elif isinstance(r.get("val_loss"), int | float):
            _append(curves["val"], r["step"], float(r["val_loss"]))
        elif isinstance(r.get("loss"), int | float):
            _append(curves["train"], r["step"], float(r["loss"]))
    return curves


def smoothing_window(points: int, most: int = 5) -> int:
    """How many logged training losses to average: up to ``most``, but never more than a quarter of the run.

    A run that logged three losses would otherwise be "smoothed" back to its first step, where the loss was
    still falling, and the gap would come out negative.
    """
    return max(1, min(most, points // 4))


def smoothed_loss(train: list[Point], step: int, window: int = 5) -> float | None:
    """Mean of the last ``window`` logged training losses at or before ``step``.

    One logged loss is one micro-batch's: with short sequences or class weights it swings by several nats
    between neighbours, so a gap computed from a single point would mostly measure noise.
    """
    before = [loss for s, loss in train if s <= step][-window:]
    return sum(before) / len(before) if before else None


def _rising_run(val: list[Point]) -> int:
    """How many of the last evaluations each rose above the one before (0 when the last one fell)."""
    n = 0
    for (_, earlier), (_, later) in zip(val[-2::-1], val[::-1], strict=False):
        if later <= earlier:
            break
        n += 1
    return n


def _warning(val: list[Point], rising: int, best: Point) -> str:
    start = val[-rising - 1]
    return (
        f"validation loss rose for the last {rising} evaluations ({start[1]:.3f} at step {start[0]} to "
        f"{val[-1][1]:.3f} at step {val[-1][0]}): the steps after {best[0]} fitted the training split without "
        f"generalising. The saved weights are from the best step ({best[0]}, validation loss {best[1]:.3f}); "
        "fewer epochs or train.early_stopping would have stopped there."
    )


def overfitting(curves: dict[str, Any], rising_evals: int = 3) -> dict[str, Any]:
    """Best step, generalisation gap and a warning when validation loss kept rising at the end.

    Args:
        curves: The dict of :func:`read_curves`.
        rising_evals: Warn once each of this many last evaluations rose above the one before it (so at
            least ``rising_evals + 1`` validations are needed). One rise is often noise on a small
            validation split; several in a row are a trend.

    Returns:
        ``best_step``, ``best_val_loss``, ``last_val_loss``, ``final_train_loss`` (the last logged one),
        ``gap`` (last validation loss minus the mean of the last ``train_window`` training losses logged by
        that step, see :func:`smoothing_window`; ``None`` without both curves), ``rising`` and
        ``rising_evals`` (the length of the final rising run), ``warning`` (a sentence, or ``None``),
        ``early_stop_step`` (``None`` unless the engine stopped early), ``evaluations`` and ``train_window``.
    """
    train: list[Point] = curves.get("train", [])
    val: list[Point] = curves.get("val", [])
    best = min(val, key=lambda p: p[1]) if val else None
    run = _rising_run(val)
    rising = run >= rising_evals > 0
    stop = next((e["step"] for e in curves.get("events", []) if e.get("event") == "early stop"), None)
    window = smoothing_window(len(train))
    train_at_last = smoothed_loss(train, val[-1][0], window) if val else None
    return {
        "best_step": best[0] if best else None,
        "best_val_loss": best[1] if best else None,
        "last_val_loss": val[-1][1] if val else None,
        "final_train_loss": train[-1][1] if train else None,
        "gap": val[-1][1] - train_at_last if val and train_at_last is not None else None,
        "rising": rising,
        "rising_evals": run,
        "warning": _warning(val, run, best) if rising and best else None,
        "early_stop_step": stop,
        "evaluations": len(val),
        "train_window": window,
    }


def read_series(metrics_path: Path, keys: tuple[str, ...]) -> dict[str, list[Point]]:
    """Per-step series of any logged metrics (``reward``, ``kl``, ``accuracy``, ``val_accuracy``...), in step
    order, with a resumed run's replayed steps replacing what the crashed process wrote; absent keys are left out."""
    series: dict[str, list[Point]] = {}
    for r in _records(metrics_path):
        for key in keys:
            value = r.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                _append(series.setdefault(key, []), r["step"], float(value))
    return series
