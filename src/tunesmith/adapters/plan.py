"""The method planner: what a tuning method would train on a model, computed without applying it.

:func:`trainable_parameters` counts from the model's module shapes alone (the conformance battery checks it
against the count after the method is applied); the memory estimate and `tunesmith plan` build on it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tunesmith.adapters.blocks import is_classifier, matches_name, task_head, transformer_blocks, unwrap


def _unique_numel(modules: list[Any]) -> int:
    seen: dict[int, int] = {}
    for module in modules:
        if module is None:
            continue
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _adaptable_linears(model: Any, config: Any) -> list[tuple[str, torch.nn.Linear]]:
    """(name, layer) of every linear layer the LoRA family would adapt under ``config``."""
    hf = unwrap(model)
    head, out_emb = task_head(model), hf.get_output_embeddings()
    skip = {id(m) for m in (head, out_emb) if m is not None}
    blocks = transformer_blocks(model)
    allowed: set[int] | None = None
    if getattr(config, "last_n_layers", None) is not None:
        allowed = {id(m) for b in list(blocks)[-config.last_n_layers :] for m in b.modules()}
    targets = None if config.targets == "all-linear" else list(config.targets)
    found = []
    for name, module in hf.named_modules():
        if not isinstance(module, torch.nn.Linear) or id(module) in skip:
            continue
        if allowed is not None and id(module) not in allowed:
            continue
        if targets is not None and not matches_name(name, targets):
            continue
        found.append((name, module))
    return found


def trainable_parameters(model: Any, config: Any) -> int:
    """How many parameters ``config``'s method trains on ``model`` (the model is not changed)."""
    name = config.name
    head = task_head(model)
    head_params = _unique_numel([head]) if is_classifier(model) else 0  # a new task head always trains
    if name == "full":
        return _unique_numel([model])
    if name == "freeze":
        from tunesmith.adapters.freeze import named_modules

        hf = unwrap(model)
        blocks = list(transformer_blocks(model))
        modules = blocks[len(blocks) - config.last_n_layers :]
        if config.last_n_layers:
            modules.append(getattr(hf.base_model, "norm", None))
        modules += named_modules(model, config.modules)
        modules.append(head)
        if config.train_head and head is None:
            modules.append(hf.get_output_embeddings())
        return _unique_numel(modules)
    if name in ("lora", "qlora", "dora"):
        layers = _adaptable_linears(model, config)
        count = sum(config.r * (m.in_features + m.out_features) for _, m in layers)
        if name == "dora":
            count += sum(m.out_features for _, m in layers)  # one magnitude per output feature
        return count + head_params
    if name == "ia3":
        from peft.utils import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
        )
        from peft.utils import (
            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS,
        )

        model_type = unwrap(model).config.model_type
        targets = config.targets or TARGETS[model_type]
        feedforward = config.feedforward or FEEDFORWARD[model_type]
        count = 0
        for module_name, module in unwrap(model).named_modules():
            if isinstance(module, torch.nn.Linear) and module is not head and matches_name(module_name, targets):
                count += module.in_features if matches_name(module_name, feedforward) else module.out_features
        return count + head_params
    if name in ("prompt", "prefix", "ptuning"):
        return _prompt_learning_parameters(model, config) + head_params
    if name == "adapters":
        from tunesmith.adapters.bottleneck import _width, sublayer_outputs

        count = 0
        for block in transformer_blocks(model):
            for sub in sublayer_outputs(block, config.placement):
                width = _width(block.get_submodule(sub))
                count += width * config.size + config.size + config.size * width + width
        return count + head_params
    raise ValueError(f"no parameter count for method '{name}'")


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _lstm(n_in: int, hidden: int, layers: int = 2) -> int:
    """A bidirectional ``nn.LSTM``: per direction and layer, four gates of input, recurrent and two biases."""
    total, width = 0, n_in
    for _ in range(layers):
        total += 2 * 4 * (hidden * width + hidden * hidden + 2 * hidden)
        width = 2 * hidden
    return total


def _prompt_learning_parameters(model: Any, config: Any) -> int:
    hf_config = unwrap(model).config
    d, n = hf_config.hidden_size, config.virtual_tokens
    if config.name == "prompt":
        return n * d
    if config.name == "ptuning":
        h = config.encoder_hidden
        if config.encoder == "mlp":
            return n * d + _linear(d, h) + _linear(h, h) + _linear(h, d)
        return n * d + _lstm(d, h) + _linear(2 * h, 2 * h) + _linear(2 * h, d)
    # prefix: a key and a value vector per virtual token and layer (of the key/value width under GQA)
    layers = hf_config.num_hidden_layers
    heads = hf_config.num_attention_heads
    kv_width = getattr(hf_config, "num_key_value_heads", None) or heads
    kv_dim = d // heads * kv_width
    if not config.projection:
        return n * layers * 2 * kv_dim
    h = config.projection_hidden  # PEFT sizes the prefix embedding by the key/value width too
    return n * kv_dim + _linear(kv_dim, h) + _linear(h, layers * 2 * kv_dim)


