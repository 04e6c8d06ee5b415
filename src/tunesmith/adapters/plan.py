"""The method planner: what a tuning method would train on a model, computed without applying it.

:func:`trainable_parameters` counts from the model's module shapes alone (the conformance battery checks it
against the count after the method is applied); the memory estimate and `tunesmith plan` build on it.
"""

from __future__ import annotations

from typing import Any

import torch

from tunesmith.adapters.blocks import is_classifier, task_head, transformer_blocks, unwrap


def _matches(name: str, targets: list[str]) -> bool:
    """PEFT's rule: a module matches a target that equals its full name or ends it after a dot."""
    return any(name == t or name.endswith("." + t) for t in targets)


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
        if targets is not None and not _matches(name, targets):
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
        hf = unwrap(model)
        modules = [*list(transformer_blocks(model))[-config.last_n_layers :], getattr(hf.base_model, "norm", None)]
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
            if isinstance(module, torch.nn.Linear) and module is not head and _matches(module_name, targets):
                count += module.in_features if _matches(module_name, feedforward) else module.out_features
        return count + head_params
    if name in ("prompt", "prefix", "ptuning"):
        return _prompt_learning_parameters(model, config) + head_params
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
