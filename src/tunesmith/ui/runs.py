"""What the dashboard knows about run directories, read from the files each stage writes (no database).

A run directory is the unit of lineage: its ``config.yaml``, data manifest and card, ``metrics.jsonl``,
``train.json``, ``eval/report.json``, exports and ``monitor.db`` say everything about it. This module turns
them into rows for the runs table, one run's page data, and new metric lines since the last poll.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import yaml

from tunesmith.config.load import safe_yaml
from tunesmith.errors import ConfigError
from tunesmith.eval.compare import train_file_name
from tunesmith.eval.htmlkit import GENERATION, HEADLINE, METRICS, with_generation

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LIVE_SECONDS = 120.0  # metrics.jsonl written this recently, no train.json yet: the run is training now
HIDDEN = {"checkpoints"}  # artifact folders listed by their size only: many large files, no use in a browser


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _config(run_dir: Path) -> dict[str, Any]:
    try:
        value = safe_yaml((run_dir / "config.yaml").read_text(encoding="utf-8"), str(run_dir / "config.yaml"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ConfigError):  # a copied-in run dir may hold anything
        return {}
    return value if isinstance(value, dict) else {}


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and NAME.match(path.name) is not None and (path / "config.yaml").is_file()


def is_study_dir(path: Path) -> bool:
    """A ``tunesmith tune`` study folder: not a run itself, holding trial runs (each with an ``hpo.json``)."""
    if not path.is_dir() or NAME.match(path.name) is None or (path / "config.yaml").is_file():
        return False
    return (path / "study.db").is_file() or any((child / "hpo.json").is_file() for child in path.iterdir())


def run_dirs(root: Path) -> list[Path]:
    """The run directories directly under ``root`` and, one level down, the trials of each study folder."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        if is_run_dir(path):
            found.append(path)
        elif is_study_dir(path):
            found.extend(trial for trial in sorted(path.iterdir()) if is_run_dir(trial))
    return found


def run_path(root: Path, name: str) -> Path | None:
    """The run directory called ``name``: ``root/name``, else a study's trial ``root/<study>/name``; None
    for anything else (``..``, slashes, a folder without a config), so no request reaches outside ``root``.
    Runs are named by their folder alone; a name under ``root`` wins over a trial of the same name."""
    if not NAME.match(name) or name in (".", ".."):
        return None
    path = root / name
    if is_run_dir(path):
        return path
    return next((p for p in run_dirs(root) if p.name == name), None)


def status(run_dir: Path, now: float | None = None) -> str:
    """Where the run got to: ``evaluated``, ``trained``, ``training`` (metrics written in the last
    :data:`LIVE_SECONDS`), ``interrupted`` (checkpoints or metrics but no summary), ``prepared`` or ``new``."""
    now = time.time() if now is None else now
    if (run_dir / "eval" / "report.json").is_file():
        return "evaluated"
    if (run_dir / "train.json").is_file():
        return "trained"
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file() and now - metrics.stat().st_mtime < LIVE_SECONDS:
        return "training"
    if metrics.is_file() or (run_dir / "checkpoints").is_dir():
        return "interrupted"
    if (run_dir / "data" / "manifest.json").is_file():
        return "prepared"
    return "new"


def headline(report: dict[str, Any] | None) -> dict[str, Any]:
    """The tuned model's first headline metric, the best baseline's value of it, and the difference."""
    if not report:
        return {}
    models = with_generation(report)
    tuned = next((m for n, m in models.items() if n.startswith("tuned")), None)
    if tuned is None:
        return {}
    key = next((k for k in HEADLINE if isinstance(tuned.get(k), int | float)), None)
    if key is None:
        return {}
    higher = METRICS[key][1]
    baselines = [
        m[key] for n, m in models.items() if not n.startswith("tuned") and isinstance(m.get(key), int | float)
    ]
    best = (max(baselines) if higher else min(baselines)) if baselines else None
    return {
        "metric": key,
        "title": METRICS[key][0],
        "tuned": tuned[key],
        "baseline": best,
        "delta": tuned[key] - best if best is not None else None,
        "better": None if best is None else (tuned[key] > best if higher else tuned[key] < best),
    }


def top_languages(manifest: dict[str, Any], most: int = 3, share: float = 0.05) -> list[str]:
    """The training split's main languages (each at least ``share`` of its rows), most common first."""
    counts = (manifest.get("languages") or {}).get("train")
    if not isinstance(counts, dict) or not counts:
        return []
    total = sum(v for v in counts.values() if isinstance(v, int))
    ranked = sorted(((v, k) for k, v in counts.items() if isinstance(v, int)), reverse=True)
    return [k for v, k in ranked if total and v / total >= share][:most]


def _files(run_dir: Path) -> dict[str, Any]:
    """The run's config, data manifest, training summary and evaluation report, each read once."""
    return {
        "config": _config(run_dir),
        "manifest": _json(run_dir / "data" / "manifest.json"),
        "training": _json(run_dir / "train.json"),
        "report": _json(run_dir / "eval" / "report.json"),
    }


