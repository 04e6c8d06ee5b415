"""Every tuning method trains under every objective, end to end through the CLI, and saves what it should."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration

METHODS = {
    "lora": {"name": "lora", "r": 4, "alpha": 8},
    "dora": {"name": "dora", "r": 4, "alpha": 8},
    "ia3": {"name": "ia3"},
    "prompt": {"name": "prompt", "virtual_tokens": 4, "init_text": "sentiment of this tweet"},
    "prefix": {"name": "prefix", "virtual_tokens": 4},
    "ptuning": {"name": "ptuning", "virtual_tokens": 4, "encoder_hidden": 16},
    "adapters": {"name": "adapters", "size": 8},
    "qlora": {"name": "qlora", "r": 4, "alpha": 8, "bits": 4},
    "qlora-8bit": {"name": "qlora", "r": 4, "alpha": 8, "bits": 8},
    "full": {"name": "full"},
    "freeze": {"name": "freeze", "last_n_layers": 1},
}
OBJECTIVES = {
    "sft": {"train": {"objective": "sft"}},
    "cpt": {
        "train": {"objective": "cpt", "packing": True, "max_length": 48},
        "data": {"format": "text", "columns": {"text": "tweet"}, "split": {"validation": 0.1, "stratify": []}},
    },
    "classify": {"train": {"objective": "classify"}},
}


@pytest.mark.parametrize("objective", list(OBJECTIVES))
@pytest.mark.parametrize("method", list(METHODS))
def test_method_trains_under_objective(
    make_config,
    tiny_encoder_dir: Path,
    tiny_model_64_dir: Path,
    tiny_encoder_64_dir: Path,
    method: str,
    objective: str,
) -> None:
    sections = {k: dict(v) for k, v in OBJECTIVES[objective].items()}
    if method == "prefix" and objective == "classify":
        pytest.skip("prefix tuning trains causal LMs only (tests/conformance)")
    if method in ("prompt", "prefix", "ptuning"):  # virtual tokens per example: no packed rows
        sections["train"] = {**sections["train"], "packing": False}
    if method.startswith("qlora"):  # bitsandbytes' CPU 4-bit kernels need widths in multiples of 64
        tiny_encoder_dir = tiny_encoder_64_dir
        sections["model"] = {"base": str(tiny_model_64_dir)}
    sections["train"] = {**sections["train"], "epochs": 1, "lr": 5e-3}
    if objective == "classify":
        sections["model"] = {"base": str(tiny_encoder_dir)}
    config = make_config(name=f"{method}-{objective}", method=METHODS[method], **sections)
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / f"{method}-{objective}"
    summary = json.loads((run / "train.json").read_text())
    name = METHODS[method]["name"]
    assert summary["objective"] == objective and summary["method"] == name and summary["steps"] >= 1
    if method == "full":
        assert summary["trainable_pct"] == 100.0
    else:
        assert 0 < summary["trainable_pct"] < 100.0
    assert (run / ("adapter" if name not in ("full", "freeze") else "model")).is_dir()
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["task"] == ("perplexity" if objective == "cpt" else "labels")


@pytest.mark.parametrize("select", ["balanced", "similar"])
def test_fewshot_chooses_demonstrations_and_is_evaluated(make_config, tiny_encoder_dir: Path, select: str) -> None:
    method = {"name": "fewshot", "k": 3, "select": select, "encoder": str(tiny_encoder_dir)}
    config = make_config(name=f"fewshot-{select}", method=method)
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / f"fewshot-{select}"
    summary = json.loads((run / "train.json").read_text())
    assert summary["method"] == "fewshot" and summary["steps"] == 0 and summary["trainable_params"] == 0
    artifact = json.loads((run / "adapter" / "fewshot.json").read_text())
    assert len(artifact["demonstrations" if select == "balanced" else "pool"]) >= 3
    rows = [json.loads(line) for line in (run / "eval" / "predictions.jsonl").read_text().splitlines()]
    for row in rows:  # the demonstrations change what the model sees, so every score moves
        assert row["label_logprobs"]["base zero-shot"] != row["label_logprobs"]["tuned (fewshot)"]


def test_fewshot_refuses_objectives_without_answers(make_config) -> None:
    config = make_config(name="fewshot-cpt", method={"name": "fewshot"}, train={"objective": "cpt"})
    assert main(["run", str(config)]) == 2


def test_every_method_trains_the_same_with_compiled_blocks(make_config, tiny_model_64_dir: Path) -> None:
    """train.compile under every method: 3 fp32 SFT steps of the tiny model give the eager run's losses,
    adapters, virtual tokens and prefixes included. QLoRA 4-bit is checked to 1e-3 relative, not 1e-5: its NF4
    path gives slightly different values inside a compiled graph (2e-4 relative when measured); 8-bit is exact."""
    for method, options in METHODS.items():
        losses = {}
        for compiled in (False, True):
            name = f"{method}-compiled-{compiled}"
            train = {"max_steps": 3, "log_every": 1, "precision": "fp32", "compile": compiled}
            model = {"model": {"base": str(tiny_model_64_dir)}} if method.startswith("qlora") else {}
            config = make_config(name=name, method=options, train=train, eval={"retention": "none"}, **model)
            assert main(["train", str(config)]) == 0
            run = Path(yaml.safe_load(config.read_text())["output_dir"]) / name
            metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            losses[compiled] = [m["loss"] for m in metrics if "loss" in m]
        assert len(losses[True]) == 3, method
        tolerance = {"rel": 1e-3} if method == "qlora" else {"abs": 1e-5}
        assert losses[True] == pytest.approx(losses[False], **tolerance), method
