"""The dashboard's JSON API: runs, live metrics, jobs (start / stop), the playground's model, monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tunesmith.errors import TunesmithError
from tunesmith.serve.errors import documented, error_body
from tunesmith.ui import runs
from tunesmith.ui.app import Dashboard

router = APIRouter(prefix="/ui/api")


def ui(request: Request) -> Dashboard:
    return request.app.state.ui


def problem(status: int, message: str, field: str | None = None) -> JSONResponse:
    """An error in the serving API's shape (``{"error": {"message", "type", "param", "code"}}``)."""
    kind = {404: "not_found_error", 409: "conflict_error", 503: "server_error"}.get(status, "invalid_request_error")
    return JSONResponse(error_body(message, kind, field), status_code=status)


def _run(request: Request, name: str) -> Path | JSONResponse:
    path = runs.run_path(ui(request).runs_root, name)
    return path if path is not None else problem(404, f"no run named '{name}' in {ui(request).runs_root}")


@router.get("/runs")
def list_runs(request: Request) -> Any:
    board = ui(request)
    rows = runs.with_jobs(runs.list_runs(board.runs_root), board.jobs.all())
    return {"runs_root": str(board.runs_root), "runs": rows}


@router.get("/runs/{name}/metrics", responses=documented(404))
def run_metrics(request: Request, name: str, offset: int = 0) -> Any:
    """New ``metrics.jsonl`` lines since ``offset``, the run's status and its job (with the log's end)."""
    path = _run(request, name)
    if isinstance(path, JSONResponse):
        return path
    lines, offset = runs.metric_lines(path, max(0, offset))
    board = ui(request)
    job = board.jobs.for_run(name)
    return {
        "lines": lines,
        "offset": offset,
        "status": runs.status(path),
        "job": {**job.public(), "log_tail": board.jobs.log_tail(job)} if job else None,
    }


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: str | None = Field(default=None, max_length=1000)
    preset: str | None = Field(default=None, max_length=100)
    overrides: list[str] = Field(default_factory=list, max_length=100)
    mode: Literal["new", "resume", "overwrite"] = "new"


@router.post("/jobs", status_code=201, responses=documented())
def start_job(body: StartRun, request: Request) -> Any:
    try:
        job = ui(request).jobs.start(body.config or None, body.preset or None, body.overrides, body.mode)
    except TunesmithError as exc:
        return problem(400, str(exc), "config")
    return job.public()


@router.get("/jobs")
def list_jobs(request: Request) -> Any:
    return {"jobs": [j.public() for j in ui(request).jobs.all()]}


@router.get("/jobs/{job_id}", responses=documented(404))
def get_job(request: Request, job_id: str) -> Any:
    board = ui(request)
    job = board.jobs.get(job_id)
    if job is None:
        return problem(404, f"no job '{job_id}'")
    return {**job.public(), "log_tail": board.jobs.log_tail(job)}


@router.post("/jobs/{job_id}/stop", responses=documented(404))
def stop_job(request: Request, job_id: str) -> Any:
    try:
        return ui(request).jobs.stop(job_id).public()
    except KeyError:
        return problem(404, f"no job '{job_id}'")


@router.get("/playground")
def playground_state(request: Request) -> Any:
    return ui(request).playground.describe()


class ServeRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: str = Field(max_length=128)


@router.post("/playground", status_code=202, responses=documented(404, 409))
def playground_serve(body: ServeRun, request: Request) -> Any:
    """Load a run into the playground (in the background; poll ``GET /ui/api/playground``)."""
    path = _run(request, body.run)
    if isinstance(path, JSONResponse):
        return path
    if runs.status(path) not in ("trained", "evaluated"):
        return problem(409, f"run '{body.run}' has no trained model yet ({runs.status(path)})", "run")
    try:
        ui(request).playground.load(path)
    except RuntimeError as exc:
        return problem(409, str(exc), "run")
    return ui(request).playground.describe()


def drift_series(checks: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    """Each drift statistic over the checks, as a multiple of its threshold (over 1: that check alerted on it)."""
    from tunesmith.monitor.report import threshold_items

    series: dict[str, list[list[float]]] = {}
    for check in checks:
        for label, value, threshold in threshold_items(check["report"]):
            series.setdefault(label, []).append([check["time"], value / threshold])
    return series


def monitor_target(board: Dashboard, name: str | None) -> str | None:
    """The store behind the monitoring page: a run's ``monitor.db``, else the ``--store`` given at start."""
    if name:
        path = runs.run_path(board.runs_root, name)
        return str(path / "monitor.db") if path is not None and (path / "monitor.db").is_file() else None
    return board.store


@router.get("/monitor", responses=documented(404, 503))
def monitor_summary(request: Request, run: str | None = None) -> Any:
    """The monitor report's summary (traffic, latency, languages, drift, feedback per model) as JSON."""
    from tunesmith.config.schema import MonitorConfig
    from tunesmith.monitor.summary import summarise

    board = ui(request)
    target = monitor_target(board, run)
    if target is None:
        what = f"run '{run}' has no monitor.db yet" if run else "no monitor store was given"
        return problem(404, f"{what}: serve it (`tunesmith serve RUN_DIR`) or chat in the playground first.")
    settings = MonitorConfig()
    if run and (path := runs.run_path(board.runs_root, run)) is not None:
        try:
            from tunesmith.config.load import load_config

            settings = load_config(path / "config.yaml").monitor
        except TunesmithError:
            pass
    try:
        store = board.open_store(target)
        checks = store.drift_checks()
        summary = summarise(
            store.requests(), store.feedback(), checks, settings.negative_feedback_rate, settings.min_thumbs
        )
        summary["drift_series"] = drift_series(checks)
    except Exception as exc:  # a database that is down or unreadable: the page says so and keeps polling
        return problem(503, f"monitor store {target}: {exc}")
    return {"store": target.split("@")[-1], **summary}
