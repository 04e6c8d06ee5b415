"""Bottleneck adapters (Houlsby et al. 2019, arXiv:1902.00751; Pfeiffer et al. 2021, arXiv:2005.00247).

A small down-projection, a non-linearity and an up-projection added to a sub-layer's output
(``y + up(act(down(y)))``), the up-projection starting at zero so training starts from the base model.
Placements: ``houlsby`` adapts the attention output and the feed-forward output of every block; ``pfeiffer``
only the feed-forward output (half the parameters, about the same quality in the paper).

No maintained library supports transformers 5 (AdapterHub's ``adapters`` pins 4.x), so this is a small
module of our own. It saves like a PEFT adapter (``adapter_config.json`` + ``adapter_model.safetensors``
holding only the adapter and task-head weights) and loads onto a fresh base with :func:`load`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import torch

from tunesmith.adapters.blocks import is_classifier, task_head, transformer_blocks
from tunesmith.config.schema import BottleneckMethod
from tunesmith.train.checkpoint import trainable_state

SAVES_ADAPTER = True
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
# the linear layer that ends each sub-layer, by architecture (Llama/Qwen/Mistral, BERT, GPT-2, OPT)
ATTENTION_OUT = ("self_attn.o_proj", "attention.output.dense", "attn.c_proj", "self_attn.out_proj")
FFN_OUT = ("mlp.down_proj", "output.dense", "mlp.c_proj", "fc2")
ACTIVATIONS = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU}


class Bottleneck(torch.nn.Module):
    """``x + up(act(down(x)))``; ``up`` starts at zero, so a fresh adapter is the identity."""

    def __init__(self, width: int, size: int, activation: str) -> None:
        super().__init__()
        self.down = torch.nn.Linear(width, size)
        self.act = ACTIVATIONS[activation]()
        self.up = torch.nn.Linear(size, width)
        torch.nn.init.zeros_(self.up.weight)
        torch.nn.init.zeros_(self.up.bias)
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        return x + self.up(self.act(self.down(x.to(self.down.weight.dtype)))).to(x.dtype)


class Adapted(torch.nn.Module):
    """A sub-layer's output linear followed by its bottleneck adapter."""

    def __init__(self, base: torch.nn.Module, adapter: Bottleneck) -> None:
        super().__init__()
        self.base = base
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base(x))


def sublayer_outputs(block: torch.nn.Module, placement: str) -> list[str]:
    """Names (inside ``block``) of the linear layers the placement adapts."""
    names = dict(block.named_modules())
    wanted = (FFN_OUT,) if placement == "pfeiffer" else (ATTENTION_OUT, FFN_OUT)
    found = []
    for candidates in wanted:
        name = next((c for c in candidates if c in names and isinstance(names[c], torch.nn.Module)), None)
        if name is None:
            raise ValueError(
                f"adapters: no sub-layer output among {list(candidates)} in {type(block).__name__}; this "
                "architecture is not supported by the bottleneck adapters yet"
            )
        found.append(name)
    return found


def _width(module: Any) -> int:
    weight = module.weight
    return int(weight.shape[0] if isinstance(module, torch.nn.Linear) else weight.shape[-1])  # GPT-2 Conv1D


def apply(model: Any, config: BottleneckMethod) -> Any:
    for p in model.parameters():
        p.requires_grad_(False)
    for block in transformer_blocks(model):
        for name in sublayer_outputs(block, config.placement):
            parent_name, _, child = name.rpartition(".")
            parent = block.get_submodule(parent_name) if parent_name else block
            base = getattr(parent, child)
            adapter = Bottleneck(_width(base), config.size, config.activation).to(base.weight.device)
            setattr(parent, child, Adapted(base, adapter))
    head = task_head(model)
    if head is not None and is_classifier(model):
        for p in head.parameters():
            p.requires_grad_(True)
        # the base's own head, for disable_adapter (as PEFT's modules_to_save keeps it)
        model.tunesmith_base_head = {k: v.detach().clone() for k, v in head.state_dict().items()}
    model.tunesmith_bottleneck = config.model_dump()
    model.disable_adapter = partial(disabled, model)
    return model


@contextlib.contextmanager
def disabled(model: Any) -> Iterator[None]:
    """Run the base model: every bottleneck passes its input through unchanged."""
    adapters = [m for m in model.modules() if isinstance(m, Bottleneck)]
    head: Any = task_head(model)
    base_head = getattr(model, "tunesmith_base_head", None)
    trained_head = {k: v.detach().clone() for k, v in head.state_dict().items()} if base_head else None
    for a in adapters:
        a.enabled = False
    if base_head:
        head.load_state_dict(base_head)
    try:
        yield
    finally:
        for a in adapters:
            a.enabled = True
        if trained_head:
            head.load_state_dict(trained_head)


def save(model: Any, out_dir: Path) -> None:
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {"tunesmith_method": "adapters", **model.tunesmith_bottleneck}
    (out_dir / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(trainable_state(model), str(out_dir / WEIGHTS_FILE))


def load(base_model: Any, out_dir: Path) -> Any:
    from safetensors.torch import load_file

    raw = json.loads((Path(out_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    raw.pop("tunesmith_method", None)
    model = apply(base_model, BottleneckMethod(**raw))
    weights = load_file(str(Path(out_dir) / WEIGHTS_FILE))
    missing = set(trainable_state(model)) - set(weights)
    if missing:
        raise ValueError(f"{out_dir / WEIGHTS_FILE} lacks {sorted(missing)[:3]}: not saved from this model")
    model.load_state_dict(weights, strict=False)
    return model
