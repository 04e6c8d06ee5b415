"""Helpers shared by the dashboard's tests."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml


def copy_run(source: Path, root: Path, name: str, **train: object) -> Path:
    """A copy of a trained run under another name (and other training settings in its config)."""
    target = root / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoints", "monitor.db", "monitor", "feedback"))
    config = yaml.safe_load((target / "config.yaml").read_text())
    config["name"] = name
    config["train"].update(train)
    (target / "config.yaml").write_text(yaml.safe_dump(config))
    return target


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(every)
