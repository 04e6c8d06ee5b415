"""Optional fused GPU kernels for the model's blocks (``train.kernels``).

``torch`` keeps transformers' own modules. ``liger`` swaps in Liger Kernel's Triton kernels for RMSNorm, the
SwiGLU MLP and rotary embeddings (fewer, larger GPU launches and less activation memory). The loss stays
ours: the head and cross-entropy already run in chunks on labelled positions only, which is what Liger's
fused linear cross-entropy buys the peers. Applied to the base model before any adapter wraps it, so the
patched MLP forward calls whatever LoRA layers later replace its projections.
"""

from __future__ import annotations

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
