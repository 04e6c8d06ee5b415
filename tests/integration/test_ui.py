"""The dashboard end to end on tiny models: runs started and stopped from the API, the playground serving a
trained run through /v1 with its feedback landing in the run's monitor store and in `tunesmith monitor report`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from ui_helpers import copy_run, wait_for

pytestmark = pytest.mark.integration


def test_playground_feedback_reaches_the_monitor_report(tiny_lora_run: Path, tmp_path: Path) -> None:
    from tunesmith.cli.main import main
    from tunesmith.ui.app import create_ui_app

    root = tmp_path / "runs"
    run = copy_run(tiny_lora_run, root, "tiny-lora")
    app = create_ui_app(root, tmp_path, hosts=("testserver",))
    with TestClient(app) as client:
        assert client.post("/ui/api/playground", json={"run": "tiny-lora"}).status_code == 202
        slot = wait_for(lambda: (s := client.get("/ui/api/playground").json())["state"] != "loading" and s)
        assert slot["state"] == "ready", slot
        assert slot["store"].endswith("tiny-lora/monitor.db")
        models = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert "tiny-lora" in models and len(models) == 2  # the base (named after its folder) and the adapter
        base = next(m for m in models if m != "tiny-lora")
        messages = [{"role": "user", "content": "how market dey"}]
        ids = {}
        for model in (base, "tiny-lora"):
            body = {"model": model, "messages": messages, "max_tokens": 6, "temperature": 0}
            answer = client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            ids[model] = answer.json()["id"]
        feedback = [
            {"request_id": ids["tiny-lora"], "kind": "comparison", "value": ids[base]},
            {"request_id": ids[base], "kind": "thumbs", "value": "down"},
            {"request_id": ids["tiny-lora"], "kind": "rating", "value": 4},
        ]
        for item in feedback:
            assert client.post("/v1/feedback", json=item).status_code == 200
        summary = wait_for(
            lambda: (s := client.get("/ui/api/monitor?run=tiny-lora").json()).get("feedback") == 3 and s
        )
        assert summary["requests"] == 2
        tuned = summary["by_model"]["tiny-lora"]
        assert (tuned["wins"], tuned["mean_rating"], summary["by_model"][base]["losses"]) == (1, 4.0, 1)
        assert client.get("/monitor?run=tiny-lora").status_code == 200
    # The dashboard closed its request log on shutdown: the CLI reads the same store.
    assert main(["monitor", "report", str(run)]) == 0
    report = json.loads((run / "monitor" / "report.json").read_text())
    assert report["by_model"]["tiny-lora"]["wins"] == 1 and report["by_model"][base]["thumbs_down"] == 1
    assert "side by side won / lost" in (run / "monitor" / "report.html").read_text()


def test_a_failed_load_is_shown_and_the_ui_keeps_serving(tiny_lora_run: Path, tmp_path: Path) -> None:
    from tunesmith.ui.app import create_ui_app

    root = tmp_path / "runs"
    run = copy_run(tiny_lora_run, root, "broken")
    shutil.rmtree(run / "adapter")
    with TestClient(create_ui_app(root, tmp_path, hosts=("testserver",))) as client:
        assert client.post("/ui/api/playground", json={"run": "broken"}).status_code == 202
        slot = wait_for(lambda: (s := client.get("/ui/api/playground").json())["state"] != "loading" and s)
        assert slot["state"] == "failed" and slot["error"]
        assert client.get("/").status_code == 200 and client.get("/v1/models").json()["data"] == []


def test_runs_start_train_and_stop_from_the_api(make_config, tmp_path: Path) -> None:
    from tunesmith.ui.app import create_ui_app

    make_config(name="from-ui", train={"epochs": 1})
    root = tmp_path / "ui-runs"
    with TestClient(create_ui_app(root, tmp_path, hosts=("testserver",))) as client:
        job = client.post("/ui/api/jobs", json={"config": "config.yaml", "overrides": ["train.lr=0.02"]})
        assert job.status_code == 201, job.text
        job = job.json()
        assert job["run"] == "from-ui" and job["state"] == "running"
        again = client.post("/ui/api/jobs", json={"config": "config.yaml"})
        assert again.status_code == 400 and "already" in again.json()["error"]["message"]
        done = wait_for(lambda: (j := client.get(f"/ui/api/jobs/{job['id']}").json())["state"] != "running" and j, 600)
        assert done["state"] == "finished", done["log_tail"]
        data = client.get("/ui/api/runs/from-ui/metrics").json()
        assert data["status"] == "evaluated" and any("loss" in line for line in data["lines"])
        assert data["job"]["id"] == job["id"]
        page = client.get("/runs/from-ui").text
        assert "tuned (lora)" in page and 'id="report-frame"' in page
        config = yaml.safe_load((root / "from-ui" / "config.yaml").read_text())
        assert config["train"]["lr"] == 0.02

        # A long run, stopped after its first logged step: Ctrl-C semantics, checkpoints kept, resumable.
        long = client.post(
            "/ui/api/jobs",
            json={"config": "config.yaml", "overrides": ["name=long", "train.epochs=200", "train.save_every=1"]},
        ).json()
        wait_for(
            lambda: client.get("/ui/api/runs/long/metrics").json()["lines"] if (root / "long").exists() else None, 300
        )
        stopped = client.post(f"/ui/api/jobs/{long['id']}/stop").json()
        assert stopped["state"] in ("stopping", "stopped")
        final = wait_for(
            lambda: (j := client.get(f"/ui/api/jobs/{long['id']}").json())["state"] == "stopped" and j, 60
        )
        assert "interrupted" in final["log_tail"]
        assert client.get("/ui/api/runs/long/metrics").json()["status"] in ("interrupted", "training")
        resumed = client.post(
            "/ui/api/jobs", json={"config": "config.yaml", "overrides": ["name=long"], "mode": "resume"}
        )
        assert resumed.status_code == 201 and resumed.json()["command"][-1] == "--resume"
        client.post(f"/ui/api/jobs/{resumed.json()['id']}/stop")
        wait_for(lambda: client.get(f"/ui/api/jobs/{resumed.json()['id']}").json()["state"] == "stopped", 60)
