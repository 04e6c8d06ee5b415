"""Faults: a training run killed with SIGKILL at random steps and resumed ends exactly where an uninterrupted run
ends (same weights, same losses from the kill on); a corrupted newest checkpoint is skipped, with a message; a
save that fails (a full disk) leaves the previous checkpoint intact."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration
KILLS = 3  # kill points per test run, drawn with a fixed seed
SETTINGS = {"epochs": 3, "batch_tokens": 128, "save_every": 1, "keep_last": 3, "lr": 2e-2}


def losses(run: Path) -> dict[int, float]:
    """Train loss per step; a resumed run's replayed steps replace what the killed process logged."""
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            out[record["step"]] = record["loss"]
    return out


def last_step(run: Path) -> int:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [json.loads(line).get("step", 0) for line in path.read_text().splitlines() if line.endswith("}")]
    return max(steps, default=0)


def kill_at(config: Path, name: str, step: int, cwd: Path) -> int:
    """Start `tunesmith train` in a child process and SIGKILL it once it has logged ``step``; the last logged
    step at the kill."""
    run = cwd / "runs" / name
    child = subprocess.Popen(
        [sys.executable, "-m", "tunesmith.cli.main", "train", str(config), "--set", f"name={name}"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while last_step(run) < step:
        assert child.poll() is None, f"the run ended (code {child.returncode}) before step {step}"
        assert time.monotonic() < deadline, "the run did not reach the kill step"
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    return last_step(run)


def test_sigkill_at_random_steps_then_resume_equals_an_uninterrupted_run(make_config, tmp_path: Path) -> None:
    config = make_config(name="straight", train=SETTINGS)
    assert main(["train", str(config)]) == 0
    straight = tmp_path / "runs" / "straight"
    summary = json.loads((straight / "train.json").read_text())
    total = summary["steps"]
    assert total >= 12, f"too few steps ({total}) to kill at several points"
    reference = load_file(str(straight / "adapter" / "adapter_model.safetensors"))
    reference_losses = losses(straight)
    points = sorted(random.Random(13).sample(range(2, total - 1), KILLS))
    survived = []
    for point in points:
        name = f"killed-{point}"
        killed_at = kill_at(config, name, point, tmp_path)
        run = tmp_path / "runs" / name
        assert not (run / "train.json").exists()
        assert main(["train", str(run), "--resume"]) == 0
        resumed = json.loads((run / "train.json").read_text())
        assert resumed["steps"] == total
        weights = load_file(str(run / "adapter" / "adapter_model.safetensors"))
        for key, value in reference.items():
            torch.testing.assert_close(weights[key], value, rtol=0, atol=1e-6, msg=f"{name}: {key}")
        got = losses(run)
        assert got.keys() == reference_losses.keys()
        for step, loss in reference_losses.items():
            assert got[step] == pytest.approx(loss, abs=1e-6), f"{name}: loss at step {step}"
        assert resumed["final_train_loss"] == pytest.approx(summary["final_train_loss"], abs=1e-6)
        survived.append(killed_at)
    assert len(survived) == KILLS
    print(f"killed at logged steps {survived} of {total}; every resumed run equals the uninterrupted one")


def test_a_corrupted_newest_checkpoint_is_skipped_with_a_message(make_config, tmp_path: Path, caplog) -> None:
    from tunesmith.train import checkpoint as ckpt

    config = make_config(name="corrupt", train={**SETTINGS, "epochs": 1})
    assert main(["train", str(config)]) == 0
    root = tmp_path / "runs" / "corrupt" / "checkpoints"
    kept = sorted(root.glob("step-*"))
    assert len(kept) >= 2
    weights = kept[-1] / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated, as by a crash mid-copy
    with caplog.at_level("WARNING", logger="tunesmith.train.checkpoint"):
        assert ckpt.latest_checkpoint(root) == kept[-2]
    assert f"checkpoint {kept[-1]} fails its checksum check" in caplog.text


def test_a_failed_save_leaves_the_previous_checkpoint_intact(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    from tunesmith.train import checkpoint as ckpt

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    first = ckpt.save_checkpoint(tmp_path, 1, model, optimizer, scheduler, {"epoch": 0})
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    calls = {"n": 0}
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):  # the second file of the next checkpoint hits a full disk
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save_checkpoint(tmp_path, 2, model, optimizer, scheduler, {"epoch": 0})
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]  # no half-written step-2, no temp left
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before
    assert ckpt.latest_checkpoint(tmp_path) == first
