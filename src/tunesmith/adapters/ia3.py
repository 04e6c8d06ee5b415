"""IA3 (Liu et al. 2022, arXiv:2205.05638) through PEFT: learned vectors that rescale activations.

The fewest trainable parameters of the adapter methods (one vector per adapted module: keys, values and
the feed-forward input by default); mergeable, so a merged model runs at the base model's speed.
"""

from __future__ import annotations

from typing import Any

from tunesmith.adapters import lora
from tunesmith.adapters.blocks import peft_task_type
from tunesmith.config.schema import Ia3Method

SAVES_ADAPTER = True


def apply(model: Any, config: Ia3Method) -> Any:
    from peft import IA3Config, get_peft_model

    peft_config = IA3Config(
        target_modules=config.targets,
        feedforward_modules=config.feedforward,
        task_type=peft_task_type(model),
    )
    try:
        return get_peft_model(model, peft_config)
    except ValueError as exc:  # PEFT has no default targets for this architecture
        raise ValueError(f"ia3: {exc}; set method.targets and method.feedforward") from None


save = lora.save
load = lora.load
