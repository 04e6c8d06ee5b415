"""The closed loop on a tiny model: serve -> users' feedback -> `monitor export-data` -> `run` retrains with DPO
from the deployed model and evaluates against it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration
PROMPTS = [
    "how market dey",
    "wetin dey happen for Lagos",
    "I no fit shout",
    "na so e be",
    "e don cast",
    "make we go",
    "dem no try at all",
    "body dey inside cloth",
    "how una dey",
    "this weather no good",
    "abeg help me",
    "who sabi am",
    "traffic don start",
    "power don go again",
    "food don ready",
    "wahala no dey end",
    "the match sweet well well",
    "money no dey",
    "rain don fall",
    "small small",
]


def test_feedback_becomes_the_next_rounds_dpo_run(tiny_lora_run: Path, tmp_path: Path) -> None:
    from tunesmith.monitor.store import Store
    from tunesmith.monitor.writer import StoreWriter, WriterSettings
    from tunesmith.serve.app import create_app
    from tunesmith.serve.launch import build_engine

    run = tmp_path / "deployed"
    shutil.copytree(tiny_lora_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["output_dir"] = str(tmp_path / "runs")
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    engine = build_engine(str(run), dtype="float32")
    writer = StoreWriter(Store(run / "monitor.db"), WriterSettings(privacy="redact"))
    with TestClient(create_app(engine, log=writer)) as client:
        for i, prompt in enumerate(PROMPTS):
            body = {
                "model": "tiny-lora",
                "messages": [{"role": "user", "content": prompt}],
                "n": 2,
                "max_tokens": 6,
                "temperature": 1.0,
                "seed": i,
            }
            answered = client.post("/v1/chat/completions", json=body).json()
            kind, value = [("choice", i % 2), ("ranking", [1, 0]), ("thumbs", "down"), ("correction", "E good")][i % 4]
            response = client.post("/v1/feedback", json={"request_id": answered["id"], "kind": kind, "value": value})
            assert response.status_code == 200, response.text
            rating = {"request_id": answered["id"], "kind": "rating", "value": 1 + i % 5}
            assert client.post("/v1/feedback", json=rating).status_code == 200
    assert writer.counters["written"] == len(PROMPTS) and writer.counters["dropped"] == 0

    assert main(["monitor", "export-data", str(run)]) == 0
    out = run / "feedback"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["feedback"] == 2 * len(PROMPTS) and manifest["rejected"] == 0
    pairs = [json.loads(line) for line in (out / "preference.jsonl").read_text().splitlines()]
    assert len(pairs) >= 12 and all(p["chosen"] != p["rejected"] for p in pairs)
    assert pairs[0]["prompt"] == PROMPTS[0]
    unpaired = [json.loads(line) for line in (out / "unpaired.jsonl").read_text().splitlines()]
    assert {u["label"] for u in unpaired} == {True, False}
    assert manifest["records"]["rating"]["rows"] == len(PROMPTS) and (run / "export" / "hf" / "config.json").is_file()

    from tunesmith.config.load import load_config

    written = sorted(p.name for p in out.glob("retrain-*.yaml"))
    assert written == ["retrain-dpo.yaml", "retrain-kto.yaml", "retrain-reward.yaml", "retrain-sft.yaml"]
    for path in out.glob("retrain-*.yaml"):  # each is a valid config whose data file exists
        loaded = load_config(path, [])
        assert Path(loaded.data.train).is_file() and loaded.model.base == str((run / "export" / "hf").resolve())
    tasks = {"dpo": "preferences", "kto": "preferences", "reward": "preferences", "sft": "perplexity"}
    for objective, task in tasks.items():  # each retrains from the deployed model and is evaluated against it
        retrain = out / f"retrain-{objective}.yaml"
        settings = yaml.safe_load(retrain.read_text())
        assert settings["train"]["objective"] == objective
        assert main(["run", str(retrain), "--set", "train.precision=fp32"]) == 0, objective
        report = json.loads((tmp_path / "runs" / settings["name"] / "eval" / "report.json").read_text())
        assert report["task"] == task and len(report["models"]) >= 2, (objective, list(report["models"]))
        if objective == "reward":  # one rated answer per prompt: ordered across prompts, with a rank correlation
            assert "across prompts" in report["scoring"] and "spearman" in report["models"]["tuned (lora)"]


def test_feedback_without_its_request_is_rejected_with_a_reason(tmp_path: Path) -> None:
    from tunesmith.monitor.feedback_data import write_feedback_data
    from tunesmith.monitor.store import Store

    store = Store(tmp_path / "m.db")
    store.add(feedback_rows=[{"request_id": "gone", "time": 1.0, "kind": "thumbs", "value": '"up"', "comment": None}])
    manifest = write_feedback_data(store, tmp_path / "out")
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert manifest["rejected"] == 1 and rejects[0]["reason"] == "its request is not in the log"
    assert main(["monitor", "export-data", "--store", str(tmp_path / "nothing.db"), "--out", str(tmp_path)]) == 2


def test_multi_turn_prompts_become_hh_dialogues_the_data_stage_reads_back() -> None:
    from tunesmith.data.format import _prompt_messages
    from tunesmith.monitor.feedback_data import prompt_text

    chat = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how far"},
    ]
    text = prompt_text(chat)
    assert text.startswith("Human: hi") and text.endswith("\n\nAssistant:")
    assert _prompt_messages(text) == chat[1:]
