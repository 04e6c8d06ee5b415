"""QLoRA (Dettmers et al. 2023, arXiv:2305.14314): LoRA over a bitsandbytes-quantized frozen base.

The base arrives in full precision; :func:`quantize_linears` swaps each linear layer inside the transformer
blocks for a bitsandbytes 4-bit (NF4/FP4) or 8-bit (LLM.int8) layer one at a time, so the full-precision copy
of a layer is freed as soon as its quantized twin exists. PEFT then wraps the quantized layers with its own
bitsandbytes LoRA layers, so the saved adapter loads with plain ``peft`` onto a base quantized the same way
(``quantization.json`` beside the adapter records how). bitsandbytes runs on CUDA and, since 0.45, on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tunesmith.adapters import lora
from tunesmith.adapters.blocks import transformer_blocks
from tunesmith.config.schema import QloraMethod
from tunesmith.train import env
from tunesmith.train.optim import bitsandbytes

SAVES_ADAPTER = True
QUANTIZATION_FILE = "quantization.json"


def compute_dtype() -> torch.dtype:
    """The dtype the dequantized weights are multiplied in: bf16 where it is fast here, else fp32."""
    return torch.bfloat16 if env.bf16_is_fast() else torch.float32


def _quantized_twin(linear: torch.nn.Linear, config: QloraMethod, device: str) -> torch.nn.Module:
    bnb = bitsandbytes("method: qlora")
    weight = linear.weight.data
    has_bias = linear.bias is not None
    module: torch.nn.Module
    if config.bits == 4:
        module = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=has_bias,
            compute_dtype=compute_dtype(),
            compress_statistics=config.double_quant,
            quant_type=config.quant_type,
            device="meta",
        )
        # bitsandbytes repacks CPU weights for inference on the first no-grad forward, rounding the block scales
        # to bf16; the model would then score with other weights than it trained with. Keep one format.
        module.support_avx512bf16_for_cpu = False  # type: ignore[assignment]
        module.weight = bnb.nn.Params4bit(
            weight.float(),
            requires_grad=False,
            compress_statistics=config.double_quant,
            quant_type=config.quant_type,
        )
    else:
        module = bnb.nn.Linear8bitLt(
            linear.in_features, linear.out_features, bias=has_bias, has_fp16_weights=False, device="meta"
        )
        module.weight = bnb.nn.Int8Params(weight.float(), requires_grad=False, has_fp16_weights=False)
    if has_bias:
        module.bias = torch.nn.Parameter(linear.bias.data.clone(), requires_grad=False)
    return module.to(device)  # bitsandbytes quantizes on the move to the device


BLOCK = 64  # bitsandbytes' 4-bit block size; its CPU kernels need whole blocks along each input row


def _check_shape(name: str, linear: torch.nn.Linear, config: QloraMethod, device: str) -> None:
    if config.bits == 4 and device == "cpu" and (linear.in_features % BLOCK or linear.out_features % 32):
        raise ValueError(
            f"qlora: {name} is {linear.in_features} -> {linear.out_features}; bitsandbytes' 4-bit CPU kernels "
            f"need inputs in multiples of {BLOCK} and outputs in multiples of 32. Use `bits: 8`, or `lora`."
        )


def quantize_linears(model: Any, config: QloraMethod) -> int:
    """Replace every ``nn.Linear`` inside the transformer blocks in place; returns how many were replaced.

    Embeddings, norms, the LM head and any task head keep their precision (as in the QLoRA paper). The model
    moves to CUDA when there is one, since bitsandbytes quantizes on the move.
    """
    device = env.device_name()
    replaced = 0
    for block in transformer_blocks(model):
        for name, module in list(block.named_modules()):
            if type(module) is not torch.nn.Linear:
                continue
            _check_shape(name, module, config, device)
            parent = block.get_submodule(name.rsplit(".", 1)[0]) if "." in name else block
            setattr(parent, name.rsplit(".", 1)[-1], _quantized_twin(module, config, device))
            replaced += 1
    model.to(device)
    flag = "is_loaded_in_4bit" if config.bits == 4 else "is_loaded_in_8bit"
    setattr(model, flag, True)  # PEFT dispatches its bitsandbytes LoRA layers on these flags
    return replaced


def apply(model: Any, config: QloraMethod) -> Any:
    if quantize_linears(model, config) == 0:
        raise ValueError("qlora: the model has no linear layers inside its transformer blocks to quantize")
    peft_model = lora.apply(model, config)
    peft_model.tunesmith_quantization = config.model_dump(include={"bits", "quant_type", "double_quant"})
    return peft_model


def save(model: Any, out_dir: Path) -> None:
    lora.save(model, out_dir)
    settings = getattr(model, "tunesmith_quantization", None)
    if settings:
        (Path(out_dir) / QUANTIZATION_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def load(base_model: Any, out_dir: Path) -> Any:
    """The saved adapter on ``base_model`` quantized as it was in training (the model it was trained on)."""
    settings = json.loads((Path(out_dir) / QUANTIZATION_FILE).read_text(encoding="utf-8"))
    config = QloraMethod(**settings)
    quantize_linears(base_model, config)
    peft_model = lora.load(base_model, out_dir)
    peft_model.tunesmith_quantization = settings
    return peft_model
