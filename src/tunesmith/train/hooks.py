"""Observers of training that are not part of a run's config: the hyperparameter search's pruner.

The engine reports each validation here; an observer installed with :func:`on_validation` (for the
duration of one training, in this thread of execution) may answer "stop", and the engine then ends
training as early stopping would, recording why. With no observer, reporting is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

Observer = Callable[[int, dict[str, float]], bool]  # (step, {"val_loss": ..., ...}) -> stop?
_observer: ContextVar[Observer | None] = ContextVar("tunesmith_validation_observer", default=None)


@contextmanager
def on_validation(observer: Observer) -> Iterator[None]:
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


def report_validation(step: int, values: dict[str, Any]) -> bool:
    """Tell the observer (if any) about a validation; True when it asks training to stop."""
    observer = _observer.get()
    return bool(observer is not None and observer(step, values))
