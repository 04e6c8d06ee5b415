"""The dashboard's reading of run directories, its job runner, its request guard and its JSON API (no model)."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import pytest
import yaml

from tunesmith.ui import runs


def make_run(root: Path, name: str, files: dict[str, object] | None = None) -> Path:
    """A run directory with a config and ``files`` (relative path -> text, or a value written as JSON)."""
    run = root / name
    run.mkdir(parents=True)
    config = {"name": name, "model": {"base": "tiny"}, "method": {"name": "lora", "r": 4}, "train": {"lr": 0.01}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for key, value in (files or {}).items():
        path = run / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value if isinstance(value, str) else json.dumps(value))
    return run


REPORT = {
    "models": {
        "base zero-shot": {"accuracy": 0.5, "macro_f1": 0.3, "ci": {}},
        "base 5-shot": {"accuracy": 0.55, "macro_f1": 0.35, "ci": {}},
        "tuned (lora)": {"accuracy": 0.62, "macro_f1": 0.41, "ci": {"accuracy": [0.58, 0.66]}},
    }
}


def test_status_follows_the_files_each_stage_writes(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r")
    assert runs.status(run) == "new"
    (run / "data").mkdir()
    (run / "data" / "manifest.json").write_text("{}")
    assert runs.status(run) == "prepared"
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    assert runs.status(run) == "training"
    assert runs.status(run, now=time.time() + runs.LIVE_SECONDS + 1) == "interrupted"
    (run / "train.json").write_text("{}")
    assert runs.status(run) == "trained"
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text("{}")
    assert runs.status(run) == "evaluated"


def test_headline_compares_the_tuned_model_with_its_best_baseline() -> None:
    h = runs.headline(REPORT)
    assert (h["metric"], h["tuned"], h["baseline"]) == ("accuracy", 0.62, 0.55)
    assert h["better"] is True and h["delta"] == pytest.approx(0.07)
    lower = {"models": {"base": {"perplexity": 30.0}, "tuned (full)": {"perplexity": 35.0}}}
    h = runs.headline(lower)
    assert (h["metric"], h["baseline"], h["better"]) == ("perplexity", 30.0, False)
    assert runs.headline(None) == {} and runs.headline({"models": {"base": {"accuracy": 1.0}}}) == {}


def test_runs_table_rows(tmp_path: Path) -> None:
    manifest = {
        "inputs": {"train": {"path": "/data/pcm_train.tsv"}},
        "splits": {"train": {"rows": 120}},
        "languages": {"train": {"pcm": 100, "eng": 15, "hau": 5}, "test": {"yor": 40}},
    }
    training = {"steps": 9, "tokens_per_s": 50.0, "best_val_loss": 1.5}
    make_run(tmp_path, "a", {"data/manifest.json": manifest, "train.json": training, "eval/report.json": REPORT})
    make_run(tmp_path, "b")
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / ".ui-jobs").mkdir()
    rows = {r["name"]: r for r in runs.list_runs(tmp_path)}
    assert set(rows) == {"a", "b"}
    a = rows["a"]
    assert (a["status"], a["method"], a["objective"], a["base"]) == ("evaluated", "lora", "sft", "tiny")
    assert (a["data"], a["train_rows"], a["steps"], a["best_val_loss"]) == ("pcm_train.tsv", 120, 9, 1.5)
    assert a["languages"] == ["pcm", "eng"]  # hau is under 5% of the training rows; test languages not counted
    assert a["headline"]["tuned"] == 0.62
    assert rows["b"]["status"] == "new" and rows["b"]["headline"] == {}


def test_a_studys_trials_are_listed_and_found_by_name(tmp_path: Path) -> None:
    make_run(tmp_path, "plain")
    study = tmp_path / "pcm-tune"
    trial = make_run(study, "pcm-tune-000", {"hpo.json": {"number": 0}})
    make_run(study, "plain", {"hpo.json": {"number": 1}})  # the same name as a run under the root
    (study / "hpo").mkdir()  # the study's results folder is not a run
    other = tmp_path / "folder"
    make_run(other, "deep")  # a folder of runs that is not a study stays out
    rows = runs.list_runs(tmp_path)
    assert sorted((r["name"], r["study"] or "") for r in rows) == [
        ("pcm-tune-000", "pcm-tune"),
        ("plain", ""),
        ("plain", "pcm-tune"),
    ]
    assert runs.run_path(tmp_path, "pcm-tune-000") == trial
    assert runs.run_path(tmp_path, "plain") == tmp_path / "plain"  # the root's own run wins
    assert runs.run_path(tmp_path, "deep") is None
    assert runs.run_path(tmp_path, "pcm-tune/pcm-tune-000") is None  # names stay plain: no slashes


def test_metric_lines_are_read_incrementally(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r")
    path = run / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 3.0}\n{"step": 2, "loss": 2.5}\n{"step": 3, "lo')  # a line being written
    lines, offset = runs.metric_lines(run)
    assert [r["step"] for r in lines] == [1, 2]
    with path.open("a") as fh:
        fh.write('ss": 2.0}\nnot json\n{"step": 4, "val_loss": 2.2}\n')
    more, offset2 = runs.metric_lines(run, offset)
    assert [r["step"] for r in more] == [3, 4] and offset2 == path.stat().st_size
    assert runs.metric_lines(run, offset2) == ([], offset2)
    path.write_text('{"step": 1, "loss": 9.0}\n')  # --overwrite started the run again: the offset is past the end
    again, _ = runs.metric_lines(run, offset2)
    assert again == [{"step": 1, "loss": 9.0}]


def test_no_request_reaches_outside_the_runs_folder(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    run = make_run(root, "r", {"eval/report.html": "<p>report</p>"})
    (tmp_path / "secret.txt").write_text("secret")
    (run / "link").symlink_to(tmp_path / "secret.txt")
    assert runs.run_path(root, "r") == run
    for name in ("..", ".", "../runs", "r/..", "", "missing"):
        assert runs.run_path(root, name) is None
    assert runs.artifact_path(run, "eval/report.html") == (run / "eval" / "report.html").resolve()
    for rel in ("../secret.txt", "/etc/passwd", "eval/../../secret.txt", "link", "eval", "eval\\report.html"):
        assert runs.artifact_path(run, rel) is None, rel


def test_artifacts_list_files_and_fold_checkpoints(tmp_path: Path) -> None:
    run = make_run(tmp_path, "r", {"adapter/adapter_config.json": {}, "checkpoints/step-5/weights": "x" * 100})
    (run / ".hidden").write_text("x")
    listed = {a["path"]: a for a in runs.artifacts(run)}
    assert "adapter/adapter_config.json" in listed and "config.yaml" in listed
    assert listed["checkpoints"] == {"path": "checkpoints", "bytes": 100, "folder": True}
    assert not any(p.startswith("checkpoints/") or p.startswith(".") for p in listed)


def test_config_diff_puts_differences_first(tmp_path: Path) -> None:
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b")
    config = yaml.safe_load((b / "config.yaml").read_text())
    config["train"]["lr"] = 0.001
    config["train"]["epochs"] = 3
    (b / "config.yaml").write_text(yaml.safe_dump(config))
    diff = runs.config_diff([a, b])
    top = [(r["key"], r["values"]) for r in diff if r["differs"]]
    assert top == [("name", ['"a"', '"b"']), ("train.epochs", ["—", "3"]), ("train.lr", ["0.01", "0.001"])]
    assert diff[: len(top)] == [r for r in diff if r["differs"]]
    assert {"key": "method.r", "values": ["4", "4"], "differs": False} in diff


# ---- jobs ----


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    """A stand-in interpreter: prints its arguments, then sleeps (a long training run) or exits as told."""
    script = tmp_path / "fake-tunesmith-python"
    script.write_text(
        '#!/bin/sh\necho started "$@"\n'
        'case "$*" in *exit-fail*) exit 3;; *exit-ok*) exit 0;; esac\n'
        "trap 'echo interrupted; exit 130' INT\nwhile true; do sleep 0.1; done\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.mark.parametrize("ignored", [False, True], ids=["sigint-default", "sigint-ignored-by-the-shell"])
def test_jobs_start_stop_and_survive_a_restart(tmp_path: Path, make_config, fake_python: str, ignored: bool) -> None:
    """Also when the dashboard itself ignores SIGINT (started with `&` from a script): its jobs must not."""
    import signal

    if ignored:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            _start_stop(tmp_path, make_config, fake_python)
        finally:
            signal.signal(signal.SIGINT, previous)
        return
    _start_stop(tmp_path, make_config, fake_python)


def _start_stop(tmp_path: Path, make_config, fake_python: str) -> None:
    from tunesmith.ui.jobs import Jobs

    config = make_config(name="job-a")
    root = tmp_path / "ui-runs"
    jobs = Jobs(root, tmp_path, python=fake_python)
    job = jobs.start(config.name, None, ["train.lr=0.02"], "new")
    assert job.run == "job-a" and job.state == "running"
    assert job.command[1:5] == ["-m", "tunesmith.cli.main", "run", str(config)]
    assert "train.lr=0.02" in job.command and f"output_dir={root.resolve()}" in job.command
    wait_for(lambda: "started" in jobs.log_tail(job))
    with pytest.raises(Exception, match="already training"):
        jobs.start(config.name, None, [], "new")
    # A dashboard restarted meanwhile still sees the job, alive, and can stop it.
    again = Jobs(root, tmp_path, python=fake_python)
    assert again.get(job.id) is not None and again.get(job.id).state == "running"  # type: ignore[union-attr]
    jobs.stop(job.id)
    wait_for(lambda: jobs.get(job.id).state == "stopped")  # type: ignore[union-attr]
    wait_for(lambda: "interrupted" in jobs.log_tail(job))
    assert not job.alive()


def test_jobs_record_how_they_ended(tmp_path: Path, make_config, fake_python: str) -> None:
    from tunesmith.ui.jobs import Jobs

    config = make_config(name="job-b")
    jobs = Jobs(tmp_path / "r", tmp_path, python=fake_python, max_running=2)
    ok = jobs.start(str(config), None, ["seed=1", "data.max_rows.train=10", "name=exit-ok"], "new")
    bad = jobs.start(str(config), None, ["name=exit-fail"], "new")
    wait_for(lambda: jobs.get(ok.id).state == "finished" and jobs.get(bad.id).state == "failed")  # type: ignore[union-attr]
    assert jobs.get(bad.id).returncode == 3  # type: ignore[union-attr]
    assert [j.run for j in Jobs(tmp_path / "r", tmp_path).all()] == ["exit-fail", "exit-ok"]


def test_jobs_refuse_bad_starts_with_the_reason(tmp_path: Path, make_config) -> None:
    from tunesmith.errors import ConfigError, RunDirError
    from tunesmith.ui.jobs import Jobs

    config = make_config(name="job-c")
    jobs = Jobs(tmp_path / "r", tmp_path, python=sys.executable)
    with pytest.raises(ConfigError, match="not found"):
        jobs.command("nope.yaml", None, [], "new")
    with pytest.raises(ConfigError, match="not a usable path"):  # found by the HTTP fuzz test
        jobs.command("a\x00b.yaml", None, [], "new")
    with pytest.raises(ConfigError, match="one of the two"):
        jobs.command(str(config), "sentiment-lora", [], "new")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        jobs.command(str(config), None, ["train.lr"], "new")
    with pytest.raises(ConfigError, match="train.lr"):
        jobs.command(str(config), None, ["train.lr=fast"], "new")
    with pytest.raises(RunDirError, match="nothing to resume"):
        jobs.command(str(config), None, [], "resume")
    (tmp_path / "r" / "job-c" / "checkpoints").mkdir(parents=True)
    with pytest.raises(RunDirError, match="already exists"):
        jobs.command(str(config), None, [], "new")
    argv, name = jobs.command(str(config), None, [], "overwrite")
    assert name == "job-c" and argv[-1] == "--overwrite"


# ---- the app without a model ----


@pytest.fixture
def client(tmp_path: Path):
    from fastapi.testclient import TestClient

    from tunesmith.ui.app import create_ui_app

    root = tmp_path / "runs"
    make_run(root, "alpha", {"metrics.jsonl": '{"step": 1, "loss": 2.0}\n', "eval/report.html": "<p>r</p>"})
    make_run(root, "beta")
    app = create_ui_app(root, tmp_path, hosts=("testserver", "localhost"))
    with TestClient(app) as c:
        yield c


def test_pages_render_and_missing_runs_are_404(client) -> None:
    for url in ("/", "/runs/alpha", "/compare?run=alpha&run=beta", "/start", "/playground", "/monitor"):
        r = client.get(url)
        assert r.status_code == 200, url
    assert "alpha" in client.get("/").text and "beta" in client.get("/").text
    r = client.get("/runs/gamma")
    assert r.status_code == 404 and "No run named &#39;gamma&#39;" in r.text
    assert client.get("/compare?run=alpha").status_code == 400
    assert client.get("/compare?run=alpha&run=nope").status_code == 404


def test_run_files_are_served_sandboxed(client) -> None:
    r = client.get("/runs/alpha/files/eval/report.html")
    assert r.status_code == 200 and r.text == "<p>r</p>"
    assert r.headers["content-security-policy"] == "sandbox"
    assert client.get("/runs/alpha/files/config.yaml").headers["content-type"].startswith("text/plain")
    assert client.get("/runs/alpha/files/../beta/config.yaml").status_code == 404
    assert client.get("/runs/alpha/files/%2e%2e/beta/config.yaml").status_code == 404


def test_api_runs_and_metrics(client) -> None:
    names = [r["name"] for r in client.get("/ui/api/runs").json()["runs"]]
    assert sorted(names) == ["alpha", "beta"]
    data = client.get("/ui/api/runs/alpha/metrics").json()
    assert data["lines"] == [{"step": 1, "loss": 2.0}] and data["status"] == "training" and data["job"] is None
    assert client.get(f"/ui/api/runs/alpha/metrics?offset={data['offset']}").json()["lines"] == []
    assert client.get("/ui/api/runs/nope/metrics").status_code == 404


def test_api_start_errors_name_the_problem(client) -> None:
    r = client.post("/ui/api/jobs", json={"config": "missing.yaml"})
    assert r.status_code == 400 and "missing.yaml" in r.json()["error"]["message"]
    r = client.post("/ui/api/jobs", json={"preset": "sentiment-lora"})
    assert r.status_code == 400 and "data" in r.json()["error"]["message"]
    r = client.post("/ui/api/jobs", json={"config": "x", "mode": "later"})
    assert r.status_code == 400 and "mode" in r.text
    assert client.post("/ui/api/jobs/nope/stop").status_code == 404


def test_playground_without_a_model(client) -> None:
    assert client.get("/ui/api/playground").json() == {
        "state": "idle",
        "target": None,
        "error": None,
        "models": [],
        "store": None,
    }
    assert client.get("/v1/models").json()["data"] == []
    r = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = client.post("/ui/api/playground", json={"run": "beta"})
    assert r.status_code == 409 and "no trained model" in r.json()["error"]["message"]
    assert client.post("/ui/api/playground", json={"run": "../x"}).status_code == 404
    assert client.get("/ui/api/monitor?run=alpha").status_code == 404


def test_guard_refuses_other_hosts_and_cross_site_posts(client) -> None:
    assert client.get("/", headers={"host": "evil.example:8700"}).status_code == 403
    assert client.get("/", headers={"host": "localhost:8700"}).status_code == 200
    r = client.post("/ui/api/jobs", json={"config": "x"}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "cross-site" in r.json()["error"]["message"]
    r = client.post("/ui/api/jobs", json={"config": "x"}, headers={"origin": "http://testserver"})
    assert r.status_code == 400  # same origin: reaches the handler (and its own error)
    # A form another site could post without a preflight (text/plain) is not taken as JSON.
    r = client.post("/ui/api/jobs", content='{"config": "x"}', headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "config file" not in r.text


def test_the_guard_takes_bracketed_ipv6_and_ports() -> None:
    from tunesmith.ui.guard import _host_name

    assert _host_name("[::1]:8700") == "[::1]" and _host_name("LOCALHOST:1") == "localhost"
    assert _host_name("127.0.0.1") == "127.0.0.1" and _host_name("::1") == "::1"


def test_ui_refuses_a_public_host_without_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["ui", "--host", "0.0.0.0"]) == 2


def test_drift_series_are_statistics_over_their_thresholds() -> None:
    from tunesmith.ui.routes.api import drift_series

    def check(t: float, js: float, psi: float) -> dict:
        report = {
            "thresholds": {"language_js": 0.1, "length_psi": 0.25},
            "language": {"js": js},
            "length": {"chars": {"psi": psi}},
        }
        return {"time": t, "report": report}

    series = drift_series([check(1.0, 0.05, 0.5), check(2.0, 0.3, -0.1)])
    assert series["language mix (JS)"] == [[1.0, pytest.approx(0.5)], [2.0, pytest.approx(3.0)]]
    assert series["characters per text (PSI)"] == [[1.0, pytest.approx(2.0)], [2.0, pytest.approx(0.4)]]
    assert "words per text (PSI)" not in series
