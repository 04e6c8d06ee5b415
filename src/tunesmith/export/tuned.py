"""Load what a run trained as one plain model: the base with its adapter merged in, and the tuned tokenizer.

Export and serving both start here. Weight adapters whose update is linear in the base weights (LoRA,
DoRA, IA3, and QLoRA's LoRA) merge exactly into the base; full and freeze runs already saved whole
weights. The prompt-learning methods (prompt, prefix, P-tuning) and bottleneck adapters add modules or
virtual tokens that no plain checkpoint can hold, so they are refused with what to do instead.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import ExportError
from tunesmith.rundir import RunDir

log = logging.getLogger(__name__)

MERGEABLE = ("lora", "dora", "ia3", "qlora")
WHOLE = ("full", "freeze")
CAUSAL_OBJECTIVES = ("sft", "cpt", "dpo", "orpo", "kto", "ppo")
HEAD_OBJECTIVES = ("classify", "reward")  # a sequence classifier: exported as an HF folder, never GGUF


@dataclass
class Tuned:
    """A run's tuned model, ready for inference or saving."""

    model: Any
    tokenizer: Any
    config: Any
    run: RunDir
    trained_dir: Path
    note: str = ""


def run_config(run_dir: Path) -> Any:
    """The resolved config a run directory recorded, or an error saying it is not a run directory."""
    from tunesmith.config.load import load_config

    if not (run_dir / "config.yaml").is_file():
        raise ExportError(f"{run_dir}: not a run directory (no config.yaml); give the folder `tunesmith run` wrote.")
    return load_config(run_dir / "config.yaml", [])


def trained_dir(run_dir: Path, config: Any) -> Path:
    """Where the run saved what it trained (adapter/ or model/), checked to exist."""
    from tunesmith.adapters import get_method

    run = RunDir(run_dir)
    path = run.adapter if get_method(config.method.name).SAVES_ADAPTER else run.model
    if not path.is_dir():
        raise ExportError(f"{run_dir}: nothing trained yet ({path} is missing); run `tunesmith train` first.")
    return path


def check_exportable(config: Any, to: str = "hf") -> None:
    """Refuse methods and formats that cannot hold what the run trained."""
    name = config.method.name
    if name == "fewshot":
        raise ExportError(
            "method fewshot trains nothing: its demonstrations live in the prompt; serve the base model."
        )
    if name not in MERGEABLE + WHOLE:
        raise ExportError(
            f"method {name} adds virtual tokens or modules that cannot be merged into the base weights; export it "
            "with `--to adapter` (PEFT loads it), or retrain with lora/dora/ia3/full for a mergeable model."
        )
    if config.train.objective in HEAD_OBJECTIVES and to == "gguf":
        raise ExportError(
            f"objective {config.train.objective} trains a scoring head, which GGUF's text-generation "
            "architectures cannot hold; export it with `--to hf` (a sequence-classification folder)."
        )


def load_tokenizer_for(config: Any, trained: Path) -> Any:
    """The tokenizer saved beside the trained weights (it holds any new tokens and the chat template used)."""
    from transformers import AutoTokenizer

    from tunesmith.models.load import configured_source, load_tokenizer

    if (trained / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(trained, trust_remote_code=config.model.trust_remote_code)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        if getattr(tokenizer, "chat_template", None):
            return tokenizer
    return load_tokenizer(configured_source(config.model), config.model.chat_template)


def load_base(config: Any, trained: Path) -> Any:
    """The run's base causal LM in fp32, with room for the new tokens its adapter holds rows of."""
    import torch

    from tunesmith.models.load import configured_source, load_causal_lm

    base = load_causal_lm(configured_source(config.model), dtype=torch.float32)
    if config.model.new_tokens:  # the adapter holds the new rows; the base needs room for them first
        from tunesmith.models.vocab import resize_to_saved

        resize_to_saved(base, trained)
    return base


def load_tuned(run_dir: Path) -> Tuned:
    """The run's tuned causal LM in fp32 with adapters merged."""
    import torch
    from peft import PeftModel

    from tunesmith.models.load import load_causal_lm, resolve

    config = run_config(run_dir)
    check_exportable(config)
    trained = trained_dir(run_dir, config)
    tokenizer = load_tokenizer_for(config, trained)
    note = ""
    if config.method.name in WHOLE:
        model = load_causal_lm(
            resolve(str(trained), trust_remote_code=config.model.trust_remote_code), dtype=torch.float32
        )
        return Tuned(model, tokenizer, config, RunDir(run_dir), trained, note)
    base = load_base(config, trained)
    if config.method.name == "qlora":
        note = (
            "QLoRA trained its adapter on a 4-bit base; merged into the full-precision base the model differs "
            "slightly from the quantised one evaluated in training (the usual QLoRA deployment)."
        )
        log.info(note)
    model = PeftModel.from_pretrained(base, trained).merge_and_unload()
    return Tuned(model.eval(), tokenizer, config, RunDir(run_dir), trained, note)


def load_scorer(run_dir: Path) -> Tuned:
    """A classify or reward run's sequence classifier with its adapter merged (fp32, eval mode)."""

    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from tunesmith.models.load import load_configured_classifier

    config = run_config(run_dir)
    check_exportable(config)
    trained = trained_dir(run_dir, config)
    run = RunDir(run_dir)
    if config.method.name in WHOLE:
        model = AutoModelForSequenceClassification.from_pretrained(
            trained, trust_remote_code=config.model.trust_remote_code
        )
        tokenizer = load_tokenizer_for(config, trained)
        return Tuned(model.eval(), tokenizer, config, run, trained)
    manifest = json.loads(run.manifest.read_text(encoding="utf-8")) if run.manifest.is_file() else {}
    labels = ["reward"] if config.train.objective == "reward" else list(manifest.get("labels") or [])
    if not labels:
        raise ExportError(
            f"{run_dir}: the prepared data names no labels (data/manifest.json); cannot rebuild the head."
        )
    base, tokenizer = load_configured_classifier(config.model, labels)
    model = PeftModel.from_pretrained(base, trained).merge_and_unload()
    return Tuned(model.eval(), tokenizer, config, run, trained)
