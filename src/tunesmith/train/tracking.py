"""Where training metrics go: ``metrics.jsonl`` always; TensorBoard when installed; MLflow when configured.

``metrics.jsonl`` is the record of truth (one JSON object per line, flushed, so a kill loses at most a
line). TensorBoard event files go to ``<run>/tensorboard/`` when the ``tensorboard`` package is
importable; MLflow receives the same numbers when ``MLFLOW_TRACKING_URI`` is set and ``mlflow`` is
installed. Neither is required, and a failing sink never stops training.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _tensorboard(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard package is optional
        return None
    return SummaryWriter(log_dir=str(directory))


def _mlflow(run_name: str) -> Any:
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    try:
        import mlflow
    except ImportError:
        log.warning("MLFLOW_TRACKING_URI is set but mlflow is not installed; metrics stay in metrics.jsonl")
        return None
    mlflow.start_run(run_name=run_name)
    return mlflow


class MetricsLog:
    """Fan-out of numeric metrics keyed by optimizer step."""

    def __init__(self, path: Path, tensorboard_dir: Path | None = None, run_name: str = "tunesmith") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8")
        self._tb = _tensorboard(tensorboard_dir) if tensorboard_dir else None
        self._mlflow = _mlflow(run_name)

    def write(self, **values: Any) -> None:
        self._fh.write(json.dumps(values) + "\n")
        self._fh.flush()
        step = int(values.get("step", 0))
        numbers = {
            k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and k not in ("step", "epoch")
        }
        try:
            if self._tb is not None:
                for key, value in numbers.items():
                    self._tb.add_scalar(key, value, step)
            if self._mlflow is not None:
                self._mlflow.log_metrics(numbers, step=step)
        except Exception as exc:  # a tracker's hiccup must not end a training run
            log.warning("metrics sink failed (%s); metrics.jsonl is unaffected", exc)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()
        if self._mlflow is not None:
            self._mlflow.end_run()


class Tally:
    """Sums and counts of per-batch statistics (pairwise accuracy, reward margins) between two log lines.

    A loss module adds to it in ``forward``; the engine takes the means when it writes metrics, per scope
    (``train`` while training, ``val`` while validating). ``names`` fixes the statistics and their order,
    so every process reduces the same numbers in the same order under data parallelism.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.scope = "train"
        self._sums: dict[tuple[str, str], list[float]] = {}

    def add(self, name: str, total: float, count: int) -> None:
        if name not in self.names:
            raise KeyError(f"{name!r} is not one of this tally's statistics {self.names}")
        entry = self._sums.setdefault((self.scope, name), [0.0, 0.0])
        entry[0] += total
        entry[1] += count

    def take(self, scope: str = "train", accelerator: Any = None) -> dict[str, float]:
        """The means added in ``scope`` since the last take (summed over processes), and reset them."""
        from tunesmith.train.distributed import reduce_sum

        means = {}
        for name in self.names:
            total, count = self._sums.pop((scope, name), [0.0, 0.0])
            if accelerator is not None and accelerator.num_processes > 1:
                total, count = reduce_sum(total, accelerator), reduce_sum(count, accelerator)
            if count:
                means[name] = round(total / count, 6)
        return means
