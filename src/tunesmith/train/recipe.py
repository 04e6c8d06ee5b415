"""Dispatch ``train.objective`` to its recipe (one line per objective)."""

from __future__ import annotations

from typing import Any

from tunesmith.config.schema import RunConfig
from tunesmith.rundir import RunDir
from tunesmith.train.classify.recipe import train_classify
from tunesmith.train.cpt.recipe import train_cpt
from tunesmith.train.sft.recipe import train_sft

RECIPES = {"sft": train_sft, "cpt": train_cpt, "classify": train_classify}


def train(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    return RECIPES[config.train.objective](config, run, resume=resume, progress=progress)
