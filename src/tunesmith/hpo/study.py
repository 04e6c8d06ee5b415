"""A hyperparameter study: Optuna samples, every trial is a normal ``tunesmith run`` into its own run directory.

The study lives in a database (SQLite beside the trials by default, or any SQLAlchemy URL such as
PostgreSQL), so it survives interruption (running ``tunesmith tune`` again continues it) and several
processes or machines can work on one study at once: each asks the database for the next parameters.
Trials are grouped under ``<output_dir>/<study>/``: ``<study>-000``, ``<study>-001``... each with its
config, data, curves and report, plus ``hpo.json`` saying which trial it was.

Pruning: the engine reports every validation loss to the trial (:mod:`tunesmith.train.hooks`); the pruner
(median of the trials so far at the same step, or successive halving) may stop a weak trial, which then skips
evaluation and counts as pruned. With class weights it sees the unweighted loss, so that trials with and
without them compare.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config.load import load_config
from tunesmith.config.schema import RunConfig
from tunesmith.errors import ConfigError, TunesmithError
from tunesmith.hpo.space import default_space, direction_of, overrides, suggest
from tunesmith.rundir import write_json

# Trials are judged by the tuned model; the prompting baselines, the encoder baseline, the forgetting suite
# and exports would cost each trial minutes without changing its score.
# Trials are scored on the validation split: choosing hyperparameters by test scores would leak the test set
# into the choice. The test split stays for the best config's own run.
TRIAL_SETTINGS = [
    "eval.baselines=[]",
    "eval.encoder_baseline=false",
    "eval.retention=none",
    "eval.split=validation",
    "export.to=[]",
]


# Fields that change what the validation loss measures, so losses of trials that differ in them do not compare
LOSS_DEFINING = {"train.class_weights", "train.loss_on"}


class _Pruned(Exception):
    """The pruner stopped this trial during training: skip its evaluation."""


class _Trained(Exception):
    """The metric is the validation loss: the trial is done once training is."""


@dataclass(frozen=True)
class Study:
    name: str
    folder: Path  # where the trials' run directories go
    storage: str  # SQLAlchemy URL of the study database
    config_path: Path
    user_overrides: tuple[str, ...]


def storage_url(storage: str | None, folder: Path) -> str:
    """A database URL from ``--storage`` (a URL, or a file path for SQLite), default ``<folder>/study.db``."""
    if storage is None:
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(folder / 'study.db').resolve()}"
    if "://" in storage:
        return storage
    return f"sqlite:///{Path(storage).expanduser().resolve()}"


def open_study(config: RunConfig, study: Study) -> Any:
    """Create the Optuna study, or load it when it exists (another worker, or a resumed search)."""
    import optuna

    hpo = config.hpo
    sampler = (
        optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=hpo.startup_trials, multivariate=True)
        if hpo.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=config.seed)
    )
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=hpo.startup_trials, n_warmup_steps=0),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[hpo.pruner]()
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, retries
    storage = _storage(study.storage)
    return optuna.create_study(
        study_name=study.name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize" if (hpo.direction or direction_of(hpo.metric)) == "maximize" else "minimize",
        load_if_exists=True,
    )


def _storage(url: str, attempts: int = 6) -> Any:
    """The study database. Workers started together on a new database race to create its tables; the loser
    sees an integrity error and tries again once the winner is done."""
    from optuna.storages import RDBStorage

    for attempt in range(attempts):
        try:
            # A worker killed mid-trial stops beating; after the grace period its trial is failed and retried once.
            return RDBStorage(url, heartbeat_interval=30, grace_period=120, **_retry_once())
        except Exception as exc:  # a bad URL, a server that is down, a driver not installed, the creation race
            racing = "IntegrityError" in type(exc).__name__ or "already exists" in str(exc) or "locked" in str(exc)
            if racing and attempt < attempts - 1:
                time.sleep(0.5 * (attempt + 1))
                continue
            shown = url.split("@")[-1]
            raise ConfigError(
                f"--storage {shown}: cannot open the study database ({type(exc).__name__}: {exc})"
            ) from None
    raise AssertionError("unreachable")


def _retry_once() -> dict[str, Any]:
    """Optuna 4.9 renamed the stale-trial callback; take whichever this Optuna has."""
    import optuna.storages as storages

    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=1)}


def space_of(config: RunConfig) -> dict[str, dict[str, Any]]:
    return config.hpo.space or default_space(config.method.name)


def check_space(config: RunConfig, study: Study) -> None:
    """Build one trial's config from the space's first values before any trial runs, so a field that does not
    exist or a value it refuses is a clear error now rather than every trial failing."""
    from tunesmith.config.hpo import check_dimension

    changes_loss = sorted(set(space_of(config)) & LOSS_DEFINING)
    if config.hpo.metric == "val_loss" and changes_loss:
        raise ConfigError(
            f"hpo.metric val_loss cannot rank trials that search {', '.join(changes_loss)}: the field changes "
            "what the validation loss measures. Judge trials by an evaluation metric (e.g. eval.macro_f1)."
        )
    probe = {}
    for key, raw in space_of(config).items():
        bounds = next(iter(check_dimension(key, raw).values()))
        probe[key] = bounds[0]
    trial_config(study, probe, 0)


def trial_config(study: Study, params: dict[str, Any], number: int) -> RunConfig:
    """The run config of trial ``number``: the study's config, the user's overrides, the sampled values."""
    sets = [
        *study.user_overrides,
        *overrides(params),
        *TRIAL_SETTINGS,
        f"name={study.name}-{number:03d}",
        f"output_dir={study.folder}",
    ]
    try:
        return load_config(study.config_path, sets)
    except ConfigError as exc:  # a space over a field that does not exist, or a value the field refuses
        raise ConfigError(f"trial {number} with {params}: {exc}") from None


def metric_value(metric: str, summary: dict[str, Any], report: dict[str, Any] | None) -> float:
    """The trial's score: the best validation loss, or the tuned model's ``eval.<name>``."""
    if metric == "val_loss":
        value = summary.get("best_val_loss")
        if value is None:
            raise ConfigError("hpo.metric val_loss needs a validation split (data.split.validation > 0).")
        return float(value)
    from tunesmith.eval.htmlkit import with_generation

    name = metric.split(".", 1)[1]
    models = with_generation(report or {})
    tuned = next((m for n, m in models.items() if n.startswith("tuned")), {})
    value = tuned.get(name)
    if not isinstance(value, int | float):
        known = sorted(k for k, v in tuned.items() if isinstance(v, int | float) and not isinstance(v, bool))
        raise ConfigError(f"hpo.metric {metric}: the evaluation has no '{name}'; it has {', '.join(known)}.")
    return float(value)


def run_trial(trial: Any, config: RunConfig, study: Study, progress: Any = None) -> float:
    """Sample, train (reporting validation losses to the pruner), evaluate, and return the score."""
    import optuna

    from tunesmith.pipeline import run
    from tunesmith.train.hooks import on_validation

    params = suggest(trial, space_of(config))
    trial_cfg = trial_config(study, params, trial.number)
    run_dir = study.folder / trial_cfg.name
    trial.set_user_attr("run_dir", str(run_dir))
    maximize = trial.study.direction == optuna.study.StudyDirection.MAXIMIZE
    metric = config.hpo.metric
    results: dict[str, Any] = {}

    def observe(step: int, values: dict[str, float]) -> bool:
        # with class weights the weighted loss changes scale: trials with and without them compare unweighted
        loss = float(values.get("val_unweighted_loss", values["val_loss"]))
        trial.report(-loss if maximize else loss, step)  # the pruner compares in the study's direction
        return bool(trial.should_prune())

    def on_stage(stage: str, result: Any, _run: Any) -> None:
        results[stage] = result
        if stage == "train" and any(e.get("event") == "pruned" for e in _events(run_dir)):
            raise _Pruned
        if stage == "train" and metric == "val_loss":
            raise _Trained

    started = time.time()
    record = {"study": study.name, "trial": trial.number, "params": params, "metric": metric, "storage": study.storage}
    try:
        with on_validation(observe):
            run(trial_cfg, "overwrite", progress=progress, on_stage=on_stage)
    except _Pruned:
        write_json(run_dir / "hpo.json", {**record, "state": "pruned", "seconds": round(time.time() - started, 1)})
        raise optuna.TrialPruned from None
    except _Trained:
        pass
    value = metric_value(metric, results.get("train") or {}, results.get("eval"))
    write_json(
        run_dir / "hpo.json",
        {**record, "state": "complete", "value": value, "seconds": round(time.time() - started, 1)},
    )
    return value


def config_values(config: RunConfig) -> dict[str, Any]:
    """The config's own value of each searched field that lies inside the space: trial 0 of a new study, so
    the study measures what the default config gives next to what it finds."""
    from tunesmith.config.hpo import check_dimension

    raw = config.model_dump(mode="json")
    values: dict[str, Any] = {}
    for key, spec in space_of(config).items():
        value: Any = raw
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        kind, bounds = next(iter(check_dimension(key, spec).items()))
        if kind == "choice":
            if value in bounds:
                values[key] = json.dumps(value) if isinstance(value, list | dict) else value
        elif (
            isinstance(value, int | float)
            and bounds[0] <= value <= bounds[1]
            and (not kind.endswith("int") or float(value).is_integer())
        ):
            values[key] = int(value) if kind.endswith("int") else float(value)
    return values if len(values) == len(space_of(config)) else {}


def _events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if "event" in r]


def optimize(
    config: RunConfig, study: Study, trials: int | None = None, timeout_s: float | None = None, progress: Any = None
) -> Any:
    """Run trials until the study holds ``trials`` finished (complete or pruned) ones, counting every worker's,
    or ``timeout_s`` passes. Returns the Optuna study."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    handle = open_study(config, study)
    budget = trials or config.hpo.trials
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    if not handle.get_trials(deepcopy=False) and (start := config_values(config)):
        handle.enqueue_trial(start, user_attrs={"origin": "the config's own values"})  # the default, measured
    if len(handle.get_trials(deepcopy=False, states=done)) < budget:
        handle.optimize(
            lambda trial: run_trial(trial, config, study, progress),
            timeout=timeout_s or config.hpo.timeout_s,
            callbacks=[MaxTrialsCallback(budget, states=done)],
            catch=(TunesmithError,),  # a trial whose run fails is recorded as failed; the study goes on
            gc_after_trial=True,
        )
    return handle
