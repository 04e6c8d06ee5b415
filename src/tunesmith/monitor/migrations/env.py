"""Alembic environment: migrations run on the connection that :func:`tunesmith.monitor.store.migrate` passes."""

from __future__ import annotations

from alembic import context

from tunesmith.monitor.schema import metadata
from tunesmith.monitor.store import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
