"""The monitor database's tables (SQLAlchemy Core). Alembic migrations create and change them; this module is
what the code reads and writes, and a test checks that the migrated database matches it."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("time", Float, nullable=False, index=True),  # unix seconds when the answer finished
    Column("endpoint", String(32), nullable=False),
    Column("model", String(128), nullable=False, index=True),
    Column("prompt", Text),  # JSON (chat messages or prompt text); NULL when only hashes are stored
    Column("response", Text),  # JSON list, one answer per choice; NULL when only hashes are stored
    Column("prompt_sha256", String(64), nullable=False),
    Column("response_sha256", String(64), nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("choices", Integer, nullable=False, default=1),
    Column("latency_s", Float, nullable=False),
    Column("finish_reason", String(16)),
    Column("stream", Boolean, nullable=False, default=False),
    Column("language", String(16)),  # of the last user message, by the data stage's identifier
    Column("script", String(16)),
    Column("cmi", Float),  # code-mixing index of the last user message
    Column("redactions", Integer, nullable=False, default=0),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("time", Float, nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # thumbs | rating | choice | ranking | correction
    Column("value", Text, nullable=False),  # JSON
    Column("comment", Text),
)

drift_checks = Table(
    "drift_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False, index=True),
    Column("window_start", Float),
    Column("window_end", Float),
    Column("rows", Integer, nullable=False),
    Column("drifted", Boolean, nullable=False),
    Column("alerts", Text, nullable=False),  # JSON list of sentences
    Column("report", Text, nullable=False),  # JSON: every statistic
)
