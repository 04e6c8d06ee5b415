"""``--to gguf``: a Hugging Face Llama-family causal LM as one GGUF file for llama.cpp and Ollama.

This mirrors what llama.cpp's ``convert_hf_to_gguf.py`` writes for ``LlamaForCausalLM`` (and for the
architectures it converts the same way), using the ``gguf`` package llama.cpp publishes:

* metadata under llama.cpp's key names (``llama.context_length``, ``llama.attention.head_count_kv``, ...),
  checked against a GGUF that llama.cpp itself made (the embedded SmolLM2);
* tensors renamed with ``gguf.TensorNameMap``; Llama's ``q_proj``/``k_proj`` rows permuted from the HF
  rotary layout (two halves per head) to llama.cpp's (interleaved pairs), which transformers undoes on load;
* no ``output.weight`` when the embeddings are tied: llama.cpp then reuses ``token_embd.weight``;
* 1-D tensors and norms kept in f32; ``q8_0`` only where a row is a whole number of 32-wide blocks (any
  other tensor falls back to f16, as llama.cpp does);
* the byte-level BPE tokenizer, chat template and stop tokens (:mod:`tunesmith.export.gguf_vocab`).

The file is written beside ``out_file`` under a temporary name and renamed into place, so an interrupted
export never leaves a truncated GGUF behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from tunesmith.errors import ExportError


@dataclass(frozen=True)
class _Arch:
    """How one HF architecture converts: llama.cpp's architecture, and whether q/k rows are permuted."""

    gguf_arch: gguf.MODEL_ARCH
    permute_qk: bool


# HF ``architectures[0]`` -> conversion; llama.cpp converts Mistral with its Llama class.
ARCHITECTURES = {
    "LlamaForCausalLM": _Arch(gguf.MODEL_ARCH.LLAMA, permute_qk=True),
    "MistralForCausalLM": _Arch(gguf.MODEL_ARCH.LLAMA, permute_qk=True),
    "Qwen2ForCausalLM": _Arch(gguf.MODEL_ARCH.QWEN2, permute_qk=False),
}

# ``quant`` -> (the type of each 2-D weight, the file type recorded in ``general.file_type``)
QUANT_TYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "bf16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}


def write_gguf(hf_dir: Path, out_file: Path, quant: str = "f16", *, name: str | None = None) -> dict[str, Any]:
    """Convert the HF model directory ``hf_dir`` into the GGUF file ``out_file``.

    Args:
        hf_dir: a directory with ``config.json``, ``model.safetensors`` (or its sharded index) and a
            ``tokenizer.json`` byte-level BPE tokenizer; ``generation_config.json`` and
            ``chat_template.jinja`` are read when present.
        out_file: the ``.gguf`` file to write (replaced atomically when it exists).
        quant: the type of the 2-D weights, one of :data:`QUANT_TYPES`.
        name: ``general.name``; by default the config's model name, else the directory's name.

    Returns:
        What was written: ``path``, ``quant``, ``architecture``, ``name``, ``tensors`` (count), ``bytes``,
        ``vocab_size``.

    Raises:
        ExportError: an architecture, rope scaling, tokenizer or tensor this converter does not handle.
    """
    from tunesmith.export.gguf_vocab import add_tokenizer

    hf_dir, out_file = Path(hf_dir), Path(out_file)
    if quant not in QUANT_TYPES:
        raise ExportError(f"GGUF quant '{quant}': choose one of {', '.join(QUANT_TYPES)}.")
    config = _read_json(hf_dir / "config.json")
    arch = architecture(config)
    arch_name = gguf.MODEL_ARCH_NAMES[arch.gguf_arch]
    writer = gguf.GGUFWriter(path=None, arch=arch_name)
    model_name = name or _model_name(config, hf_dir)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_name)
    _add_hparams(writer, config, QUANT_TYPES[quant][1])
    vocab_size = add_tokenizer(writer, hf_dir, config)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    count = 0
    for gguf_name, data, qtype in convert_tensors(hf_dir, config, arch, QUANT_TYPES[quant][0]):
        writer.add_tensor(gguf_name, data, raw_dtype=qtype)
        count += 1
    _write_atomically(writer, out_file)
    return {
        "path": str(out_file),
        "quant": quant,
        "architecture": arch_name,
        "name": model_name,
        "tensors": count,
        "bytes": out_file.stat().st_size,
        "vocab_size": vocab_size,
    }


def architecture(config: dict[str, Any]) -> _Arch:
    """The conversion for ``config``'s architecture, or an :class:`ExportError` naming what is supported."""
    names = config.get("architectures") or [config.get("model_type", "unknown")]
    if names[0] not in ARCHITECTURES:
        raise ExportError(
            f"GGUF export does not support the architecture {names[0]}: supported are {', '.join(ARCHITECTURES)}. "
            "Export this model with --to hf and convert it with llama.cpp's convert_hf_to_gguf.py instead."
        )
    return ARCHITECTURES[names[0]]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ExportError(f"{path.parent}: no {path.name}; GGUF export needs a Hugging Face model directory.")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _model_name(config: dict[str, Any], hf_dir: Path) -> str:
    """The config's model name (a hub id or path keeps its last part), else the directory's name."""
    for key in ("_name_or_path", "_model_name_or_path"):
        if value := str(config.get(key) or "").strip():
            return Path(value).name or value
    return hf_dir.resolve().name


