"""Dispatch ``train.objective`` to its recipe (one line per objective)."""

from __future__ import annotations

from typing import Any

from tunesmith.config.schema import RunConfig
from tunesmith.rundir import RunDir
from tunesmith.train.classify.recipe import train_classify
from tunesmith.train.cpt.recipe import train_cpt
from tunesmith.train.ppo.recipe import train_ppo
from tunesmith.train.preference.recipe import train_preference
from tunesmith.train.reward.recipe import train_reward
from tunesmith.train.sft.recipe import train_sft

RECIPES = {
    "sft": train_sft,
    "cpt": train_cpt,
    "classify": train_classify,
    "reward": train_reward,
    "dpo": train_preference,
    "orpo": train_preference,
    "kto": train_preference,
    "ppo": train_ppo,
}


def train(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    config.check_trainable()
    if config.method.name == "fewshot":  # nothing to train: choose the demonstrations
        return choose_demonstrations(config, run)
    return RECIPES[config.train.objective](config, run, resume=resume, progress=progress)


def choose_demonstrations(config: RunConfig, run: RunDir) -> dict[str, Any]:
    """The fewshot method's "training": pick demonstrations from the training split into ``adapter/``."""
    import time

    from tunesmith.adapters import fewshot
    from tunesmith.config.schema import FewshotMethod
    from tunesmith.rundir import read_jsonl, write_json
    from tunesmith.train import lifecycle

    started = time.perf_counter()
    precision = lifecycle.start(config, run)
    assert isinstance(config.method, FewshotMethod)
    rows = read_jsonl(run.split("train"))
    artifact = fewshot.fit(rows, config.method, config.seed)
    fewshot.save_artifact(artifact, run.adapter)
    summary = {
        "objective": config.train.objective,
        "method": "fewshot",
        "base": config.model.base,
        "output": str(run.adapter),
        "trainable_params": 0,
        "steps": 0,
        "select": config.method.select,
        "demonstrations": len(artifact.get("demonstrations", [])) or config.method.k,
        "pool": len(artifact.get("pool", [])),
        "train_seconds": round(time.perf_counter() - started, 1),
        "precision": precision,
    }
    write_json(run.train_summary, summary)
    return summary
