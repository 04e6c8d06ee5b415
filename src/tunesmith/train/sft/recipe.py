"""SFT / instruction tuning: prompt-completion examples, loss on the completion by default."""

from __future__ import annotations

from typing import Any

from tunesmith.config.schema import RunConfig
from tunesmith.rundir import RunDir
from tunesmith.train.causal import train_causal_lm


def train_sft(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    """Supervised fine-tuning on the prepared (prompt, completion) splits of ``run``."""
    return train_causal_lm(config, run, resume=resume, progress=progress, chunk_long=False)
