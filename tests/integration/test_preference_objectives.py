"""reward, dpo (every loss type), orpo and kto end to end through the CLI on HH-RLHF pairs, with every method.

The conformance matrix: each tuning method trains a reward model and a DPO policy, saves what it should, and
is evaluated on held-out pairs; reference log-probs come from the adapter switched off or are precomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_method_objective_matrix import METHODS  # the same method settings as the sft/cpt/classify matrix

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration

PAIRS = Path(__file__).parents[1] / "assets" / "hh_rlhf_sample.jsonl"
DATA = {
    "train": str(PAIRS),
    "test": None,
    "format": "preference",
    "columns": {},
    "split": {"validation": 0.15, "test": 0.15},
}


def _run(make_config, name: str, method: dict, train: dict, **sections: dict) -> tuple[Path, dict, dict]:
    config = make_config(
        name=name,
        method=method,
        data=DATA,
        train={"epochs": 1, "lr": 5e-3, "max_length": 96, **train},
        eval={"retention": "none"},
        **sections,
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / name
    return run, json.loads((run / "train.json").read_text()), json.loads((run / "eval" / "report.json").read_text())


@pytest.mark.parametrize("objective", ["reward", "dpo"])
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_trains_reward_and_dpo(
    make_config, tiny_model_64_dir: Path, tiny_model_dir: Path, method: str, objective: str
) -> None:
    if method == "prefix" and objective == "reward":
        pytest.skip("prefix tuning trains causal LMs only (tests/conformance)")
    sections = {"model": {"base": str(tiny_model_64_dir if method.startswith("qlora") else tiny_model_dir)}}
    run, summary, report = _run(
        make_config, f"{method}-{objective}", METHODS[method], {"objective": objective}, **sections
    )
    name = METHODS[method]["name"]
    assert summary["objective"] == objective and summary["steps"] >= 1
    if objective == "dpo":
        expected = "adapter_off" if name in ("lora", "dora", "ia3", "qlora") else "precompute"
        assert summary["reference"] == expected
    assert (run / ("model" if name in ("full", "freeze") else "adapter")).is_dir()
    assert report["task"] == "preferences" and report["scored"] >= 1
    tuned = report["models"][f"tuned ({name})"]
    assert 0.0 <= tuned["accuracy"] <= 1.0 and "margin" in tuned
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_accuracy" in m for m in metrics)  # held-out pairwise accuracy while training


def test_dpo_starts_at_log_two_and_raises_training_accuracy(make_config) -> None:
    """A fresh adapter is the reference, so the first loss is log 2; training pairs then get ranked right."""
    run, _, _ = _run(
        make_config,
        "dpo-learns",
        {"name": "lora", "r": 8, "alpha": 16},
        {"objective": "dpo", "epochs": 6, "lr": 2e-2, "log_every": 1, "batch_tokens": 2048},
    )
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "loss" in m]
    assert steps[0]["loss"] == pytest.approx(0.693147, abs=1e-4)
    assert steps[-1]["loss"] < 0.6
    assert steps[-1]["accuracy"] >= 0.75 and steps[-1]["margin"] > 0


@pytest.mark.parametrize("loss_type", ["ipo", "hinge", "simpo"])
def test_dpo_loss_types_run(make_config, loss_type: str) -> None:
    _, summary, report = _run(
        make_config,
        f"dpo-{loss_type}",
        {"name": "lora", "r": 4, "alpha": 8},
        {"objective": "dpo", "preference": {"loss_type": loss_type}},
    )
    assert summary["loss_type"] == loss_type
    assert summary["reference"] == ("none" if loss_type == "simpo" else "adapter_off")
    assert "reference-free" not in report["scoring"] or loss_type == "simpo"


def test_dpo_with_precomputed_reference_matches_adapter_off_at_the_first_step(make_config) -> None:
    """Both reference sources give the base model's log-probs, so the first losses agree."""
    losses = {}
    for reference in ("adapter_off", "precompute"):
        run, summary, _ = _run(
            make_config,
            f"dpo-{reference}",
            {"name": "lora", "r": 4, "alpha": 8},
            {"objective": "dpo", "log_every": 1, "max_steps": 2, "preference": {"reference": reference}},
        )
        assert summary["reference"] == reference
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses[reference] = [m["loss"] for m in metrics if "loss" in m]
    assert losses["adapter_off"] == pytest.approx(losses["precompute"], abs=1e-5)