def rope_theta(config: dict[str, Any]) -> float | None:
    """The rotary base: ``rope_parameters.rope_theta`` (transformers 5) or ``rope_theta`` (4.x)."""
    params = config.get("rope_parameters") or {}
    value = params.get("rope_theta", config.get("rope_theta"))
    return None if value is None else float(value)


def _rope_scaling(config: dict[str, Any]) -> dict[str, Any]:
    """The rope scaling settings, in either config layout (``{}`` for none)."""
    scaling = dict(config.get("rope_scaling") or config.get("rope_parameters") or {})
    kind = scaling.get("rope_type", scaling.get("type")) or "default"
    if kind not in ("default", "linear"):
        raise ExportError(
            f"GGUF export does not support rope scaling of type '{kind}' (only none or linear); "
            "convert this model with llama.cpp's convert_hf_to_gguf.py."
        )
    return scaling if kind == "linear" else {}


def _add_hparams(writer: gguf.GGUFWriter, config: dict[str, Any], file_type: gguf.LlamaFileType) -> None:
    """The model's shape under llama.cpp's keys, in the order ``convert_hf_to_gguf.py`` writes them."""
    n_head, hidden = config["num_attention_heads"], config["hidden_size"]
    writer.add_block_count(config["num_hidden_layers"])
    if (n_ctx := config.get("max_position_embeddings")) is not None:
        writer.add_context_length(n_ctx)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(config.get("num_key_value_heads") or n_head)
    if (theta := rope_theta(config)) is not None:
        writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    head_dim = config.get("head_dim") or hidden // n_head
    if head_dim != hidden // n_head:  # llama.cpp assumes hidden / heads unless told otherwise
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_file_type(file_type)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(head_dim)
    if scaling := _rope_scaling(config):
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(scaling["factor"]))


def permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k projection rows from HF's rotary layout to llama.cpp's, as ``LlamaModel.permute`` does.

    HF rotates the two halves of each head (``rotate_half``); llama.cpp rotates adjacent pairs. Rows are
    viewed as ``(n_head, 2, head_dim / 2, ...)`` and the middle axes swapped. ``n_head`` is the number of
    heads the projection has (the KV head count for ``k_proj``). Shape ``(n_head * head_dim, ...)`` in and out.
    """
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _safetensors_files(hf_dir: Path) -> list[Path]:
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return [hf_dir / part for part in sorted(set(weight_map.values()))]
    if (hf_dir / "model.safetensors").is_file():
        return [hf_dir / "model.safetensors"]
    raise ExportError(f"{hf_dir}: no model.safetensors (GGUF export reads safetensors weights only).")


def _read_tensors(hf_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Every tensor of the checkpoint as float32 numpy, one at a time (bf16 has no numpy type)."""
    import torch
    from safetensors import safe_open

    for path in _safetensors_files(hf_dir):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                yield key, handle.get_tensor(key).to(torch.float32).numpy()


def convert_tensors(
    hf_dir: Path, config: dict[str, Any], arch: _Arch, weight_type: gguf.GGMLQuantizationType
) -> Iterator[tuple[str, np.ndarray, gguf.GGMLQuantizationType]]:
    """``(gguf name, data, type)`` for each tensor llama.cpp needs, converted and quantised.

    ``data`` is what :meth:`gguf.GGUFWriter.add_tensor` takes: float arrays for f32/f16, the packed
    ``uint8`` blocks for the other types.
    """
    n_head = config["num_attention_heads"]
    n_kv_head = config.get("num_key_value_heads") or n_head
    name_map = gguf.get_tensor_name_map(arch.gguf_arch, config["num_hidden_layers"])
    tied = bool(config.get("tie_word_embeddings"))
    for hf_name, data in _read_tensors(hf_dir):
        if hf_name.endswith(".rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        new_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise ExportError(
                f"{hf_dir}: tensor '{hf_name}' has no GGUF name; is this a plain {', '.join(ARCHITECTURES)} "
                "checkpoint (adapters merged, no extra heads)?"
            )
        if arch.permute_qk and hf_name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute(data, n_head)
        elif arch.permute_qk and hf_name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute(data, n_kv_head)
        yield (new_name, *quantise(new_name, data, weight_type))


def quantise(
    name: str, data: np.ndarray, weight_type: gguf.GGMLQuantizationType
) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """``data`` in the type llama.cpp's converter would pick for tensor ``name`` at ``weight_type``.

    1-D tensors and norms stay f32 (most of llama.cpp's kernels take only f32 there); a tensor whose rows
    are not whole quantisation blocks (32 wide for q8_0) falls back to f16.
    """
    qtype = gguf.GGMLQuantizationType.F32 if data.ndim <= 1 or name.endswith("_norm.weight") else weight_type
    try:
        return gguf.quants.quantize(data, qtype), qtype
    except gguf.QuantError:
        return gguf.quants.quantize(data, gguf.GGMLQuantizationType.F16), gguf.GGMLQuantizationType.F16


def _write_atomically(writer: gguf.GGUFWriter, out_file: Path) -> None:
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out_file.parent, prefix=f".{out_file.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer.write_header_to_file(path=tmp)
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_file)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
