"""SFT / instruction tuning: prompt-completion examples, loss on the completion by default."""

from __future__ import annotations

from typing import Any

from tunesmith.config.data import check_objective_kind
from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import prepared_kind
from tunesmith.errors import ConfigError
from tunesmith.rundir import RunDir
from tunesmith.train.causal import train_causal_lm


def train_sft(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    """Supervised fine-tuning on the prepared (prompt, completion) or chat splits of ``run``."""
    try:
        check_objective_kind("sft", prepared_kind(run))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return train_causal_lm(config, run, resume=resume, progress=progress, chunk_long=False)