@pytest.mark.parametrize("objective", ["orpo", "kto"])
def test_orpo_and_kto_run_from_pairs(make_config, objective: str) -> None:
    _, summary, report = _run(make_config, objective, {"name": "lora", "r": 4, "alpha": 8}, {"objective": objective})
    assert summary["objective"] == objective
    if objective == "kto":
        assert summary["desirable"] == summary["undesirable"] > 0  # every pair split into one of each
    assert report["models"]["tuned (lora)"]["n"] == report["scored"]


def test_kto_on_unpaired_feedback(make_config, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    unpaired = tmp_path / "unpaired.jsonl"
    with unpaired.open("w") as fh:
        for i, row in enumerate(rows):
            text = row["chosen"] if i % 3 else row["rejected"]
            prompt, _, answer = text.rpartition("\n\nAssistant:")
            fh.write(
                json.dumps({"prompt": prompt + "\n\nAssistant:", "completion": answer.strip(), "label": i % 3 != 0})
                + "\n"
            )
    config = make_config(
        name="kto-unpaired",
        method={"name": "lora", "r": 4, "alpha": 8},
        data={**DATA, "train": str(unpaired), "format": "unpaired"},
        train={"objective": "kto", "epochs": 1, "lr": 5e-3, "max_length": 96},
        eval={"retention": "none"},
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "kto-unpaired"
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["task"] == "preferences" and "kto" in json.loads((run / "train.json").read_text())["objective"]


def test_reward_model_from_ratings_and_rankings(make_config, tmp_path: Path, tiny_encoder_dir: Path) -> None:
    """Ratings train a regression head; rankings a listwise (Plackett-Luce) one, here on the MiniLM-style encoder."""
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    ratings, rankings = tmp_path / "ratings.jsonl", tmp_path / "rankings.jsonl"
    with ratings.open("w") as fr, rankings.open("w") as fk:
        for i, row in enumerate(rows):
            prompt, _, good = row["chosen"].rpartition("\n\nAssistant:")
            bad = row["rejected"].rpartition("\n\nAssistant:")[2]
            prompt = prompt.replace("\n\nHuman:", "").strip()
            if not good.strip() or not bad.strip() or good.strip() == bad.strip():
                continue
            for answer, score in ((good, 4), (bad, 2)):
                fr.write(json.dumps({"prompt": prompt, "response": answer.strip(), "score": score, "pid": i}) + "\n")
            fk.write(
                json.dumps({"prompt": prompt, "responses": [bad.strip(), good.strip(), "ok"], "ranks": [2, 1, 2]})
                + "\n"
            )
    together = {"groups": ["pid"], "split": {"validation": 0.15, "test": 0.15, "keep_together": "pid"}}
    for name, path, fmt, extra, data in (
        ("reward-ratings", ratings, "rating", {}, together),  # both answers to a prompt in one split
        ("reward-listwise", rankings, "ranking", {"reward": {"ranking_loss": "listwise"}}, {}),
    ):
        config = make_config(
            name=name,
            method={"name": "lora", "r": 4, "alpha": 8},
            model={"base": str(tiny_encoder_dir)},
            data={**DATA, "train": str(path), "format": fmt, **data},
            train={"objective": "reward", "epochs": 1, "lr": 5e-3, "max_length": 96, **extra},
            eval={"retention": "none"},
        )
        assert main(["run", str(config)]) == 0, name
        run = Path(yaml.safe_load(config.read_text())["output_dir"]) / name
        summary = json.loads((run / "train.json").read_text())
        assert ("regression" in summary["feedback"]) == (fmt == "rating")
        assert ("listwise" in summary["feedback"]) == (fmt == "ranking")
        report = json.loads((run / "eval" / "report.json").read_text())
        assert report["scored"] >= 1 and "untrained head" in report["models"]


def test_dpo_with_compiled_blocks_matches_eager(make_config) -> None:
    """train.compile through the CLI on DPO: padded pairs of changing shape, and the reference taken with the
    adapter switched off inside the same compiled blocks; fp32 losses and rewards match the eager run's."""
    import torch

    steps = {}
    for compiled in (False, True):
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        run, _, report = _run(
            make_config,
            f"dpo-compile-{compiled}",
            {"name": "lora", "r": 4, "alpha": 8},
            {"objective": "dpo", "log_every": 1, "max_steps": 4, "precision": "fp32", "compile": compiled},
        )
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        steps[compiled] = [x for m in metrics if "loss" in m for x in (m["loss"], m["margin"])]
        assert report["scored"] >= 1
        assert bool(torch._dynamo.utils.counters["stats"]["unique_graphs"]) == compiled  # it did compile, or not
    assert len(steps[True]) == 2 * 4
    assert steps[True] == pytest.approx(steps[False], abs=1e-5)
