"""What every command module of the CLI shares: the console, common options, config loading, quiet libraries."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console()

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config field: --set train.lr=1e-4")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue an existing run dir (skips finished stages).")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Delete an existing run dir and start over.")]


def load(config: Path, overrides: list[str] | None) -> Any:
    from tunesmith.config.load import load_config

    return load_config(config, overrides or [])


def quiet_libraries() -> None:
    """Library chatter (deprecation notices, per-tensor progress bars) hides our own progress display."""
    import logging
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # bitsandbytes (imported by peft when installed) announces optional CPU kernels it could not load
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Merge lora module to .*-bit linear")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*requires_grad=True to a scalar.*")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
