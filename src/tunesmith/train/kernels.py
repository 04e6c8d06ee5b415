"""Optional fused GPU kernels for the model's blocks (``train.kernels``).

``torch`` keeps transformers' own modules. ``liger`` swaps in Liger Kernel's Triton kernels for RMSNorm, the
SwiGLU MLP and rotary embeddings (fewer, larger GPU launches and less activation memory). The loss stays
ours: the head and cross-entropy already run in chunks on labelled positions only, which is what Liger's
fused linear cross-entropy buys the peers. Applied to the base model before any adapter wraps it, so the
patched MLP forward calls whatever LoRA layers later replace its projections.

``train.compile`` is the CPU's (and CUDA's) other route to fused kernels: :func:`compile_blocks` runs
``torch.compile`` on each transformer block after the adapter is in place.
"""

from __future__ import annotations

import shutil
from typing import Any

from tunesmith.errors import ConfigError

# Liger's patch functions by model_type that this module has been checked against: Llama-family blocks
# (RMSNorm + SwiGLU + RoPE), which is every architecture the GGUF and export paths support.
LIGER_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "granite", "olmo2")


def apply(model: Any, kernels: str) -> list[str]:
    """Patch ``model`` in place with the chosen kernels; returns the names of what was replaced."""
    if kernels == "torch":
        return []
    if kernels != "liger":
        raise ConfigError(f"train.kernels: unknown kernels {kernels!r} (use 'torch' or 'liger')")
    return apply_liger(model)


def apply_liger(model: Any) -> list[str]:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            "train.kernels=liger needs a CUDA GPU (Liger's kernels are Triton GPU kernels); "
            "use train.kernels=torch on this machine."
        )
    try:
        from liger_kernel.transformers import _apply_liger_kernel_to_instance
    except ImportError as exc:
        raise ConfigError(
            f"train.kernels=liger needs the liger-kernel package ({exc}): pip install 'tunesmith[liger]'"
        ) from None
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in LIGER_MODEL_TYPES:
        raise ConfigError(
            f"train.kernels=liger: no Liger kernels for model type {model_type!r} "
            f"(supported here: {', '.join(LIGER_MODEL_TYPES)}); use train.kernels=torch."
        )
    _apply_liger_kernel_to_instance(
        model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False
    )
    return ["rms_norm", "swiglu", "rope"]


def compile_blocks(model: Any) -> int:
    """``torch.compile`` each transformer block of ``model`` in place (``train.compile``); returns how many.

    Compiled after the tuning method wraps the blocks, so the adapters' arithmetic fuses with the block's
    norms and activations. Shapes are dynamic from the start: packed rows change length every step and
    would otherwise recompile. The blocks share one code object and, with modules inlined, one graph, so
    30 blocks compile about as fast as one. The packed segment attention runs eagerly inside the compiled
    block (it is registered through ``torch.compiler.disable``: its per-example loop would recompile for every
    new number of examples in a row); padded batches' SDPA is compiled with the block. ``compile()`` in place
    keeps parameter names, so checkpoints and saved adapters are unchanged.
    """
    import torch

    from tunesmith.adapters.blocks import transformer_blocks

    if not torch.cuda.is_available() and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        raise ConfigError(
            "train.compile needs a C++ compiler for torch.compile on the CPU (none of c++, g++, clang++ is on "
            "PATH); install one (e.g. apt install g++) or set train.compile=false."
        )
    blocks = transformer_blocks(model)
    for block in blocks:
        block.compile(dynamic=True)
    return len(blocks)
