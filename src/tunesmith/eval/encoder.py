"""The non-generative baseline for classification: the embedded MiniLM encoder with a trained head.

A causal LM tuned to answer with a label word should beat what a small encoder learns from the same rows
with a classification head: when it does not, the generative route costs compute for nothing. With
``eval.encoder_baseline`` the evaluation fine-tunes ``eval.encoder_model`` (full, ``classify`` objective,
the settings of ``examples/pcm-classify``) on the run's own prepared splits, in ``baselines/encoder/``
inside the run directory, and scores it on the same test rows as the other models.
"""

from __future__ import annotations

import shutil
from typing import Any

from tunesmith.config.schema import FullMethod, ModelConfig, RunConfig, TrainConfig
from tunesmith.rundir import RunDir


def encoder_config(config: RunConfig) -> RunConfig:
    """The baseline's config: the same data and evaluation, the encoder, full tuning of a classifier head."""
    train = TrainConfig(
        objective="classify",
        epochs=3,
        lr=5e-5,
        batch_tokens=4096,
        max_length=128,
        class_weights="balanced",
        precision="fp32",
        threads=config.train.threads,
    )
    return config.model_copy(
        update={
            "name": f"{config.name}-encoder-baseline",
            "model": ModelConfig(base=config.eval.encoder_model),
            "method": FullMethod(),
            "train": train,
            "eval": config.eval.model_copy(update={"encoder_baseline": False, "retention": "none"}),
        }
    )


def encoder_baseline(config: RunConfig, run: RunDir, progress: Any = None) -> tuple[str, dict[str, Any]]:
    """Train and evaluate the encoder baseline on ``run``'s prepared data; ``(name, metrics)`` for the report."""
    from tunesmith.eval.run import evaluate
    from tunesmith.train.classify.recipe import train_classify

    sub = encoder_config(config)
    sub_run = RunDir(run.root / "baselines" / "encoder")
    if sub_run.root.exists():
        shutil.rmtree(sub_run.root)
    shutil.copytree(run.data, sub_run.data)  # the same splits, rows and label set
    train_classify(sub, sub_run, progress=progress)
    report = evaluate(sub, sub_run, progress=progress)
    tuned = report["models"]["tuned (full)"]
    return f"{config.eval.encoder_model} classifier", tuned
