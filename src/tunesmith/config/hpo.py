"""The ``hpo`` config section: what ``tunesmith tune`` searches, for which metric, with what budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from tunesmith.config.section import Section

KINDS = ("log_uniform", "uniform", "int", "log_int", "choice")


def check_dimension(key: str, spec: Any) -> dict[str, Any]:
    """One search dimension: ``{log_uniform: [lo, hi]}``, ``{uniform: [lo, hi]}``, ``{int: [lo, hi]}``,
    ``{log_int: [lo, hi]}`` or ``{choice: [a, b, ...]}``; a ValueError saying what is wrong otherwise."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise ValueError(
            f"{key}: write one of {', '.join(k + ': ...' for k in KINDS)}, e.g. {{log_uniform: [1e-5, 1e-3]}}"
        )
    kind, bounds = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(bounds, list) or len(bounds) < 2:
            raise ValueError(f"{key}: choice takes a list of two or more values")
        return spec
    if isinstance(bounds, list):  # YAML 1.1 reads 1e-5 (no dot) as a string
        bounds = [_number(b) for b in bounds]
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(isinstance(b, int | float) for b in bounds):
        raise ValueError(f"{key}: {kind} takes [low, high]")
    low, high = bounds
    if not low < high:
        raise ValueError(f"{key}: {kind} needs low < high, got [{low}, {high}]")
    if kind.startswith("log") and low <= 0:
        raise ValueError(f"{key}: {kind} needs low > 0, got {low}")
    if kind.endswith("int") and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError(f"{key}: {kind} takes whole numbers, got [{low}, {high}]")
    return {kind: [int(low), int(high)] if kind.endswith("int") else [float(low), float(high)]}


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class HpoConfig(Section):
    """Read by ``tunesmith tune`` (a normal ``tunesmith run`` ignores it)."""

    space: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Config fields to search, e.g. {train.lr: {log_uniform: [1e-5, 1e-3]}, method.r: {choice: "
        "[4, 8, 16]}}; empty: the method's default space.",
    )
    metric: str = Field(
        "val_loss",
        description="What a trial is judged by: 'val_loss' (best validation loss) or 'eval.<metric>' of the "
        "tuned model on the evaluation split (eval.macro_f1, eval.weighted_f1, eval.accuracy, eval.perplexity...).",
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="Better is higher or lower; default from the metric (losses and perplexity: minimize)."
    )
    trials: int = Field(20, ge=1, description="Trials in the study (across all workers sharing it).")
    timeout_s: float | None = Field(None, gt=0, description="Stop starting new trials after this many seconds.")
    sampler: Literal["tpe", "random"] = Field("tpe", description="How parameters are drawn.")
    pruner: Literal["median", "halving", "none"] = Field(
        "median", description="Stop weak trials early from their validation loss at each evaluation."
    )
    startup_trials: int = Field(
        4, ge=0, description="Random trials before TPE takes over, and trials finished before any is pruned."
    )

    @field_validator("space")
    @classmethod
    def _dimensions(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {key: check_dimension(key, spec) for key, spec in value.items()}

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value != "val_loss" and not (value.startswith("eval.") and len(value) > 5):
            raise ValueError(f"metric '{value}': use 'val_loss' or 'eval.<metric>' (e.g. eval.macro_f1)")
        return value
