"""Reward modelling: feedback rows -> a one-output head on a causal LM or an encoder -> adapter or model.

Pairs (and rankings or choices, expanded to every pair they imply) train by Bradley-Terry; rankings with
``train.reward.ranking_loss: listwise`` by Plackett-Luce over the whole list; ratings by regression on
standardised scores. The model reports held-out pairwise accuracy as it trains (``val_accuracy``).
"""

from __future__ import annotations

import statistics
from functools import partial
from typing import Any

from tunesmith.config.data import check_objective_kind
from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import prepared_kind
from tunesmith.errors import ConfigError, TrainingError
from tunesmith.models.load import load_configured_classifier
from tunesmith.rundir import RunDir, read_jsonl
from tunesmith.train import lifecycle
from tunesmith.train.preference.data import encode_split
from tunesmith.train.reward import data
from tunesmith.train.reward.loss import RewardLoss


def train_reward(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    """Train a reward model on the prepared feedback splits of ``run``."""
    tc = config.train
    kind = prepared_kind(run)
    try:
        check_objective_kind("reward", kind)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    precision = lifecycle.start(config, run)
    task = lifecycle.loading(progress, config.model.base)
    model, tokenizer = load_configured_classifier(config.model, ["reward"])
    if progress:
        progress.update(task, completed=1)
    train_rows = read_jsonl(run.split("train"))
    val_rows = read_jsonl(run.split("validation")) if run.split("validation").is_file() else []
    pad = tokenizer.pad_token_id
    extra: dict[str, Any] = {}
    if kind == "rating":
        encoder: Any = data.encode_rating
        scores = [float(r["score"]) for r in train_rows]
        mean, std = statistics.fmean(scores), (statistics.pstdev(scores) or 1.0)
        collate: Any = partial(data.collate_ratings, pad_id=pad, mean=mean, std=std)
        extra = {"feedback": "ratings (regression)", "score_mean": mean, "score_std": std}
    elif kind == "ranking" and tc.reward.ranking_loss == "listwise":
        encoder, collate = data.encode_ranking, partial(data.collate_rankings, pad_id=pad)
        extra = {"feedback": "rankings (listwise Plackett-Luce)"}
    else:
        train_rows, val_rows = data.as_pairs(train_rows, kind), data.as_pairs(val_rows, kind)
        encoder, collate = data.encode_pair, partial(data.collate_pairs, pad_id=pad)
        extra = {"feedback": f"pairs ({kind})" if kind != "preference" else "pairs"}
    encode = partial(encode_split, encoder=encoder, tokenizer=tokenizer, max_length=tc.max_length, rejects=run.rejects)
    train_ex, val_ex = encode(train_rows, split="train"), encode(val_rows, split="validation")
    if not train_ex:
        raise TrainingError(f"No training example fits train.max_length={tc.max_length}; see {run.rejects}.")
    return lifecycle.train(
        config,
        run,
        model,
        tokenizer,
        partial(RewardLoss, settings=tc.reward),
        train_ex,
        val_ex,
        precision,
        resume,
        progress,
        collate_fn=collate,
        **extra,
    )
