from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.eval.curves import overfitting, read_curves, smoothed_loss, smoothing_window


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _curves(val: list[float], train: list[float] | None = None) -> dict:
    """Validation every 10 steps; training loss logged every 5."""
    steps = 10 * len(val)
    train = train if train is not None else [1.0] * (steps // 5)
    return {
        "train": [(5 * (i + 1), v) for i, v in enumerate(train)],
        "val": [(10 * (i + 1), v) for i, v in enumerate(val)],
        "events": [],
    }


def test_read_curves_splits_lines_and_skips_a_torn_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "metrics.jsonl",
        [
            {"step": 5, "epoch": 0, "loss": 2.0, "lr": 1e-3, "tokens": 100},
            {"step": 10, "epoch": 0, "loss": 1.5},
            {"step": 10, "epoch": 0, "val_loss": 1.8},
            {"step": 10, "event": "early stop", "reason": "no validation improvement in 2 evaluations"},
        ],
    )
    with path.open("a") as fh:
        fh.write('{"step": 15, "loss": ')  # killed mid-write
    curves = read_curves(path)
    assert curves["train"] == [(5, 2.0), (10, 1.5)]
    assert curves["val"] == [(10, 1.8)]
    assert [e["event"] for e in curves["events"]] == ["early stop"]


def test_read_curves_keeps_the_replay_of_a_resumed_run(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "metrics.jsonl",
        [{"step": s, "loss": 9.0} for s in (5, 10, 15)] + [{"step": s, "loss": 1.0} for s in (10, 15, 20)],
    )
    assert read_curves(path)["train"] == [(5, 9.0), (10, 1.0), (15, 1.0), (20, 1.0)]


def test_rising_warning_after_exactly_n_rising_evaluations() -> None:
    falling_then = [2.0, 1.5, 1.0]
    two_rises = overfitting(_curves([*falling_then, 1.1, 1.2]), rising_evals=3)
    assert not two_rises["rising"] and two_rises["warning"] is None and two_rises["rising_evals"] == 2
    three = overfitting(_curves([*falling_then, 1.1, 1.2, 1.3]), rising_evals=3)
    assert three["rising"] and three["rising_evals"] == 3
    assert "rose for the last 3 evaluations" in three["warning"]
    assert "step 30" in three["warning"] and three["best_step"] == 30 and three["best_val_loss"] == 1.0


def test_a_fall_resets_the_rising_run() -> None:
    out = overfitting(_curves([1.0, 1.1, 1.2, 1.15, 1.3]), rising_evals=3)
    assert out["rising_evals"] == 1 and not out["rising"]
    flat = overfitting(_curves([1.0, 1.0, 1.0, 1.0]), rising_evals=3)
    assert flat["rising_evals"] == 0  # equal is not a rise


def test_gap_is_last_validation_minus_smoothed_train_loss() -> None:
    # validation every 10 steps up to 100; training losses every 5 steps swing between 0.5 and 1.5
    out = overfitting(_curves([2.0] * 9 + [1.6], train=[0.5, 1.5] * 10))
    assert out["train_window"] == 5  # the last five logged: 1.5, 0.5, 1.5, 0.5, 1.5
    assert out["gap"] == pytest.approx(1.6 - 1.1)
    assert out["last_val_loss"] == 1.6 and out["final_train_loss"] == 1.5
    assert smoothed_loss([(5, 3.0), (10, 1.0), (15, 2.0)], 10, window=5) == pytest.approx(2.0)
    assert smoothed_loss([(5, 3.0)], 1) is None


def test_a_short_run_is_not_smoothed_back_to_its_first_steps() -> None:
    assert smoothing_window(3) == 1 and smoothing_window(12) == 3 and smoothing_window(400) == 5
    out = overfitting(_curves([2.0, 1.5], train=[6.1, 5.6, 5.5, 5.4]))
    assert out["train_window"] == 1 and out["gap"] == pytest.approx(1.5 - 5.4)


def test_early_stop_step_and_empty_curves() -> None:
    curves = _curves([1.0, 1.2])
    curves["events"] = [{"step": 20, "event": "early stop", "reason": "x"}]
    assert overfitting(curves)["early_stop_step"] == 20
    empty = overfitting({"train": [], "val": [], "events": []})
    assert empty["best_step"] is None and empty["gap"] is None and empty["warning"] is None
    assert empty["evaluations"] == 0
