"""P-tuning (Liu et al. 2021, arXiv:2103.10385): virtual tokens produced by a small trained prompt encoder.

Like prompt tuning, the virtual tokens go in front of the input embeddings, but an MLP or LSTM generates
them, which couples the tokens and trains more robustly than free embeddings.
"""

from __future__ import annotations

from typing import Any

from tunesmith.adapters import lora
from tunesmith.adapters.blocks import peft_task_type
from tunesmith.config.schema import PtuningMethod

SAVES_ADAPTER = True


def apply(model: Any, config: PtuningMethod) -> Any:
    from peft import PromptEncoderConfig, get_peft_model

    peft_config = PromptEncoderConfig(
        task_type=peft_task_type(model),
        num_virtual_tokens=config.virtual_tokens,
        encoder_reparameterization_type=config.encoder.upper(),
        encoder_hidden_size=config.encoder_hidden,
    )
    return get_peft_model(model, peft_config)


save = lora.save
load = lora.load
