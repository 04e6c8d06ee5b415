"""Search spaces: the ``hpo.space`` section (or a method's default) as Optuna suggestions, and back to overrides.

Pure functions: a dimension spec is ``{log_uniform: [lo, hi]}``, ``{uniform: [lo, hi]}``, ``{int: [lo, hi]}``,
``{log_int: [lo, hi]}`` or ``{choice: [...]}`` (checked by :func:`tunesmith.config.hpo.check_dimension`).
"""

from __future__ import annotations

import json
from typing import Any

from tunesmith.config.hpo import check_dimension

ADAPTER_METHODS = ("lora", "dora", "qlora")
WHOLE_METHODS = ("full", "freeze")

# What a user with little data most often gets wrong, per method; small enough for a 10-20 trial study.
DEFAULT_SPACES: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {
    ADAPTER_METHODS: {
        "train.lr": {"log_uniform": [1e-5, 3e-3]},
        "method.r": {"choice": [4, 8, 16, 32]},
        "method.alpha": {"choice": [8, 16, 32, 64]},
        "method.dropout": {"uniform": [0.0, 0.2]},
        "train.epochs": {"int": [1, 3]},
    },
    WHOLE_METHODS: {
        "train.lr": {"log_uniform": [1e-6, 1e-4]},
        "train.weight_decay": {"uniform": [0.0, 0.1]},
        "train.epochs": {"int": [1, 3]},
    },
}
FALLBACK: dict[str, dict[str, Any]] = {"train.lr": {"log_uniform": [1e-5, 1e-2]}, "train.epochs": {"int": [1, 3]}}


def default_space(method: str) -> dict[str, dict[str, Any]]:
    """The space searched when the config has no ``hpo.space``."""
    chosen = next((space for methods, space in DEFAULT_SPACES.items() if method in methods), None)
    return chosen if chosen is not None else FALLBACK


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One value per dimension from an Optuna trial (``trial.suggest_*``), keyed by config field."""
    params: dict[str, Any] = {}
    for key, raw in space.items():
        kind, bounds = next(iter(check_dimension(key, raw).items()))
        if kind == "choice":
            # Optuna stores choices as JSON-able scalars; lists and dicts go through their JSON text
            options = [json.dumps(v) if isinstance(v, list | dict) else v for v in bounds]
            value = trial.suggest_categorical(key, options)
            params[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        elif kind in ("int", "log_int"):
            params[key] = trial.suggest_int(key, bounds[0], bounds[1], log=kind == "log_int")
        else:
            params[key] = trial.suggest_float(key, bounds[0], bounds[1], log=kind == "log_uniform")
    return params


def overrides(params: dict[str, Any]) -> list[str]:
    """``--set`` overrides for sampled parameters (values as YAML flow, which the override parser reads)."""
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]


def direction_of(metric: str) -> str:
    """Better is lower for losses, perplexity and negative log-likelihood; higher for everything else."""
    name = metric.split(".", 1)[-1]
    return "minimize" if name in ("val_loss", "loss", "perplexity", "nll_per_word") else "maximize"
