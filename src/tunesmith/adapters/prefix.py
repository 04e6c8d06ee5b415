"""Prefix tuning (Li & Liang 2021, arXiv:2101.00190): learned keys and values in front of every layer.

More capacity than prompt tuning (virtual_tokens x 2 x layers x hidden); ``projection`` trains them through
a two-layer MLP (the paper's reparameterisation, more stable), which is folded away when saved.
"""

from __future__ import annotations

from typing import Any

from tunesmith.adapters import lora, prompting
from tunesmith.adapters.blocks import is_classifier, peft_task_type
from tunesmith.config.schema import PrefixMethod

SAVES_ADAPTER = True


def apply(model: Any, config: PrefixMethod) -> Any:
    from peft import PrefixTuningConfig, get_peft_model

    if is_classifier(model) or prompting.cache_argument(model.base_model) is None:
        raise ValueError(
            f"prefix: {type(model).__name__} is not a causal LM that takes past keys and values, which prefix "
            "tuning needs here (PEFT's classification prefix path does not run with transformers 5); use method "
            "prompt or ptuning instead"
        )
    peft_config = PrefixTuningConfig(
        task_type=peft_task_type(model),
        num_virtual_tokens=config.virtual_tokens,
        prefix_projection=config.projection,
        encoder_hidden_size=config.projection_hidden,
    )
    return get_peft_model(model, peft_config)


save = lora.save
load = lora.load