# ---------------------------------------------------------------- memory and cost estimates

# glibc's default allocator keeps freed activation blocks resident and fragments them. Measured on this
# machine (bench/plan_vs_measured.py with and without train.release_memory, 2026-11-26), the peak RSS it
# adds was 0.30 (full), 0.35 (lora) and 0.58 (prefix) of the estimated activation memory; the median is used.
# A calibration from those runs, not a law: the benchmark re-checks it.
RETENTION = 0.35
GB = 2**30


@dataclass
class Estimate:
    """Peak training memory of one method, in bytes, by component, and its step cost relative to full."""

    method: str
    trainable: int
    total: int
    weights: dict[str, int]
    gradients: int
    optimizer: int
    activations: int
    head: int
    runtime: int
    step_cost: float
    retention: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def peak(self) -> int:
        parts = (self.gradients, self.optimizer, self.activations, self.head, self.runtime, self.retention)
        return sum(self.weights.values()) + sum(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "trainable_params": self.trainable,
            "total_params": self.total,
            "trainable_pct": round(100 * self.trainable / max(self.total, 1), 4),
            "memory_gb": {
                "weights": {k: round(v / GB, 3) for k, v in self.weights.items()},
                "gradients": round(self.gradients / GB, 3),
                "optimizer": round(self.optimizer / GB, 3),
                "activations": round(self.activations / GB, 3),
                "head": round(self.head / GB, 3),
                "runtime": round(self.runtime / GB, 3),
                "allocator retention": round(self.retention / GB, 3),
                "peak": round(self.peak / GB, 3),
            },
            "step_cost_vs_full": round(self.step_cost, 2),
            "notes": self.notes,
        }


def baseline_rss() -> int:
    """Resident memory of this process apart from memory-mapped checkpoint files: the interpreter, torch,
    transformers, the tokenizer and the data. Weights that transformers maps from safetensors files are
    counted by the estimate itself, so their resident pages are subtracted here."""
    mapped, current = 0, None
    try:
        with open("/proc/self/smaps") as fh:
            for line in fh:
                parts = line.split()
                if "-" in parts[0] and len(parts) >= 6:
                    current = parts[-1]
                elif parts[0] == "Rss:" and current and current.endswith(".safetensors"):
                    mapped += int(parts[1]) * 1024
    except OSError:
        pass
    return current_rss() - mapped


def current_rss() -> int:
    """Resident memory of this process now (bytes): the runtime every training run starts from."""
    try:
        pages = int(open("/proc/self/statm").read().split()[1])  # noqa: SIM115
    except (OSError, ValueError, IndexError):
        return 0
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def _weight_bytes(
    model: Any, config: Any, total: int, trainable: int, precision: str, bf16_frozen_base: bool
) -> dict[str, int]:
    """Bytes of the model's weights as training holds them, by storage type (``total`` base parameters, of
    which an adapter method adds ``trainable`` of its own in fp32)."""
    if config.name in ("full", "freeze"):
        return {"fp32": total * 4}
    frozen_dtype, frozen_size = ("bf16", 2) if precision == "bf16" and bf16_frozen_base else ("fp32", 4)
    out = {"fp32 (trained)": trainable * 4}
    if config.name != "qlora":
        out[f"{frozen_dtype} (frozen)"] = total * frozen_size
        return out
    linears = [m for b in transformer_blocks(model) for m in b.modules() if type(m) is torch.nn.Linear]
    quantized = sum(m.weight.numel() for m in linears)
    if config.bits == 4:  # 4 bits per weight + one scale per 64 (8-bit scales under double quantization)
        out["nf4/fp4 (frozen)"] = quantized // 2 + quantized // 64 * (1 if config.double_quant else 4)
    else:  # int8 weights + one fp32 scale per output row
        out["int8 (frozen)"] = quantized + sum(m.out_features for m in linears) * 4
    out[f"{frozen_dtype} (frozen)"] = (total - quantized) * frozen_size
    return out


def _depth(model: Any, config: Any) -> int:
    """Blocks that keep activations for backward: from the first trainable block to the top (all of them
    when freeze also trains named modules, which may sit below the blocks)."""
    n = len(transformer_blocks(model))
    if getattr(config, "modules", None):
        return n
    last = getattr(config, "last_n_layers", None)
    return min(last, n) if last else n


