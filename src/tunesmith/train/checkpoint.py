"""Checkpoints: trainable weights, optimizer, scheduler, RNG states and data position, written atomically.

Layout of ``checkpoints/step-<k>/``: ``trainable.safetensors``, ``optimizer.pt``, ``scheduler.pt``,
``rng.pt``, ``state.json`` (progress and metrics) and ``manifest.json`` (sha256 of every file). A
checkpoint folder appears only complete: it is written under a temporary name and renamed.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tunesmith.rundir import atomic_directory, sha256_file, write_json

log = logging.getLogger(__name__)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and plain values only, so it loads with ``torch.load(weights_only=True)``."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    numpy_state = (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached))
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys  # checkpoints before 2026-11-27: an ndarray
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    root: Path, step: int, model: torch.nn.Module, optimizer: Any, scheduler: Any, state: dict[str, Any]
) -> Path:
    """Write ``root/step-<step>`` atomically and return its path."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    with atomic_directory(final) as tmp:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        write_json(tmp / "state.json", {**state, "step": step})
        files = sorted(p.name for p in tmp.iterdir())
        write_json(tmp / "manifest.json", {name: sha256_file(tmp / name) for name in files})
    return final


def verify(path: Path) -> bool:
    """Every file listed in the manifest exists with its recorded sha256."""
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return False
    expected = json.loads(manifest.read_text())
    return all((path / n).is_file() and sha256_file(path / n) == h for n, h in expected.items())


def latest_checkpoint(root: Path) -> Path | None:
    """The newest complete, verified checkpoint under ``root``."""
    if not root.is_dir():
        return None
    for path in sorted(root.glob("step-*"), reverse=True):
        if verify(path):
            return path
        log.warning("checkpoint %s fails its checksum check (truncated or corrupted): using an earlier one", path)
    return None


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and RNG; return the saved progress state."""
    weights = load_file(str(path / "trainable.safetensors"))
    missing = set(weights) - {n for n, _ in model.named_parameters()}
    if missing:
        raise RuntimeError(f"{path}: checkpoint has parameters the model lacks: {sorted(missing)[:3]}")
    model.load_state_dict(weights, strict=False)
    optimizer.load_state_dict(_safe_load(path / "optimizer.pt"))
    scheduler.load_state_dict(_safe_load(path / "scheduler.pt"))
    set_rng_state(_safe_load(path / "rng.pt"))
    return json.loads((path / "state.json").read_text())


def _safe_load(path: Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers: a crafted checkpoint cannot run code.

    numpy's array reconstruction is allowed too (data only), for the RNG state of checkpoints written
    before it was stored as a tensor.
    """
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

    allowed: list[Any] = [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, weights_only=True)


def prune(root: Path, keep_last: int, keep: set[Path]) -> None:
    """Delete all but the newest ``keep_last`` checkpoints and those in ``keep`` (the best)."""
    paths = sorted(root.glob("step-*"))
    for path in paths[: max(0, len(paths) - keep_last)]:
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)
