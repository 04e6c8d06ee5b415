"""`tunesmith` end to end through the CLI on a tiny model and tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration


def test_run_writes_every_artifact_and_adapter_loads_with_plain_peft(make_config, tiny_model_dir: Path) -> None:
    config = make_config()
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "tiny"
    for name in (
        "config.yaml",
        "env.json",
        "metrics.jsonl",
        "train.json",
        "data/manifest.json",
        "data/rejects.jsonl",
        "data/train.jsonl",
        "data/validation.jsonl",
        "data/test.jsonl",
        "eval/report.json",
        "eval/report.md",
        "eval/predictions.jsonl",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
    ):
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("step-*/manifest.json"))
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 0 and env["packages"]["torch"] and env["precision"] == "fp32"
    report = json.loads((run / "eval" / "report.json").read_text())
    assert set(report["models"]) == {"base zero-shot", "tuned (lora)"}
    keep = report["forgetting"]  # the shipped retention suite ran on base and tuned
    assert keep["suite"] == "default" and keep["base"]["questions"] == keep["tuned"]["questions"] >= 40
    assert "general-text perplexity" in (run / "eval" / "report.md").read_text()
    html = (run / "eval" / "report.html").read_text()
    assert "<svg" in html or "data:image/svg" in html
    assert "overfitting" in report and "ci" in report["models"]["tuned (lora)"] and report["paired"]
    assert report["rows"] == json.loads((run / "data" / "manifest.json").read_text())["splits"]["test"]["rows"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in m for m in metrics) and any("loss" in m for m in metrics)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tuned = PeftModel.from_pretrained(base, run / "adapter")
    assert any("lora_A" in n for n, _ in tuned.named_parameters())

    # the same run dir again: refused, then resumed (skips finished stages), then overwritten
    assert main(["run", str(config)]) == 2
    assert main(["run", str(config), "--resume"]) == 0
    assert main(["eval", str(run)]) == 0


def test_prepare_train_eval_as_separate_commands(make_config) -> None:
    config = make_config(method={"name": "freeze", "last_n_layers": 1}, name="split-steps")
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "split-steps"
    assert main(["data", "prepare", str(config)]) == 0
    assert (run / "data" / "manifest.json").is_file() and not (run / "model").exists()
    assert main(["train", str(run), "--set", "train.epochs=1"]) == 0
    assert (run / "model" / "config.json").is_file()
    assert main(["train", str(run)]) == 2  # checkpoints exist: needs --resume or --overwrite
    assert main(["eval", str(run)]) == 0
    assert "tuned (freeze)" in json.loads((run / "eval" / "report.json").read_text())["models"]


def test_config_commands(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine.yaml"
    assert main(["config", "eject", "sentiment-lora", str(out)]) == 0
    assert out.is_file()
    assert main(["config", "eject", "sentiment-lora", str(out)]) == 2  # exists
    capsys.readouterr()
    assert main(["config", "show", str(out), "--set", "train.lr=0.001"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["train"]["lr"] == 0.001 and shown["train"]["warmup_ratio"] == 0.05
    assert main(["models"]) == 0


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tunesmith.cli.main", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"train": {"lrr": 0.1}}, "Did you mean 'lr'"),
        ({"data": {"train": "/no/such/file.tsv"}}, "Data file not found: /no/such/file.tsv"),
        ({"model": {"base": "smollm-135"}}, "Unknown model 'smollm-135'"),
    ],
    ids=["typo", "missing-data", "unknown-model"],
)
def test_bad_input_gives_one_paragraph_and_exit_2(make_config, sections, expected) -> None:
    result = _cli("run", str(make_config(**sections)))
    assert result.returncode == 2
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout


def test_continued_pretraining_with_packing_reports_perplexity(make_config) -> None:
    config = make_config(
        name="cpt",
        data={"format": "text", "columns": {"text": "tweet"}, "split": {"validation": 0.1, "stratify": []}},
        train={"objective": "cpt", "packing": True, "epochs": 2, "max_length": 32, "lr": 5e-3},
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "cpt"
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["task"] == "perplexity" and set(report["models"]) == {"base", "tuned (lora)"}
    base, tuned = report["models"]["base"], report["models"]["tuned (lora)"]
    assert base["tokens"] == tuned["tokens"] > 0
    assert tuned["loss"] < base["loss"]  # in-domain text got more likely
    assert json.loads((run / "train.json").read_text())["objective"] == "cpt"


def test_instruction_sft_reports_completion_perplexity(make_config, tmp_path: Path) -> None:
    rows = [
        {"instruction": f"Translate to Pidgin: sentence {i}", "input": "", "output": f"na sentence {i} be dis"}
        for i in range(30)
    ]
    data = tmp_path / "alpaca.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = make_config(
        name="instr",
        data={
            "train": str(data),
            "test": None,
            "format": "instruction",
            "split": {"validation": 0.1, "test": 0.2, "stratify": []},
            "clean": {"near_dup": None},  # templated rows: near duplicates of each other by design
        },
        eval={"generate": True, "generate_rows": 4, "max_new_tokens": 6, "retention": "none"},
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "instr"
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["task"] == "perplexity" and report["rows"] == 6
    tuned, base = report["models"]["tuned (lora)"], report["models"]["base"]
    assert tuned["loss"] < base["loss"] and tuned["ci"]["perplexity"][0] <= tuned["perplexity"]
    assert report["generation_rows"] == 4 and tuned["generation"]["signatures"]["chrf"].startswith("nrefs:1")
    assert {"chrf", "chrf_pp", "bleu", "exact_match", "length_ratio"} <= set(tuned["generation"])
    assert "answers" not in tuned["generation"]  # per-row answers go to predictions.jsonl
    pair = report["paired"]["tuned (lora) vs base"]
    assert 0 < pair["loss"]["p_value"] <= 1 and 0 < pair["chrf"]["p_value"] <= 1
    answers = [json.loads(line) for line in (run / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(answers) == 4 and set(answers[0]["answers"]) == {"base", "tuned (lora)"}
    assert "Generated answers" in (run / "eval" / "report.md").read_text()


def test_cpt_needs_text_data(make_config) -> None:
    assert main(["run", str(make_config(name="bad-cpt", train={"objective": "cpt"}))]) == 2


@pytest.mark.parametrize(
    "method", [{"name": "lora", "r": 4, "alpha": 8}, {"name": "freeze", "last_n_layers": 1}], ids=["lora", "freeze"]
)
def test_classify_objective_on_an_encoder(make_config, tiny_encoder_dir: Path, method: dict) -> None:
    config = make_config(
        name=f"cls-{method['name']}",
        model={"base": str(tiny_encoder_dir)},
        method=method,
        train={"objective": "classify", "epochs": 3, "lr": 5e-3, "class_weights": "balanced"},
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / f"cls-{method['name']}"
    report = json.loads((run / "eval" / "report.json").read_text())
    assert set(report["models"]) == {"majority class", f"tuned ({method['name']})"}
    majority = report["models"]["majority class"]
    assert majority["predicted_counts"]["negative"] == report["rows"]  # the most frequent training label
    summary = json.loads((run / "train.json").read_text())
    assert summary["objective"] == "classify" and summary["labels"] == ["negative", "neutral", "positive"]
    out = run / ("adapter" if method["name"] == "lora" else "model")
    assert out.is_dir()


def test_classify_head_on_a_causal_lm(make_config) -> None:
    config = make_config(
        name="cls-llama", method={"name": "lora", "r": 4, "alpha": 8}, train={"objective": "classify", "epochs": 1}
    )
    assert main(["run", str(config)]) == 0


def test_classify_rejects_packing_and_non_label_data(make_config) -> None:
    assert main(["run", str(make_config(name="c1", train={"objective": "classify", "packing": True}))]) == 2


def test_interrupt_exits_130_with_a_resume_hint(make_config, monkeypatch, capsys) -> None:
    import tunesmith.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tunesmith.pipeline, "run", interrupted)
    assert main(["run", str(make_config(name="ctrl-c"))]) == 130
    assert "--resume" in capsys.readouterr().err


def test_a_failed_preparation_does_not_lock_the_run_dir(make_config, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tsentiment\nhello\tpos\n")
    config = make_config(name="retry", data={"train": str(bad), "test": None})
    assert main(["data", "prepare", str(config)]) == 2
    good = make_config(name="retry")  # fixed config, same run name: no --overwrite needed
    assert main(["data", "prepare", str(good)]) == 0
    assert main(["data", "prepare", str(good)]) == 2  # now the run dir holds prepared data


def test_plan_writes_every_method_and_recommends(make_config, tmp_path: Path) -> None:
    config = make_config(name="planned")
    assert main(["plan", str(config)]) == 0
    out = json.loads((tmp_path / "runs" / "planned" / "plan.json").read_text())
    every = {"full", "lora", "dora", "qlora", "ia3", "prompt", "ptuning", "prefix", "adapters", "freeze"}
    assert every == set(out["methods"]) | set(out["not_applicable"])
    assert "qlora" in out["not_applicable"]  # the tiny model is narrower than bitsandbytes' CPU blocks
    assert out["configured"] == "lora" and out["train_rows"] > 0
    assert out["recommended"] == "ia3"  # the tiny fixture has fewer than FEW_ROWS training rows
    lora = out["methods"]["lora"]
    assert 0 < lora["trainable_pct"] < 100 and lora["memory_gb"]["peak"] > 0


def test_one_and_few_shot_baselines_sit_beside_zero_shot(make_config, tmp_path: Path) -> None:
    config = make_config(name="shots", eval={"baselines": ["zero-shot", "one-shot", "few-shot"], "shots": 3})
    assert main(["run", str(config)]) == 0
    report = json.loads((tmp_path / "runs" / "shots" / "eval" / "report.json").read_text())
    assert list(report["models"]) == ["base zero-shot", "base 1-shot", "base 3-shot", "tuned (lora)"]
    assert len(report["models"]["base 3-shot"]["demonstrations"]) == 3
    assert report["models"]["base 1-shot"]["accuracy"] is not None


def test_classification_by_free_generation(make_config) -> None:
    config = make_config(name="gen", eval={"classify_by": "generate", "max_new_tokens": 4, "retention": "none"})
    assert main(["run", str(config), "--set", "train.epochs=1"]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "gen"
    report = json.loads((run / "eval" / "report.json").read_text())
    tuned = report["models"]["tuned (lora)"]
    assert report["scoring"].startswith("free generation") and 0 <= tuned["unparsed"] <= tuned["n"]
    assert "answers" not in tuned
    first = json.loads((run / "eval" / "predictions.jsonl").read_text().splitlines()[0])
    assert set(first["answers"]) == {"base zero-shot", "tuned (lora)"}


def test_encoder_baseline_scores_beside_the_tuned_causal_lm(make_config, tiny_encoder_dir: Path) -> None:
    config = make_config(
        name="enc",
        train={"epochs": 1},
        eval={"encoder_baseline": True, "encoder_model": str(tiny_encoder_dir), "retention": "none"},
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "enc"
    report = json.loads((run / "eval" / "report.json").read_text())
    name = f"{tiny_encoder_dir} classifier"
    assert set(report["models"]) == {"base zero-shot", name, "tuned (lora)"}
    assert report["models"][name]["n"] == report["rows"] and "ci" in report["models"][name]
    assert f"tuned (lora) vs {name}" in report["paired"]
    assert (run / "baselines" / "encoder" / "model" / "config.json").is_file()


def test_classify_on_an_encoder_with_compiled_blocks_matches_eager(
    make_config, tiny_encoder_dir: Path, tmp_path: Path
) -> None:
    """train.compile on BERT blocks (padded batches, the classification head outside the blocks): fp32 step
    losses equal the eager run's, and the saved adapter evaluates. Dropout is off in this copy of the encoder:
    compiled dropout draws its masks from another random stream than eager, so losses would differ by design."""
    import shutil

    import torch

    encoder = tmp_path / "encoder-no-dropout"
    shutil.copytree(tiny_encoder_dir, encoder)
    config_json = json.loads((encoder / "config.json").read_text())
    config_json.update(attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    (encoder / "config.json").write_text(json.dumps(config_json))
    losses = {}
    for compiled in (False, True):
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        name = f"cls-compile-{compiled}"
        config = make_config(
            name=name,
            model={"base": str(encoder)},
            method={"name": "lora", "r": 4, "alpha": 8},
            train={"objective": "classify", "max_steps": 4, "log_every": 1, "precision": "fp32", "compile": compiled},
            eval={"retention": "none"},
        )
        assert main(["run", str(config)]) == 0
        assert bool(torch._dynamo.utils.counters["stats"]["unique_graphs"]) == compiled
        run = Path(yaml.safe_load(config.read_text())["output_dir"]) / name
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        losses[compiled] = [m["loss"] for m in metrics if "loss" in m]
        assert (run / "eval" / "report.json").is_file()
    assert len(losses[True]) == 4
    assert losses[True] == pytest.approx(losses[False], abs=1e-5)
