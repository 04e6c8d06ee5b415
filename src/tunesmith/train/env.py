"""Stage 3: the training environment. Seeds, threads, device and precision, all recorded in ``env.json``."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("tunesmith", "torch", "transformers", "peft", "accelerate", "datasets", "tokenizers", "safetensors")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def device_name() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16_is_fast() -> bool:
    """bf16 runs fast here: CUDA with bf16 support, or a CPU with AMX or AVX512-BF16 matmul units."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def resolve_precision(requested: str) -> str:
    """``auto`` -> ``bf16`` where bf16 is fast, else ``fp32``; explicit values pass through."""
    if requested == "auto":
        return "bf16" if bf16_is_fast() else "fp32"
    return requested


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def release_freed_memory(threshold: int = 1 << 20) -> bool:
    """Have glibc serve allocations of ``threshold`` bytes or more with their own mappings, returned to the
    OS as soon as they are freed (``train.release_memory``). By default glibc raises that threshold (to
    32 MB) after the first large free, so activation-sized tensors come from the heap and freed space stays
    resident. Measured on SmolLM2 LoRA training (1,024-token batches, this 2-core CPU): peak RSS 2.35 ->
    1.80 GB, but 446 -> 316 tokens/s from the page faults of fresh mappings; thresholds of 2 MB and more
    kept the speed and lost the saving. Linux with glibc only; returns whether it applied."""
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def set_threads(threads: int | None) -> int:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_sha(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def describe(seed: int, precision: str, threads: int) -> dict[str, Any]:
    """What env.json records: versions, device, precision, threads, seed, determinism, git sha."""
    import torch

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in PACKAGES},
        "device": device_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "precision": precision,
        "bf16_fast": bf16_is_fast(),
        "cpu_bf16_flags": sorted({"amx_bf16", "amx_tile", "avx512_bf16"} & cpu_flags()),
        "seed": seed,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "git_sha": git_sha(Path(__file__).parent),
    }
    if torch.cuda.is_available():
        info["cuda"] = {
            "device": torch.cuda.get_device_name(0),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
            "count": torch.cuda.device_count(),
            "memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
        }
    return info
