"""Runs started from the dashboard: ``tunesmith run`` in a child process, its output in a log, stoppable.

A run is the same command a user types, so what the dashboard starts is reproducible from the shell
(the page shows the command). Each job is recorded in ``<runs>/.ui-jobs/<id>.json`` with its process id,
so a dashboard restarted while a run trains still shows it and can stop it. One job trains at a time by
default: two trainings on one machine's cores make both slower than one after the other.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from tunesmith.config.load import DATA_PATH_FIELDS, load_config, preset_path
from tunesmith.errors import ConfigError, RunDirError
from tunesmith.rundir import has_outputs

Mode = Literal["new", "resume", "overwrite"]
STOP_GRACE_S = 20.0  # after SIGINT (Ctrl-C: checkpoints kept, "interrupted" message), SIGKILL


@dataclass
class Job:
    id: str
    run: str
    command: list[str]
    log: str
    pid: int
    started: float
    ended: float | None = None
    returncode: int | None = None
    stop_requested: bool = False
    process: Any = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        if self.process is not None:
            return bool(self.process.poll() is None)
        if self.returncode is not None:
            return False
        return _pid_runs_tunesmith(self.pid)

    @property
    def state(self) -> str:
        if self.alive():
            return "stopping" if self.stop_requested else "running"
        if self.stop_requested:
            return "stopped"
        if self.returncode is None:
            return "ended"  # started by an earlier dashboard; its exit status is unknown
        return "finished" if self.returncode == 0 else "failed"

    def record(self) -> dict[str, Any]:
        """The job as saved (everything but the process handle)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "process"}

    def public(self) -> dict[str, Any]:
        return {**self.record(), "state": self.state}


