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


def _trial_eval(folder, gold, pred):  # type: ignore[no-untyped-def]
    import json

    (folder / "eval").mkdir(parents=True)
    report = {"labels": ["neg", "pos"], "models": {"tuned (lora)": {}}}
    (folder / "eval" / "report.json").write_text(json.dumps(report))
    rows = [
        {"source": {"file": "t.tsv", "line": i + 2}, "label": g, "predictions": {"tuned (lora)": p}}
        for i, (g, p) in enumerate(zip(gold, pred, strict=True))
    ]
    (folder / "eval" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(folder)


def test_the_best_trial_is_tested_against_trial_0_on_the_same_rows(tmp_path):
    from tunesmith.hpo.results import against_first

    gold = ["neg", "pos"] * 100
    better = list(gold)  # right on every row
    worse = ["neg"] * 200  # right on half
    trials = [
        {"number": 0, "state": "complete", "run_dir": _trial_eval(tmp_path / "t0", gold, worse)},
        {"number": 1, "state": "complete", "run_dir": _trial_eval(tmp_path / "t1", gold, better)},
    ]
    summary = {"metric": "eval.accuracy", "best": {"number": 1}, "trials": trials}
    test = against_first(summary)
    assert test is not None and test["trials"] == [1, 0] and test["rows"] == 200
    assert test["delta"] == pytest.approx(0.5) and test["p_value"] < 0.05 and test["low"] > 0
    summary["metric"] = "eval.weighted_f1"
    assert against_first(summary)["delta"] > 0.5  # F1 of an all-"neg" answer is worse still
    # the same predictions: no difference, p = 1
    trials[0]["run_dir"] = _trial_eval(tmp_path / "same", gold, better)
    assert against_first(summary)["p_value"] == 1.0
    # nothing to test: trial 0 is the best, a loss metric, or different rows
    assert against_first({**summary, "best": {"number": 0}}) is None
    assert against_first({**summary, "metric": "val_loss"}) is None
    trials[0]["run_dir"] = _trial_eval(tmp_path / "fewer", gold[:50], better[:50])
    assert against_first(summary) is None


def test_weighted_validation_also_tallies_the_unweighted_loss(tiny_model_dir: Path) -> None:
    """With class weights the validation loss changes scale; the loss module also tallies the plain one, which
    equals the loss of the same batch without weights. Training steps (with gradients) tally nothing."""
    import torch
    from transformers import AutoModelForCausalLM

    from tunesmith.train.sft.loss import CausalLMLoss

    torch.manual_seed(0)
    module = CausalLMLoss(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    ids = torch.randint(3, 100, (3, 12))
    labels = ids.clone()
    labels[:, :8] = -100  # loss on the last 4 tokens of each row
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    weighted = {**batch, "weights": torch.tensor([0.2, 0.3, 2.5])}
    with torch.no_grad():
        plain, n = module(batch)
        loss, _ = module(weighted)
    module.tally.take("train")
    module.tally.scope = "val"  # as the engine sets it while validating
    with torch.no_grad():
        module(weighted)
        module(batch)  # no weights: nothing to add
    tallied = module.tally.take("val")["unweighted_loss"]
    assert abs(tallied - float(plain)) < 1e-5 and abs(float(loss) - float(plain)) > 1e-3 and n == 12
    module.tally.scope = "train"
    module(weighted)[0].backward()  # a training step
    assert module.tally.take("train") == {}


def test_the_pruner_compares_trials_on_the_unweighted_loss(make_config, tmp_path: Path) -> None:
    """A run with balanced class weights reports both validation losses; the study's observer would use the
    unweighted one. Ranking trials by val_loss while searching class weights is refused."""
    from tunesmith.cli.main import main
    from tunesmith.config.load import load_config
    from tunesmith.hpo.study import Study, check_space
    from tunesmith.train.hooks import on_validation

    config = make_config(name="weighted", train={"epochs": 1, "eval_every": 2, "class_weights": "balanced"})
    seen: list[dict] = []
    with on_validation(lambda step, values: bool(seen.append(values))):
        assert main(["train", str(config), "--set", "train.max_steps=2"]) == 0
    assert seen and all("val_unweighted_loss" in v for v in seen)
    assert all(abs(v["val_unweighted_loss"] - v["val_loss"]) > 1e-6 for v in seen)
    logged = [json.loads(line) for line in (tmp_path / "runs" / "weighted" / "metrics.jsonl").read_text().splitlines()]
    assert any("val_unweighted_loss" in r for r in logged)

    space = {"train.lr": {"log_uniform": [1e-4, 1e-2]}, "train.class_weights": {"choice": ["none", "balanced"]}}
    by_loss = make_config(hpo={"metric": "val_loss", "space": space})
    study = Study("s", tmp_path / "study", "sqlite://", by_loss, ())
    with pytest.raises(ConfigError, match="val_loss cannot rank trials that search train.class_weights"):
        check_space(load_config(by_loss), study)
    by_f1 = make_config(hpo={"metric": "eval.macro_f1", "space": space})
    check_space(load_config(by_f1), Study("s", tmp_path / "study", "sqlite://", by_f1, ()))
