"""A 4-trial study run by two worker processes at once, sharing one study database (SQLite, then PostgreSQL):
every trial is a run directory, no trial number is taken twice, the budget is kept, and a resumed search
continues the same study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
optuna = pytest.importorskip("optuna")
SPACE = {"train.lr": {"log_uniform": [1e-3, 5e-2]}, "method.r": {"choice": [2, 4]}}


def two_workers(config: Path, storage: str, study: str, trials: int) -> list[subprocess.CompletedProcess[str]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "tunesmith.cli.main", "tune", str(config), "--trials", str(trials)]
    cmd += ["--storage", storage, "--study", study]
    workers = [
        subprocess.Popen(cmd, cwd=config.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    out = []
    for w in workers:
        stdout, _ = w.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(cmd, w.returncode, stdout, ""))
    return out


def check_study(config: Path, storage: str, study: str, budget: int) -> list:
    from optuna.trial import TrialState

    handle = optuna.load_study(study_name=study, storage=storage)
    trials = handle.get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert budget <= len(finished) <= budget + 1  # each worker checks the budget after its trial
    assert len({t.number for t in trials}) == len(trials)
    folder = config.parent / "runs" / study
    for t in finished:
        record = json.loads((folder / f"{study}-{t.number:03d}" / "hpo.json").read_text())
        assert record["trial"] == t.number and record["params"] == t.params
        assert record["state"] == t.state.name.lower()
    assert (folder / "hpo" / "trials.json").is_file() and (folder / "hpo" / "report.html").is_file()
    return finished


def make(make_config) -> Path:
    return make_config(
        name="shared",
        train={"epochs": 1, "batch_tokens": 256, "threads": 1},
        hpo={"space": SPACE, "metric": "val_loss", "startup_trials": 2},
    )


def test_two_workers_share_one_sqlite_study_and_a_resume_continues_it(make_config) -> None:
    config = make(make_config)
    storage = f"sqlite:///{config.parent / 'shared.db'}"
    runs = two_workers(config, str(config.parent / "shared.db"), "s", 4)
    for done in runs:
        assert done.returncode == 0, done.stdout[-3000:]
        assert "study s:" in done.stdout
    finished = check_study(config, storage, "s", 4)
    best = yaml.safe_load((config.parent / "runs" / "s" / "hpo" / "best.yaml").read_text())
    assert best["name"] == "s-best" and best["hpo"]["space"] == SPACE
    # one more finished trial asked of the same study: it continues, numbering after the others
    from tunesmith.cli.main import main

    os.chdir(config.parent)
    assert main(["tune", str(config), "--trials", str(len(finished) + 1), "--storage", storage, "--study", "s"]) == 0
    again = check_study(config, storage, "s", len(finished) + 1)
    assert max(t.number for t in again) > max(t.number for t in finished)


def test_two_workers_share_one_postgres_study(make_config, postgres_url: str) -> None:
    config = make(make_config)
    runs = two_workers(config, postgres_url, "pg", 4)
    for done in runs:
        assert done.returncode == 0, done.stdout[-3000:]
    check_study(config, postgres_url, "pg", 4)