def _pid_runs_tunesmith(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"tunesmith" in cmdline


class Jobs:
    """Start, list and stop runs for one runs folder."""

    def __init__(self, runs_root: Path, workdir: Path, max_running: int = 1, python: str = sys.executable) -> None:
        self.runs_root = runs_root.resolve()
        self.workdir = workdir.resolve()
        self.max_running = max_running
        self.python = python
        self.folder = self.runs_root / ".ui-jobs"
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._load()

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            try:
                job = Job(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue
            self._jobs[job.id] = job

    def _save(self, job: Job) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{job.id}.json"
        tmp.write_text(json.dumps(job.record()), encoding="utf-8")
        os.replace(tmp, self.folder / f"{job.id}.json")

    def all(self) -> list[Job]:
        with self._lock:
            for job in self._jobs.values():
                self._reap(job)
            return sorted(self._jobs.values(), key=lambda j: -j.started)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._reap(job)
            return job

    def for_run(self, run: str) -> Job | None:
        return next((j for j in self.all() if j.run == run), None)

    def _reap(self, job: Job) -> None:
        if job.process is not None and job.ended is None and (code := job.process.poll()) is not None:
            job.returncode, job.ended = code, time.time()
            self._save(job)

    def command(
        self, config: str | None, preset: str | None, overrides: list[str], mode: Mode
    ) -> tuple[list[str], str]:
        """The ``tunesmith run`` command for a config file (relative to the dashboard's folder) or a preset, with
        ``--set`` overrides and the runs folder as ``output_dir``, after checking the config loads; and the
        run's name. Raises ConfigError (with the loader's message) or RunDirError (the run exists)."""
        if bool(config) == bool(preset):
            raise ConfigError("start a run from a config file or from a preset (one of the two).")
        try:
            path = preset_path(preset) if preset else (self.workdir / str(config)).resolve()
            found = path.is_file()
        except (ValueError, OSError) as exc:  # a NUL byte, a name too long for the file system
            raise ConfigError(f"config file {config!r}: not a usable path ({exc}).") from None
        if not found:
            raise ConfigError(f"config file {config} not found (paths are relative to {self.workdir}).")
        overrides = [o.strip() for o in overrides if o.strip()]
        for text in overrides:
            if "=" not in text:
                raise ConfigError(f"override '{text}': write KEY=VALUE, e.g. train.lr=2e-4.")
        sets = [*(self._absolute(o) for o in overrides), f"output_dir={self.runs_root}"]
        loaded = load_config(path, sets)
        for key in DATA_PATH_FIELDS:
            value = getattr(loaded.data, key, None)
            if isinstance(value, str) and Path(value).is_absolute() and not Path(value).exists():
                raise ConfigError(
                    f"data.{key}: {value} does not exist; set data.{key}=PATH (relative to {self.workdir})."
                )
        run_dir = self.runs_root / loaded.name
        if mode == "new" and has_outputs(run_dir):
            raise RunDirError(
                f"run '{loaded.name}' already exists in {self.runs_root}: choose resume or overwrite, or set "
                "name=... in the overrides."
            )
        if mode == "resume" and not has_outputs(run_dir):
            raise RunDirError(f"run '{loaded.name}' has nothing to resume yet; start it as a new run.")
        flags = {"new": [], "resume": ["--resume"], "overwrite": ["--overwrite"]}[mode]
        argv = [self.python, "-m", "tunesmith.cli.main", "run", str(path)]
        for text in sets:
            argv += ["--set", text]
        return [*argv, *flags], loaded.name

    def _absolute(self, override: str) -> str:
        """``data.train=examples/x.tsv`` typed on the page means relative to the dashboard's folder, not to the
        config file (where the loader resolves relative paths): made absolute when that file exists."""
        key, _, value = override.partition("=")
        if key.strip().startswith("data.") and value and not Path(value).is_absolute():
            candidate = self.workdir / value.strip()
            if candidate.exists():
                return f"{key}={candidate}"
        return override

    def start(self, config: str | None, preset: str | None, overrides: list[str], mode: Mode = "new") -> Job:
        """Start ``tunesmith run`` in the background (its own process group, output to a log file)."""
        argv, run = self.command(config, preset, overrides, mode)
        with self._lock:
            for job in self._jobs.values():
                self._reap(job)
            running = [j for j in self._jobs.values() if j.alive()]
            if any(j.run == run for j in running):
                raise RunDirError(f"run '{run}' is already training here; stop it first.")
            if len(running) >= self.max_running:
                raise RunDirError(
                    f"{len(running)} run(s) already training ({', '.join(j.run for j in running)}); one at a "
                    "time uses this machine's cores best. Stop it or wait."
                )
            job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            self.folder.mkdir(parents=True, exist_ok=True)
            log = self.folder / f"{job_id}.log"
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
            with log.open("wb") as out:
                process = subprocess.Popen(  # argv built above, no shell
                    argv,
                    cwd=self.workdir,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=env,
                    preexec_fn=_interruptible,
                )
            job = Job(job_id, run, argv, str(log), process.pid, time.time(), process=process)
            self._jobs[job_id] = job
            self._save(job)
            return job

    def stop(self, job_id: str) -> Job:
        """Interrupt the job's process group as Ctrl-C would (checkpoints kept, resumable), then kill it if it
        is still alive after :data:`STOP_GRACE_S`."""
        job = self.get(job_id)
        if job is None:
            raise KeyError(job_id)
        if not job.alive():
            return job
        job.stop_requested = True
        self._save(job)
        _signal(job.pid, signal.SIGINT)
        threading.Thread(target=self._kill_later, args=(job,), daemon=True).start()
        return job

    def _kill_later(self, job: Job) -> None:
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            if not job.alive():
                break
            time.sleep(0.2)
        else:
            _signal(job.pid, signal.SIGKILL)
        with self._lock:
            if job.process is not None:
                job.process.wait()
            self._reap(job)
            if job.ended is None:
                job.ended = time.time()
                self._save(job)

    def log_tail(self, job: Job, limit: int = 16_000) -> str:
        """The end of the job's output (progress bars' carriage returns resolved to their last state)."""
        try:
            with open(job.log, "rb") as fh:
                fh.seek(max(0, os.path.getsize(job.log) - limit))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


def _interruptible() -> None:
    """In the child, before it runs: Ctrl-C (SIGINT) back to its default. A dashboard started in the background by
    a shell ignores SIGINT, children inherit that, and Python then never turns SIGINT into KeyboardInterrupt: Stop
    would fall through to SIGKILL without the run's own "interrupted" handling."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), sig)
