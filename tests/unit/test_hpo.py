"""Hyperparameter search: the space section, sampling, overrides, directions, the pruner on synthetic
objectives, and the engine stopping a trial its observer prunes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.config.hpo import check_dimension
from tunesmith.errors import ConfigError
from tunesmith.hpo.space import default_space, direction_of, overrides, suggest

optuna = pytest.importorskip("optuna")


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"log_uniform": [0, 1e-3]}, "low > 0"),
        ({"uniform": [1, 1]}, "low < high"),
        ({"int": [1.5, 3]}, "whole numbers"),
        ({"choice": [4]}, "two or more"),
        ({"normal": [0, 1]}, "write one of"),
        ({"uniform": [0, 1], "int": [1, 2]}, "write one of"),
        ({"uniform": "0..1"}, "[low, high]"),
    ],
)
def test_bad_dimensions_say_what_is_wrong(spec: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        check_dimension("train.lr", spec)


def test_space_in_a_config_is_checked_and_numbers_read(make_config) -> None:
    from tunesmith.config.load import load_config

    path = make_config(hpo={"space": {"train.lr": {"log_uniform": ["1e-5", "1e-3"]}}, "metric": "eval.macro_f1"})
    config = load_config(path)
    assert config.hpo.space == {"train.lr": {"log_uniform": [1e-5, 1e-3]}}
    bad = make_config(hpo={"space": {"train.lr": {"log_uniform": [0, 1]}}})
    with pytest.raises(ConfigError, match="hpo.space.*train.lr: log_uniform needs low > 0"):
        load_config(bad)
    with pytest.raises(ConfigError, match="hpo.metric.*eval.<metric>"):
        load_config(make_config(hpo={"metric": "f1"}))


def test_suggestions_become_overrides_the_loader_applies(make_config) -> None:
    from tunesmith.config.load import load_config

    space = {
        "train.lr": {"log_uniform": [1e-5, 1e-3]},
        "method.r": {"choice": [4, 8]},
        "train.epochs": {"int": [1, 3]},
        "method.targets": {"choice": [["q_proj", "v_proj"], "all-linear"]},
    }
    fixed = optuna.trial.FixedTrial(
        {"train.lr": 3e-4, "method.r": 8, "train.epochs": 2, "method.targets": json.dumps(["q_proj", "v_proj"])}
    )
    params = suggest(fixed, space)
    assert params == {"train.lr": 3e-4, "method.r": 8, "train.epochs": 2, "method.targets": ["q_proj", "v_proj"]}
    config = load_config(make_config(), overrides(params))
    assert (config.train.lr, config.method.r, config.train.epochs) == (3e-4, 8, 2)
    assert config.method.targets == ["q_proj", "v_proj"]


def test_directions_and_default_spaces() -> None:
    assert direction_of("val_loss") == "minimize" and direction_of("eval.perplexity") == "minimize"
    assert direction_of("eval.macro_f1") == "maximize" and direction_of("eval.chrf") == "maximize"
    assert set(default_space("lora")) == {"train.lr", "method.r", "method.alpha", "method.dropout", "train.epochs"}
    assert set(default_space("full")) == {"train.lr", "train.weight_decay", "train.epochs"}
    assert default_space("ia3") == {"train.lr": {"log_uniform": [1e-5, 1e-2]}, "train.epochs": {"int": [1, 3]}}


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_the_pruner_stops_trials_worse_than_the_others(pruner: str, make_config, tmp_path: Path) -> None:
    """A synthetic objective: each trial 'trains' 8 validations; its loss curve is set by its lr, far from
    1e-3 meaning worse. Trials clearly worse than those before them are pruned; the good ones complete."""
    from tunesmith.config.load import load_config
    from tunesmith.hpo.study import Study, open_study

    config = load_config(
        make_config(hpo={"pruner": pruner, "startup_trials": 3, "space": {"train.lr": {"log_uniform": [1e-5, 1e-1]}}})
    )
    study = Study("synthetic", tmp_path, f"sqlite:///{tmp_path / 's.db'}", Path("unused"), ())
    handle = open_study(config, study)
    lrs = [1e-3, 1.2e-3, 9e-4, 1e-5, 1e-1, 1.1e-3, 5e-2]  # the first three set the bar; 1e-5 and 1e-1 are bad

    for lr in lrs:
        trial = handle.ask({"train.lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)})
        trial.suggest_float("train.lr", 1e-5, 1e-1, log=True)
        distance = abs(__import__("math").log10(lr) - 3 * -1)
        pruned = False
        for step in range(1, 9):
            trial.report(1.0 + distance + 1.0 / step, step)
            if trial.should_prune():
                pruned = True
                break
        if pruned:
            handle.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            handle.tell(trial, 1.0 + distance)
    states = [t.state.name for t in handle.get_trials()]
    assert states[:3] == ["COMPLETE"] * 3  # startup trials are never pruned
    assert states[3] == "PRUNED" and states[4] == "PRUNED"  # lr 1e-5 and 1e-1
    assert states[5] == "COMPLETE"  # close to the best again


def test_an_observer_that_prunes_stops_training(make_config, tmp_path: Path) -> None:
    from tunesmith.cli.main import main
    from tunesmith.train.hooks import on_validation

    config = make_config(name="pruned", train={"epochs": 3, "eval_every": 2, "batch_tokens": 128})
    seen: list[tuple[int, float]] = []

    def observe(step: int, values: dict) -> bool:
        seen.append((step, values["val_loss"]))
        return step >= 4  # prune at the second validation

    with on_validation(observe):
        assert main(["train", str(config)]) == 0
    run = tmp_path / "runs" / "pruned"
    summary = json.loads((run / "train.json").read_text())
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [s for s, _ in seen] == [2, 4] and summary["steps"] == 4 and summary["stopped_early"]
    assert any(e.get("event") == "pruned" for e in events)
    assert main(["train", str(config), "--set", "name=free"]) == 0  # no observer: the same run goes the whole way
    free = json.loads((tmp_path / "runs" / "free" / "train.json").read_text())
    assert free["steps"] > 4 and not free["stopped_early"]
