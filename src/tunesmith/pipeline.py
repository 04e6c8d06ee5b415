"""``tunesmith run``: stages 1-5 in order into one run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.config.load import dump_config
from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import PrepareResult, card_tokenizer, config_digest, prepare_data
from tunesmith.eval.run import evaluate
from tunesmith.rundir import Mode, RunDir, atomic_write_text, open_run_dir
from tunesmith.train import distributed
from tunesmith.train.recipe import train


def run_dir_for(config: RunConfig) -> Path:
    return Path(config.output_dir) / config.name


def start_run(config: RunConfig, mode: Mode) -> RunDir:
    """Open the run dir and record the resolved config in it."""
    run = open_run_dir(run_dir_for(config), mode)
    atomic_write_text(run.config, dump_config(config))
    return run


def _data_is_current(config: RunConfig, run: RunDir) -> bool:
    if not run.manifest.is_file():
        return False
    manifest = json.loads(run.manifest.read_text())
    return bool(manifest.get("config_sha256") == config_digest(config.data, config.seed))


def run(config: RunConfig, mode: Mode = "new", progress: Any = None, on_stage: Any = None) -> dict[str, Any]:
    """Prepare data, train, evaluate. With ``mode="resume"`` finished stages are skipped and training resumes.

    Under a multi-process launcher the main process prepares the data and evaluates; all processes train.
    """
    config.check_trainable()
    notify = on_stage or (lambda *_: None)
    resume = mode == "resume"
    prepared: PrepareResult | None = None
    with distributed.main_first() as main:
        run_dir = start_run(config, mode) if main else RunDir(run_dir_for(config))
        if main and not (resume and _data_is_current(config, run_dir)):
            prepared = prepare_data(
                config.data, run_dir, seed=config.seed, tokenizer=card_tokenizer(config.model.base)
            )
    notify("data", prepared, run_dir)
    if resume and run_dir.train_summary.is_file():
        summary = json.loads(run_dir.train_summary.read_text())
    else:
        summary = train(config, run_dir, resume=resume, progress=progress)
    notify("train", summary, run_dir)
    if not distributed.is_main():
        return {"run_dir": str(run_dir.root), "prepared": None, "train": summary, "report": None}
    report = evaluate(config, run_dir, progress=progress)
    notify("eval", report, run_dir)
    exports = []
    for to in config.export.to:
        from tunesmith.export import export_run

        exports.append(
            export_run(run_dir.root, to, None, config.export.quant, config.export.ollama, config.export.dtype)
        )
        notify("export", exports[-1], run_dir)
    return {"run_dir": str(run_dir.root), "prepared": prepared, "train": summary, "report": report, "exports": exports}