def summary_row(run_dir: Path, now: float | None = None, files: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of the runs table (from ``files`` when the caller has read them already)."""
    files = files or _files(run_dir)
    config, report = files["config"], files["report"]
    manifest, training = files["manifest"] or {}, files["training"] or {}
    method, train, model = (_section(config, key) for key in ("method", "train", "model"))
    rows = (manifest.get("splits") or {}).get("train", {}).get("rows")
    return {
        "name": run_dir.name,
        "base": model.get("base") or training.get("base"),
        "method": method.get("name", "lora"),
        "objective": train.get("objective", "sft"),
        "data": train_file_name(manifest),
        "train_rows": rows,
        "languages": top_languages(manifest),
        "status": status(run_dir, now),
        "steps": training.get("steps"),
        "tokens_per_s": training.get("tokens_per_s"),
        "best_val_loss": training.get("best_val_loss"),
        "headline": headline(report),
        "modified": max((p.stat().st_mtime for p in run_dir.iterdir()), default=run_dir.stat().st_mtime),
        "served": (run_dir / "monitor.db").is_file(),
    }


def with_jobs(rows: list[dict[str, Any]], jobs: list[Any]) -> list[dict[str, Any]]:
    """Each row with its run's newest job (``jobs`` newest first, as :meth:`Jobs.all` lists them)."""
    latest = {j.run: j.public() for j in reversed(jobs)}
    return [{**r, "job": latest.get(r["name"])} for r in rows]


def list_runs(root: Path, now: float | None = None) -> list[dict[str, Any]]:
    """Every run directory under ``root`` (a study's trials included, with the study's name), newest first."""
    rows = []
    for path in run_dirs(root):
        row = summary_row(path, now)
        row["study"] = path.parent.name if path.parent != root else None
        rows.append(row)
    return sorted(rows, key=lambda r: -r["modified"])


def metric_lines(run_dir: Path, offset: int = 0, limit: int = 5000) -> tuple[list[dict[str, Any]], int]:
    """Lines of ``metrics.jsonl`` from byte ``offset`` on (complete lines only), and the offset to ask from
    next: a page polls this while the run trains and draws only what is new. An offset past the end (the
    file was rewritten by ``--overwrite``) starts again from 0."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return [], 0
    size = path.stat().st_size
    if offset > size:
        offset = 0
    out: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        fh.seek(offset)
        for raw in fh:
            if not raw.endswith(b"\n") or len(out) >= limit:
                break
            offset += len(raw)
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out, offset


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def artifacts(run_dir: Path) -> list[dict[str, Any]]:
    """The run's files for download (relative path, bytes), folders such as ``checkpoints`` as one entry."""
    out = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if rel.parts[0] in HIDDEN:
            if len(rel.parts) == 1:
                out.append({"path": str(rel), "bytes": _size(path), "folder": True})
            continue
        if path.is_file():
            out.append({"path": rel.as_posix(), "bytes": path.stat().st_size, "folder": False})
    return out


def artifact_path(run_dir: Path, rel: str) -> Path | None:
    """``run_dir/rel`` when it is a file inside the run directory (symlinks resolved), else None."""
    if not rel or rel.startswith("/") or "\\" in rel:
        return None
    root = run_dir.resolve()
    path = (run_dir / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def run_page(run_dir: Path) -> dict[str, Any]:
    """Everything the run page shows that is not fetched live."""
    files = _files(run_dir)
    report = files["report"]
    models = with_generation(report) if report else {}
    return {
        **summary_row(run_dir, files=files),
        "eval_keys": [k for k in (*HEADLINE, *GENERATION) if any(m.get(k) is not None for m in models.values())],
        "config_text": (run_dir / "config.yaml").read_text(encoding="utf-8"),
        "env": _json(run_dir / "env.json"),
        "training": files["training"],
        "manifest": files["manifest"],
        "has_card": (run_dir / "data" / "card.html").is_file(),
        "has_report": (run_dir / "eval" / "report.html").is_file(),
        "has_monitor_report": (run_dir / "monitor" / "report.html").is_file(),
        "report": report,
        "models": models,
        "artifacts": artifacts(run_dir),
        "exports": sorted(p.name for p in (run_dir / "export").iterdir()) if (run_dir / "export").is_dir() else [],
    }


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def config_diff(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """Config fields, flattened (``train.lr``), with each run's value; ``differs`` where runs disagree.
    Fields that differ come first, so two runs' real difference is the top of the table."""
    flats = [_flat(_config(d)) for d in run_dirs]
    keys = sorted({k for f in flats for k in f})
    rows: list[dict[str, Any]] = []
    for key in keys:
        values = [json.dumps(f.get(key), ensure_ascii=False) if key in f else "—" for f in flats]
        rows.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    return sorted(rows, key=lambda r: not r["differs"])
