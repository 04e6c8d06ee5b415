"""What changes when several processes train one model (DDP under ``accelerate launch`` or ``torchrun``).

We add no distribution code of our own: ``accelerate`` reads the launcher's environment and wraps the
model. What the rest of tunesmith must respect is small and lives here:

- every process plans the same micro-batches (the plan is seeded), and process ``r`` of ``w`` trains on
  micro-batches ``r, r + w, ...`` of each optimizer step's share (:func:`my_share`), so ``w`` processes
  with ``grad_accum = a`` take exactly the optimizer steps one process takes with ``grad_accum = a * w``;
- only the main process writes files (run dir, checkpoints, metrics, summaries); the others wait at a
  barrier where they would need what it wrote (:func:`main_first`).

With a single process every function here is a no-op, so the single-machine path has no extra cost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def _state() -> Any:
    from accelerate import PartialState

    return PartialState(cpu=not _cuda())


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def launched() -> bool:
    """True when a launcher (``accelerate launch``, ``torchrun``) started several processes."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world_size() -> int:
    return _state().num_processes if launched() else 1


def is_main() -> bool:
    return _state().is_main_process if launched() else True


def barrier() -> None:
    if launched():
        _state().wait_for_everyone()


@contextlib.contextmanager
def main_first() -> Iterator[bool]:
    """Run the block on the main process first (it may write), then on the others; yields ``is_main()``.

    The other processes enter the block only after the main process left it, so they can read what it
    wrote instead of racing it for the same files.
    """
    main = is_main()
    if not main:
        barrier()
    yield main
    if main:
        barrier()


def my_share(group: Sequence[T], rank: int, world: int) -> tuple[list[T], bool]:
    """This process's micro-batches of one optimizer step, and whether they only keep the step in lock-step.

    A step's last share may hold fewer micro-batches than processes; a process left without one still has
    to run a forward and backward (DDP's gradient all-reduce waits for every process), so it gets the
    first micro-batch with ``padding=True``, meaning: scale its loss to zero.
    """
    share = list(group[rank::world])
    return (share, False) if share else ([group[0]], True)


def reduce_sum(value: float, accelerator: Any) -> float:
    """The sum of ``value`` over all processes (the value itself with one process)."""
    if accelerator.num_processes == 1:
        return value
    import torch

    tensor = torch.tensor([value], dtype=torch.float64, device=accelerator.device)
    return float(accelerator.reduce(tensor, reduction="sum").item())