def step_cost(model: Any, config: Any) -> float:
    """FLOPs of one step relative to full fine-tuning (6 x params per token): every method runs the forward
    (2x) and backpropagates through the blocks above its first trained one (2x); only trained matrices need
    their weight gradient (2x of the trained share). Extra passes, in the same units: dequantizing a
    quantized base in forward and backward (0.4), DoRA's weight norms (0.3)."""
    n, depth = len(transformer_blocks(model)), _depth(model, config)
    if config.name == "full":
        return 1.0
    if config.name == "freeze":
        return (2 + 4 * depth / n) / 6
    backward = 2 * depth / n  # gradient w.r.t. activations down to the first adapter
    extra = {"qlora": 0.4, "dora": 0.3}.get(config.name, 0.0)
    return (2 + backward + extra) / 6


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of every tensor an operation creates while it stays alive, and the peak of that sum:
    the memory a forward and backward pass really holds, independent of the allocator."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        from torch.utils._pytree import tree_flatten

        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key, size = storage.data_ptr(), storage.nbytes()
                if size and key not in self._seen:
                    self._seen.add(key)
                    self.live += size
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._free, key, size)
        return out

    def _free(self, key: int, size: int) -> None:
        self.live -= size
        self._seen.discard(key)


def activation_bytes_per_token(model: Any, config: Any, precision: str, length: int = 128) -> tuple[float, float]:
    """(kept, transient) bytes per token of one block, measured on a one-block copy of the architecture.

    The copy runs forward and backward under the method and precision on batches of 1 and 3 examples of
    ``length`` tokens (the data's typical length: attention grows with it); ``kept`` is the slope of the
    bytes alive after the forward (what each block holds until its backward), ``transient`` the slope of the
    extra peak during backward (one block's gradients at a time). Slopes remove per-weight constants.
    """
    import copy

    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from tunesmith.adapters import get_method
    from tunesmith.adapters.prompting import decoder_hidden
    from tunesmith.train.sft.loss import causal_parts

    hf = unwrap(model)
    probe_config = copy.deepcopy(hf.config)
    probe_config.num_hidden_layers = 1
    if getattr(probe_config, "layer_types", None):
        probe_config.layer_types = probe_config.layer_types[:1]
    auto = AutoModelForSequenceClassification if is_classifier(model) else AutoModelForCausalLM
    probe = auto.from_config(probe_config)
    if config.name == "freeze" or getattr(config, "last_n_layers", None):
        config = config.model_copy(update={"last_n_layers": 1})
    probe = get_method(config.name).apply(probe, config)
    if precision == "bf16" and config.name not in ("full", "freeze"):
        for p in probe.parameters():  # as train.bf16_frozen_base stores them
            if not p.requires_grad and p.dtype == torch.float32:
                p.data = p.data.to(torch.bfloat16)

    def measure(examples: int) -> tuple[int, int]:
        ids = torch.randint(0, probe_config.vocab_size, (examples, length))
        mode = LiveBytes()
        with mode, torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            if is_classifier(probe):
                out = probe(input_ids=ids).logits.float().sum()
            else:
                decoder, _ = causal_parts(probe)
                out = decoder_hidden(probe, decoder, ids, None).float().pow(2).mean()
            after_forward = mode.live
            out.backward()
        return after_forward, mode.peak - after_forward

    (kept_s, extra_s), (kept_l, extra_l) = measure(1), measure(3)
    width = 2 * length
    return max(kept_l - kept_s, 0) / width, max(extra_l - extra_s, 0) / width


def estimate(
    model: Any,
    config: Any,
    train: Any,
    precision: str,
    runtime: int,
    labelled_fraction: float = 1.0,
    example_length: int = 128,
) -> Estimate:
    """Peak training memory of ``config``'s method on ``model`` under ``train`` (a TrainConfig).

    ``runtime`` is the resident memory of the process apart from the weights (see :func:`baseline_rss`);
    ``labelled_fraction`` the share of tokens that carry a label (sizes the LM head's work);
    ``example_length`` the typical example length in tokens (attention memory grows with it). Checked against
    measured peaks in bench/plan_vs_measured.py.
    """
    hf = unwrap(model)
    notes: list[str] = []
    total = _unique_numel([model])
    trainable = trainable_parameters(model, config)
    kept, transient = activation_bytes_per_token(model, config, precision, min(example_length, train.batch_tokens))
    tokens = train.batch_tokens
    if train.gradient_checkpointing:  # block inputs (fp32 hidden states) kept; one block recomputed at a time
        activations = int(hf.config.hidden_size * 4 * tokens * _depth(model, config) + (kept + transient) * tokens)
        notes.append("gradient checkpointing: block inputs kept, one block recomputed at a time")
    else:
        activations = int((kept * _depth(model, config) + transient) * tokens)
    head = 0
    if not is_classifier(model):  # logits only for labelled positions, at most 2048 rows at a time, fp32
        rows = min(int(tokens * labelled_fraction) + 1, 2048)
        head = rows * hf.config.vocab_size * 4 * 3  # logits, their log-softmax and its gradient
    return Estimate(
        method=config.name,
        trainable=trainable,
        total=total,
        weights=_weight_bytes(model, config, total, trainable, precision, train.bf16_frozen_base),
        gradients=trainable * 4,
        optimizer=trainable * (2 if "8bit" in train.optimizer else 8),  # two moments, in 8 bits or in fp32
        activations=activations,
        head=head,
        runtime=runtime,
        retention=0 if train.release_memory else int(RETENTION * (activations + head)),
        step_cost=step_cost(model, config),
        notes=notes,
    )
