"""The benchmark suite's arithmetic (bench/suite.py): ratios, MFU and the verdict against each target."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
suite = pytest.importorskip("suite")


def rep(tps: float, rss: float, loss: float, sps: float = 2.0) -> dict:
    return {
        "tokens_per_s": tps,
        "seconds_per_step": sps,
        "train_peak_rss_gb": rss,
        "held_out_loss": loss,
        "trained_tokens": 1000,
    }


def test_a_training_row_divides_by_the_baseline_and_counts_flops_per_token() -> None:
    bench = suite.BENCHMARKS[0]  # LoRA SFT: 4N per token, targets 2.5x and 0.5x
    result = {
        "settings": {"precision": "bf16"},
        "results": {
            "trl": [rep(100, 4.0, 5.0), rep(120, 4.2, 5.0), rep(110, 4.1, 5.0)],
            "tunesmith": [rep(300, 2.0, 5.05), rep(280, 2.2, 5.05), rep(290, 2.1, 5.05)],
        },
    }
    row = suite.training_row(bench, result, {"bf16": 1.0, "fp32": 0.25}, {"causal": 1_000_000, "classifier": 1})
    assert row["speedup"] == pytest.approx(290 / 110)
    assert row["memory_ratio"] == pytest.approx(2.1 / 4.1)
    assert row["loss_gap"] == pytest.approx(0.01)
    assert row["mfu"] == pytest.approx(290 * 4e6 / 1e12)  # bf16 peak of 1 TFLOP/s
    assert row["tokens_per_s_range"] == [280, 300]
    text = suite.table([row])
    assert "2.64x** (met >= 2.5x)" in text and "0.51x (short of <= 0.5x)" in text


def test_mfu_counts_the_tied_head_once_and_the_reward_head_not_at_all() -> None:
    weights = suite.multiplying_weights("smollm2-135m-instruct")
    assert weights["causal"] == 134_515_008  # SmolLM2-135M: the tied 49,152 x 576 embedding is one tensor
    assert weights["causal"] - weights["classifier"] == 49_152 * 576


def test_the_speedups_table_says_how_much_faster_all_levers_are() -> None:
    def reps(tps: float) -> list[dict]:
        return [{"tokens_per_s": tps, "train_peak_rss_gb": 2.0, "mean_loss": 5.0}] * 2

    compiled = [{"tokens_per_s": 360, "train_peak_rss_gb": 1.8, "mean_loss": 5.0, "warmup_s": w} for w in (12, 20, 14)]
    result = {
        "results": {"all levers": reps(300), "padded": reps(200), "fp32": reps(100), "+ torch.compile": compiled}
    }
    lines = suite.speedups_table(result).splitlines()
    assert "| padded | 200 | 1.50x faster | - |" in lines[3] and "| fp32 | 100 | 3.00x faster | - |" in lines[4]
    assert "| + torch.compile | 360 | 0.83x faster | 14.0 | 1.80 |" in lines[5]  # the compile time is shown
