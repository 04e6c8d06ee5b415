"""Ready-to-run configs that retrain the deployed model on its users' feedback.

The new run starts from what is deployed: its base is the deployed run merged into one model
(``RUN_DIR/export/hf``, exported here when missing), a fresh LoRA trains on the feedback, and stage 5
compares the retrained model with that base, i.e. with the deployed model, on held-out feedback. DPO's
reference is the same merged model (the new adapter switched off), so the retrained model is pulled
toward the users' preferences and kept near what already works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# feedback file -> (objective, data format, objective settings)
PLANS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "preference": ("dpo", "preference", {"preference": {"beta": 0.1, "loss_type": "sigmoid"}}),
    "unpaired": ("kto", "unpaired", {}),
    "rating": ("reward", "rating", {}),
    "sft": ("sft", "messages", {}),
}


def deployed_base(run_dir: Path, config: Any) -> tuple[str, str]:
    """The model the retrained run starts from, and a sentence saying what it is."""
    from tunesmith.export import export_run
    from tunesmith.export.tuned import MERGEABLE, WHOLE

    if config.method.name not in MERGEABLE + WHOLE:
        return config.model.base, (
            f"the deployed run's method {config.method.name} does not merge, so retraining starts from its base "
            f"{config.model.base}"
        )
    merged = run_dir / "export" / "hf"
    if not (merged / "config.json").is_file():
        export_run(run_dir, "hf")
    return str(merged.resolve()), f"the deployed model, merged ({merged})"


def retrain_configs(run_dir: Path, data_dir: Path, files: dict[str, Any]) -> dict[str, str]:
    """Write ``retrain-<objective>.yaml`` into ``data_dir`` for each feedback file with enough rows."""
    from tunesmith.export.tuned import run_config

    config = run_config(run_dir)
    base, why = deployed_base(run_dir, config)
    written = {}
    for kind, (objective, data_format, settings) in PLANS.items():
        if kind not in files:
            continue
        name = f"{config.name}-feedback-{objective}"
        body = {
            "name": name,
            "seed": config.seed,
            "output_dir": str(Path(config.output_dir).resolve()),
            "data": {
                "train": str((data_dir / files[kind]["file"]).resolve()),
                "format": data_format,
                "split": {"validation": 0.1, "test": 0.2, "stratify": []},
            },
            "model": {"base": base},
            "method": {"name": "lora", "r": 8, "alpha": 16},
            "train": {
                "objective": objective,
                **settings,
                "epochs": 2,
                "lr": 1e-4,
                "max_length": config.train.max_length,
            },
            "eval": {"baselines": ["zero-shot"]},
        }
        path = data_dir / f"retrain-{objective}.yaml"
        header = (
            f"# Retrain {config.name} on its users' feedback ({files[kind]['rows']} {kind} records).\n"
            f"# Starts from {why}; stage 5 compares the result with it.\n"
        )
        path.write_text(header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
        written[objective] = str(path)
    return written
