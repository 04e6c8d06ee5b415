"""The monitor store: the request log, feedback and drift checks in a real database.

A SQLite file by default (nothing to install; ``runs/<name>/monitor.db`` beside the run it serves),
PostgreSQL (or anything SQLAlchemy speaks) by URL for real deployments. Opening a store brings its schema
up to date with Alembic, so a database written by an older tunesmith is migrated, never recreated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select

from tunesmith.errors import ConfigError
from tunesmith.monitor.schema import drift_checks, feedback, requests

MIGRATIONS = Path(__file__).parent / "migrations"
# The monitor's own Alembic version table: the default name (alembic_version) is shared by every Alembic user of a
# database, so a store in the same database as an Optuna study (which keeps its schema version there too) would
# read the other's revision and refuse to start.
VERSION_TABLE = "tunesmith_monitor_version"
LEGACY_VERSION_TABLE = "alembic_version"  # stores made before 2026-11-27


def store_url(target: str | Path) -> str:
    """A SQLAlchemy URL for ``target``: a URL as given, or a file path (``.db``) as SQLite."""
    text = str(target)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "monitor.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def migrate(engine: Engine) -> str:
    """Upgrade the database to the newest schema revision; returns that revision."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        _adopt_legacy_version(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return str(
            MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
        )


def _adopt_legacy_version(connection: Any) -> None:
    """A store written before the monitor had its own version table recorded its revision in ``alembic_version``:
    move it over (and drop that table when the monitor's revision was all it held)."""
    from sqlalchemy import inspect, text

    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables or "requests" not in tables:
        return
    from alembic.script import ScriptDirectory

    ours = {r.revision for r in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    rows = [r[0] for r in connection.execute(text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}"))]
    mine = [r for r in rows if r in ours]
    if not mine:
        return
    connection.execute(text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
    connection.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": mine[0]})
    if len(mine) == len(rows):
        connection.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class Store:
    """Reads and writes of the monitor database; thread-safe (one SQLAlchemy engine, a connection per call)."""

    def __init__(self, target: str | Path) -> None:
        self.url = store_url(target)
        try:
            self.engine = create_engine(self.url, pool_pre_ping=True)
            self.revision = migrate(self.engine)
        except Exception as exc:  # driver missing, server down, bad URL: say which store and why
            shown = self.url.split("@")[-1] if "@" in self.url else self.url  # never print a password
            raise ConfigError(f"monitor store {shown}: cannot open it ({type(exc).__name__}: {exc})") from None

    def add(
        self, request_rows: Sequence[Mapping[str, Any]] = (), feedback_rows: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Insert request and feedback rows in one transaction (all or none: a retry never duplicates)."""
        with self.engine.begin() as connection:
            if request_rows:
                connection.execute(insert(requests), [dict(r) for r in request_rows])
            if feedback_rows:
                connection.execute(insert(feedback), [dict(r) for r in feedback_rows])

    def add_drift(self, report: Mapping[str, Any], window: tuple[float | None, float | None]) -> None:
        row = {
            "time": time.time(),
            "window_start": window[0],
            "window_end": window[1],
            "rows": int(report.get("rows", {}).get("window", 0)),
            "drifted": bool(report.get("drifted")),
            "alerts": _json(report.get("alerts", [])),
            "report": _json(report),
        }
        with self.engine.begin() as connection:
            connection.execute(insert(drift_checks), [row])

    def requests(
        self,
        since: float | None = None,
        until: float | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Logged requests in time order (the newest ``limit`` when given), JSON columns decoded."""
        query = select(requests)
        if since is not None:
            query = query.where(requests.c.time >= since)
        if until is not None:
            query = query.where(requests.c.time < until)
        if model is not None:
            query = query.where(requests.c.model == model)
        query = query.order_by(requests.c.time.desc() if limit else requests.c.time)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query)]
        for row in rows:
            for key in ("prompt", "response"):
                row[key] = json.loads(row[key]) if row[key] is not None else None
        return sorted(rows, key=lambda r: r["time"]) if limit else rows

    def request_choices(self, ids: Iterable[str]) -> dict[str, int]:
        """How many answers each of ``ids`` that is in the log had."""
        wanted = list(set(ids))
        if not wanted:
            return {}
        query = select(requests.c.request_id, requests.c.choices).where(requests.c.request_id.in_(wanted))
        with self.engine.connect() as connection:
            return {r[0]: int(r[1]) for r in connection.execute(query)}

    def feedback(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(select(feedback).order_by(feedback.c.time))]
        for row in rows:
            row["value"] = json.loads(row["value"])
        return rows

    def drift_checks(self, limit: int = 100) -> list[dict[str, Any]]:
        query = select(drift_checks).order_by(drift_checks.c.time.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(query)]
        for row in rows:
            row["alerts"], row["report"] = json.loads(row["alerts"]), json.loads(row["report"])
        return rows[::-1]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (requests, feedback, drift_checks)
            }

    def close(self) -> None:
        self.engine.dispose()
