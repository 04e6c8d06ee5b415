"""Alembic migrations of the monitor database (run by :func:`tunesmith.monitor.store.migrate`)."""
