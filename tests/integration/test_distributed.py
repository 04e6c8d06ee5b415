"""Data-parallel training on CPU: two processes under ``torchrun`` or ``accelerate launch`` (with the shipped
``configs/accelerate/cpu-2proc.yaml``) equal one process with twice the accumulation.

Two processes with ``grad_accum=1`` share each optimizer step's two micro-batches; one process with
``grad_accum=2`` takes both. The engine normalises by the labelled tokens of the whole step and scales the
loss so DDP's gradient average becomes a sum, so the logged losses and the trained weights must agree
(up to the order of float additions in the all-reduce).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

pytestmark = pytest.mark.integration


def _losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


ACCELERATE_CPU = Path(__file__).resolve().parents[2] / "configs" / "accelerate" / "cpu-2proc.yaml"


def _train(config: Path, nproc: int, launcher_name: str = "torchrun") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    launchers = {
        "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)],
        # the shipped config, as a user runs it (accelerate's own launcher, gloo on CPU)
        "accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ACCELERATE_CPU)],
    }
    launcher = launchers[launcher_name]
    prefix = launcher if nproc > 1 else [sys.executable]
    cmd = [*prefix, "-m", "tunesmith.cli.main", "train", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_equal_one_with_double_accumulation(make_config, launcher: str) -> None:
    common = {"epochs": 1, "max_steps": 4, "lr": 1e-2, "batch_tokens": 256, "precision": "fp32", "log_every": 1}
    runs = {}
    for nproc, accum in ((1, 2), (2, 1)):
        config = make_config(name=f"ddp{nproc}", train={**common, "grad_accum": accum, "threads": 1})
        done = _train(config, nproc, launcher)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs[nproc] = Path(yaml.safe_load(config.read_text())["output_dir"]) / f"ddp{nproc}"

    one, two = _losses(runs[1]), _losses(runs[2])
    assert len(one) == len(two) == 4
    assert two == pytest.approx(one, rel=1e-5, abs=1e-6)
    summary = json.loads((runs[2] / "train.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert json.loads((runs[2] / "env.json").read_text())["processes"] == 2
    a = load_file(str(runs[1] / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(runs[2] / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] - b[name]).abs().max() < 1e-4, name
    # one writer: exactly one checkpoint folder per save, no leftovers from a second process
    assert not list((runs[2] / "checkpoints").glob(".step-*"))
