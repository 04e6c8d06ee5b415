"""dpo / orpo / kto: preference rows -> token ids -> (reference log-probs) -> method -> engine -> adapter or model."""

from __future__ import annotations

from functools import partial
from typing import Any

from tunesmith.config.data import check_objective_kind
from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import prepared_kind
from tunesmith.errors import ConfigError, TrainingError
from tunesmith.rundir import RunDir, read_jsonl
from tunesmith.train import lifecycle
from tunesmith.train.causal import load_causal
from tunesmith.train.preference import data
from tunesmith.train.preference.loss import KTOLoss, PreferenceLoss, precompute_reference


def train_preference(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    """Train ``config.method`` on the prepared preference (or, for kto, unpaired) splits of ``run``."""
    tc, objective = config.train, config.train.objective
    try:
        check_objective_kind(objective, prepared_kind(run))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    reference = tc.preference.reference_source(objective, config.method.name)
    precision = lifecycle.start(config, run)
    model, tokenizer = load_causal(config, progress)
    train_rows = read_jsonl(run.split("train"))
    val_rows = read_jsonl(run.split("validation")) if run.split("validation").is_file() else []
    if objective == "kto":
        train_rows, val_rows = data.unpair(train_rows), data.unpair(val_rows)
    encoder = data.encode_unpaired if objective == "kto" else data.encode_pair
    encode = partial(
        data.encode_split, encoder=encoder, tokenizer=tokenizer, max_length=tc.max_length, rejects=run.rejects
    )
    train_ex, val_ex = encode(train_rows, split="train"), encode(val_rows, split="validation")
    if not train_ex:
        raise TrainingError(f"No training example fits train.max_length={tc.max_length}; see {run.rejects}.")
    if objective == "kto":
        data.add_mismatched(train_ex, config.seed)
        data.add_mismatched(val_ex, config.seed + 1)
    if reference == "precompute":  # the base model, before the method changes it
        bf16 = precision == "bf16"
        precompute_reference(model, train_ex + val_ex, tokenizer.pad_token_id, tc.batch_tokens, bf16, progress)

    settings = tc.preference
    if objective == "kto":
        make_loss: Any = partial(KTOLoss, settings=settings, reference=reference)
        collate = partial(data.collate_unpaired, pad_id=tokenizer.pad_token_id)
    else:
        make_loss = partial(PreferenceLoss, objective=objective, settings=settings, reference=reference)
        collate = partial(data.collate_pairs, pad_id=tokenizer.pad_token_id)
    extra: dict[str, Any] = {"beta": settings.strength(objective), "reference": reference}
    if objective == "dpo":
        extra["loss_type"] = settings.loss_type
    if objective == "kto":
        extra["desirable"] = sum(e["desirable"] for e in train_ex)
        extra["undesirable"] = len(train_ex) - extra["desirable"]
    return lifecycle.train(
        config,
        run,
        model,
        tokenizer,
        make_loss,
        train_ex,
        val_ex,
        precision,
        resume,
        progress,
        collate_fn=collate,
        **extra,
    )
