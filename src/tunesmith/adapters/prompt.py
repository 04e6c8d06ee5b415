"""Prompt tuning (Lester et al. 2021, arXiv:2104.08691): learned input embeddings in front of every example.

The fewest parameters of all (virtual_tokens x hidden size); initialising them from the embeddings of a
text that describes the task (``init_text``) trains far more stably than a random start on small models.
"""

from __future__ import annotations

from typing import Any

from tunesmith.adapters import lora
from tunesmith.adapters.blocks import peft_task_type, unwrap
from tunesmith.config.schema import PromptMethod

SAVES_ADAPTER = True


def apply(model: Any, config: PromptMethod) -> Any:
    from peft import PromptTuningConfig, get_peft_model

    init: dict[str, Any] = {"prompt_tuning_init": "RANDOM"}
    if config.init_text:
        init = {
            "prompt_tuning_init": "TEXT",
            "prompt_tuning_init_text": config.init_text,
            "tokenizer_name_or_path": unwrap(model).name_or_path,  # the local dir the model came from
        }
    peft_config = PromptTuningConfig(task_type=peft_task_type(model), num_virtual_tokens=config.virtual_tokens, **init)
    return get_peft_model(model, peft_config)


save = lora.save
load = lora.load
