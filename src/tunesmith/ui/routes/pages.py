"""The dashboard's pages: runs, one run, compare, start a run, playground, monitoring; and run files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from tunesmith.config.load import preset_names
from tunesmith.ui import runs
from tunesmith.ui.routes.api import ui

router = APIRouter(include_in_schema=False)
CONFIG_DEPTH = 3  # folders below the working folder searched for config files to offer on the start page
SKIP_DIRS = {".git", ".venv", "node_modules", "runs", "__pycache__", ".cache"}


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    board = ui(request)
    return board.templates.TemplateResponse(
        request, name, {"runs_root": board.runs_root, "page": name.split(".")[0], **context}, status_code=status
    )


def not_found(request: Request, message: str) -> HTMLResponse:
    return render(request, "error.html", 404, message=message)


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request) -> Any:
    board = ui(request)
    return render(request, "runs.html", runs=runs.with_jobs(runs.list_runs(board.runs_root), board.jobs.all()))


@router.get("/runs/{name}", response_class=HTMLResponse)
def run_page(request: Request, name: str) -> Any:
    board = ui(request)
    path = runs.run_path(board.runs_root, name)
    if path is None:
        return not_found(request, f"No run named '{name}' in {board.runs_root}.")
    job = board.jobs.for_run(name)
    return render(request, "run.html", run=runs.run_page(path), job=job.public() if job else None)


@router.get("/runs/{name}/files/{rel:path}")
def run_file(request: Request, name: str, rel: str) -> Any:
    """A file of the run, for download or (HTML reports and cards) to show in a frame. Generated pages are
    sandboxed: no script in them runs with the dashboard's rights."""
    path = runs.run_path(ui(request).runs_root, name)
    target = runs.artifact_path(path, rel) if path is not None else None
    if target is None:
        return Response(f"no file '{rel}' in run '{name}'", status_code=404, media_type="text/plain")
    inline = target.suffix in (".html", ".json", ".jsonl", ".md", ".yaml", ".txt", ".log", ".svg", ".png")
    headers = {"X-Content-Type-Options": "nosniff"}
    if target.suffix in (".html", ".svg"):  # pages the stages wrote, holding data's text: no scripts run in them
        headers["Content-Security-Policy"] = "sandbox"
    media = {
        ".jsonl": "text/plain; charset=utf-8",
        ".md": "text/plain; charset=utf-8",
        ".yaml": "text/plain; charset=utf-8",
    }
    return FileResponse(
        target,
        media_type=media.get(target.suffix),
        headers=headers,
        content_disposition_type="inline" if inline else "attachment",
        filename=None if inline else target.name,
    )


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, run: list[str] = Query(default=[])) -> Any:
    from tunesmith.eval.compare import compare_runs

    board = ui(request)
    names = list(dict.fromkeys(run))
    paths = [runs.run_path(board.runs_root, n) for n in names]
    missing = [n for n, p in zip(names, paths, strict=True) if p is None]
    if missing:
        return not_found(request, f"No run named {', '.join(repr(m) for m in missing)} in {board.runs_root}.")
    found: list[Path] = [p for p in paths if p is not None]
    if len(found) < 2:
        return render(
            request, "error.html", 400, message="Pick two or more runs to compare (tick them in the runs table)."
        )
    evaluated = [p for p in found if (p / "eval" / "report.json").is_file()]
    metrics = compare_runs(evaluated) if len(evaluated) >= 1 else None
    return render(
        request,
        "compare.html",
        names=[p.name for p in found],
        rows=[runs.summary_row(p) for p in found],
        diff=runs.config_diff(found),
        metrics=metrics,
        unevaluated=[p.name for p in found if p not in evaluated],
    )


def config_files(root: Path) -> list[str]:
    """YAML files under ``root`` (a few folders deep) that look like run configs, as paths relative to it."""
    found: list[str] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            if (
                entry.is_dir()
                and depth < CONFIG_DEPTH
                and entry.name not in SKIP_DIRS
                and not entry.name.startswith(".")
            ):
                walk(entry, depth + 1)
            elif entry.suffix in (".yaml", ".yml") and entry.is_file() and len(found) < 200:
                try:
                    head = entry.read_text(encoding="utf-8", errors="replace")[:4000]
                except OSError:
                    continue
                if "\nname:" in f"\n{head}" and "\ndata:" in f"\n{head}":
                    found.append(entry.relative_to(root).as_posix())

    walk(root, 0)
    return found


@router.get("/start", response_class=HTMLResponse)
def start_page(request: Request) -> Any:
    board = ui(request)
    return render(
        request,
        "start.html",
        configs=config_files(board.workdir),
        presets=preset_names(),
        workdir=board.workdir,
        jobs=[j.public() for j in board.jobs.all()],
    )


@router.get("/playground", response_class=HTMLResponse)
def playground_page(request: Request) -> Any:
    board = ui(request)
    servable = [r for r in runs.list_runs(board.runs_root) if r["status"] in ("trained", "evaluated")]
    return render(request, "playground.html", servable=servable, slot=board.playground.describe())


@router.get("/monitor", response_class=HTMLResponse)
def monitor_page(request: Request, run: str | None = None) -> Any:
    board = ui(request)
    watched = [r for r in runs.list_runs(board.runs_root) if r["served"]]
    if run is None and not board.store and watched:
        return RedirectResponse(f"/monitor?run={watched[0]['name']}", status_code=303)
    if run is not None and runs.run_path(board.runs_root, run) is None:
        return not_found(request, f"No run named '{run}' in {board.runs_root}.")
    return render(request, "monitor.html", watched=watched, chosen=run, store=board.store)
