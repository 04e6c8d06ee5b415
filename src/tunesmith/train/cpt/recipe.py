"""Continued pre-training: raw text, every token a label, long documents cut into max_length pieces.

With ``train.packing`` the pieces fill rows of ``batch_tokens`` tokens back to back, attention staying
inside each piece. Domain-specific fine-tuning is this run first, then an SFT run whose ``model.base``
is this run's merged output (the deployment stage exports it).
"""

from __future__ import annotations

from typing import Any

from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import prepared_kind
from tunesmith.errors import ConfigError
from tunesmith.rundir import RunDir
from tunesmith.train.causal import train_causal_lm


def train_cpt(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    """Continued pre-training on the prepared raw-text splits of ``run``."""
    if (kind := prepared_kind(run)) != "text":
        raise ConfigError(f"train.objective=cpt trains on raw text: set data.format: text (the data is '{kind}').")
    if config.train.loss_on != "all":
        config = config.model_copy(update={"train": config.train.model_copy(update={"loss_on": "all"})})
    return train_causal_lm(config, run, resume=resume, progress=progress, chunk_long=True)
