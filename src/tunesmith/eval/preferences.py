"""Stage 5 for preference runs: does the tuned model prefer what people preferred, on held-out pairs?

- A policy (dpo, orpo, kto): per pair, its *implicit reward* margin (DPO/IPO/hinge/KTO: ``beta`` times the
  chosen-minus-rejected log-ratio to the base model; SimPO/ORPO: ``beta`` times the per-token mean log-prob
  gap), and the *likelihood accuracy* (does the model give the chosen answer the higher per-token log-prob?)
  of the base and the tuned model side by side. The base model's implicit reward is zero for every pair, so
  its reward accuracy is 0.5 (ties count half).
- A reward model: pairwise accuracy and margin of the tuned model against two baselines on the same pairs,
  the untrained head (chance) and "the longer answer is better" (a known shortcut of preference data).

Intervals are 95% bootstrap over pairs; McNemar's test compares two systems on the same pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch

from tunesmith.config.schema import RunConfig
from tunesmith.data.convert import rating_to_pairs
from tunesmith.eval.stats import bootstrap_ci, mcnemar, mean_score

Pair = dict[str, Any]


def as_pairs(rows: Sequence[dict[str, Any]], kind: str, pair_margin: float) -> list[dict[str, Any]]:
    """Held-out pairs from any feedback kind (ratings pair answers to one prompt whose scores differ)."""
    from tunesmith.train.reward.data import as_pairs as expand

    if kind == "rating":
        return rating_to_pairs(rows, pair_margin)
    return expand(rows, kind)


def _right(margin: float) -> float:
    """1 when the chosen answer scores higher, 0.5 on a tie, 0 otherwise."""
    return 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0


def summarise(margins: Sequence[float], name: str = "accuracy") -> dict[str, Any]:
    """Pairwise accuracy (ties half) and mean margin, each with a bootstrap interval."""
    right = [_right(m) for m in margins]
    out: dict[str, Any] = {name: sum(right) / len(right), "margin": sum(margins) / len(margins), "n": len(margins)}
    if len(margins) > 1:
        _, lo, hi = bootstrap_ci(mean_score, right, vectorised=True)
        _, mlo, mhi = bootstrap_ci(mean_score, list(margins), vectorised=True)
        out["ci"] = {name: [lo, hi], "margin": [mlo, mhi]}
    return out


def _versus(a: Sequence[float], b: Sequence[float], metric: str) -> dict[str, Any]:
    """McNemar's test of which system ranks more pairs right (a tie counts as wrong for both)."""
    gold = [1] * len(a)
    return {metric: {**mcnemar(gold, [int(x > 0) for x in a], [int(x > 0) for x in b]), "metric": metric}}


# ---------------------------------------------------------------- policies (dpo, orpo, kto)


def pair_logps(model: Any, examples: list[dict[str, Any]], pad_id: int, batch_tokens: int, autocast: bool) -> list:
    """Per encoded pair: ``(chosen sum, chosen tokens, rejected sum, rejected tokens)`` of answer log-probs."""
    from tunesmith.train.preference.data import collate_pairs
    from tunesmith.train.preference.loss import scored_batches, sequence_logps
    from tunesmith.train.sft.loss import CausalLMLoss

    scorer = CausalLMLoss(model, chunk_size=512)
    out: list[tuple[float, int, float, int]] = [(0.0, 0, 0.0, 0)] * len(examples)
    lengths, collate = [e["length"] for e in examples], partial(collate_pairs, pad_id=pad_id)

    def score(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return sequence_logps(scorer, batch["input_ids"], batch["attention_mask"], batch["labels"])

    for idx, (logps, counts) in scored_batches(model, examples, lengths, collate, batch_tokens, autocast, score):
        n = len(idx)
        for j, i in enumerate(idx):
            out[i] = (float(logps[j]), int(counts[j]), float(logps[n + j]), int(counts[n + j]))
    return out


def mean_gap(scores: tuple[float, int, float, int]) -> float:
    c, nc, r, nr = scores
    return c / max(nc, 1) - r / max(nr, 1)


def policy_report(config: RunConfig, base_scores: list, tuned_scores: list) -> dict[str, Any]:
    """The models table and paired tests of a policy run from per-pair log-probs of base and tuned."""
    tc = config.train
    beta = tc.preference.strength(tc.objective) if tc.objective in ("dpo", "orpo", "kto") else 0.1
    uses_reference = tc.preference.uses_reference(tc.objective) if tc.objective in ("dpo", "orpo", "kto") else True

    def reward_margins(scores: list, ref: list) -> list[float]:
        if not uses_reference:  # SimPO / ORPO: the reward is beta times the per-token mean log-prob
            return [beta * mean_gap(s) for s in scores]
        return [beta * ((s[0] - b[0]) - (s[2] - b[2])) for s, b in zip(scores, ref, strict=True)]

    base_margins, tuned_margins = reward_margins(base_scores, base_scores), reward_margins(tuned_scores, base_scores)
    base_like, tuned_like = [mean_gap(s) for s in base_scores], [mean_gap(s) for s in tuned_scores]
    tuned_name = f"tuned ({config.method.name})"
    models = {"base": summarise(base_margins), tuned_name: summarise(tuned_margins)}
    for name, like in (("base", base_like), (tuned_name, tuned_like)):
        extra = summarise(like, "likelihood_accuracy")
        models[name]["likelihood_accuracy"] = extra["likelihood_accuracy"]
        models[name].setdefault("ci", {})["likelihood_accuracy"] = extra.get("ci", {}).get("likelihood_accuracy")
    paired = {f"{tuned_name} vs base": _versus(tuned_like, base_like, "likelihood_accuracy")}
    if not uses_reference:
        paired[f"{tuned_name} vs base"].update(_versus(tuned_margins, base_margins, "accuracy"))
    reward = (
        "beta x chosen-minus-rejected log-ratio to the base model"
        if uses_reference
        else ("beta x chosen-minus-rejected per-token mean log-prob")
    )
    return {
        "models": models,
        "paired": paired,
        "scoring": f"implicit reward ({reward}, beta {beta}); likelihood accuracy: the chosen answer has the higher "
        "per-token log-prob",
    }


def answer_logps(model: Any, examples: list[dict[str, Any]], pad_id: int, batch_tokens: int, autocast: bool) -> list:
    """Summed answer log-prob of each encoded unpaired example (KTO's held-out data)."""
    from tunesmith.train.preference import loss
    from tunesmith.train.preference.data import collate_unpaired
    from tunesmith.train.sft.loss import CausalLMLoss

    scorer = CausalLMLoss(model, chunk_size=512)
    out = [0.0] * len(examples)
    rows = [{**e, "kl_answer_ids": e["answer_ids"]} for e in examples]  # no KL rows are needed here
    lengths, collate = [e["longest"] for e in examples], partial(collate_unpaired, pad_id=pad_id)
    score = partial(loss.answer_logps, scorer)
    for idx, logps in loss.scored_batches(model, rows, lengths, collate, batch_tokens, autocast, score):
        for j, i in enumerate(idx):
            out[i] = float(logps[j])
    return out


def unpaired_report(config: RunConfig, examples: list[dict[str, Any]], base: list, tuned: list) -> dict[str, Any]:
    """KTO on unpaired held-out answers: does the implicit reward have the sign of the label?"""
    beta = config.train.preference.strength("kto")
    signed = [beta * (t - b) * (1 if e["desirable"] else -1) for e, b, t in zip(examples, base, tuned, strict=True)]
    tuned_name = f"tuned ({config.method.name})"
    return {
        "models": {"base": summarise([0.0] * len(signed)), tuned_name: summarise(signed)},
        "paired": {},
        "scoring": f"implicit reward beta x log-ratio to the base model (beta {beta}) is positive for desirable and "
        "negative for undesirable answers (ties half); margin: the reward signed by the label",
    }


# ---------------------------------------------------------------- reward models


def pair_rewards(model: Any, examples: list[dict[str, Any]], pad_id: int, batch_tokens: int, autocast: bool) -> list:
    """``r_chosen - r_rejected`` of each encoded pair under a one-output reward model."""
    from tunesmith.train.preference.loss import scored_batches
    from tunesmith.train.reward.data import collate_pairs
    from tunesmith.train.reward.loss import rewards

    margins = [0.0] * len(examples)
    lengths, collate = [e["length"] for e in examples], partial(collate_pairs, pad_id=pad_id)

    def score(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return rewards(model, batch["input_ids"], batch["attention_mask"])

    for idx, scores in scored_batches(model, examples, lengths, collate, batch_tokens, autocast, score):
        n = len(idx)
        for j, i in enumerate(idx):
            margins[i] = float(scores[j] - scores[n + j])
    return margins


def answer_rewards(model: Any, examples: list[dict[str, Any]], pad_id: int, batch_tokens: int, autocast: bool) -> list:
    """The reward of each encoded rated answer (``encode_rating`` examples)."""
    from tunesmith.train.preference.loss import scored_batches
    from tunesmith.train.reward.data import collate_ratings
    from tunesmith.train.reward.loss import rewards

    out = [0.0] * len(examples)
    collate = partial(collate_ratings, pad_id=pad_id, mean=0.0, std=1.0)

    def score(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return rewards(model, batch["input_ids"], batch["attention_mask"])

    for idx, scores in scored_batches(model, examples, [e["length"] for e in examples], collate, batch_tokens,
                                      autocast, score):  # fmt: skip
        for j, i in enumerate(idx):
            out[i] = float(scores[j])
    return out


def across_prompts(scores: Sequence[float], margin: float, limit: int, seed: int) -> list[tuple[int, int]]:
    """``(higher, lower)`` index pairs of rated answers whose human scores differ by more than ``margin``,
    whatever their prompts (a random ``limit`` of them, seeded, when there are more)."""
    import random

    pairs = [
        (i, j) if scores[i] > scores[j] else (j, i)
        for i in range(len(scores))
        for j in range(i + 1, len(scores))
        if abs(scores[i] - scores[j]) > margin
    ]
    if len(pairs) > limit:
        pairs = random.Random(seed).sample(pairs, limit)
    return pairs


def length_margins(pairs: Sequence[dict[str, Any]]) -> list[float]:
    """The "longer answer wins" baseline: chosen minus rejected length in characters."""
    return [float(len(p["chosen"]) - len(p["rejected"])) for p in pairs]


def reward_report(config: RunConfig, untrained: list[float], longer: list[float], tuned: list[float]) -> dict:
    tuned_name = f"tuned ({config.method.name})"
    models = {"untrained head": summarise(untrained), "longer answer": summarise(longer), tuned_name: summarise(tuned)}
    models["longer answer"].pop("margin", None)  # characters, not reward units
    models["longer answer"].get("ci", {}).pop("margin", None)
    paired = {
        f"{tuned_name} vs untrained head": _versus(tuned, untrained, "accuracy"),
        f"{tuned_name} vs longer answer": _versus(tuned, longer, "accuracy"),
    }
    return {
        "models": models,
        "paired": paired,
        "scoring": "pairwise accuracy: the reward model scores the chosen "
        "answer higher (ties half); margin: mean r(chosen) - r(rejected)",
    }


def write_pair_scores(path: Any, pairs: Sequence[dict[str, Any]], columns: Mapping[str, Sequence[float]]) -> None:
    """``eval/pairs.jsonl``: each held-out pair's source and every system's margin, to inspect the errors."""
    from tunesmith.rundir import write_jsonl

    rows = []
    for i, pair in enumerate(pairs):
        row = {"source": pair.get("source"), "chosen": pair["chosen"][:200], "rejected": pair["rejected"][:200]}
        row.update({name: values[i] for name, values in columns.items()})
        rows.append(row)
    write_jsonl(path, rows)


# ---------------------------------------------------------------- RLHF (ppo)


def reward_table(scores: Mapping[str, Sequence[float]], tuned: str) -> dict[str, Any]:
    """Mean reward per model with a bootstrap interval, and a paired permutation test of tuned vs base."""
    from tunesmith.eval.stats import paired_permutation

    models: dict[str, Any] = {}
    for name, values in scores.items():
        entry: dict[str, Any] = {"reward": sum(values) / len(values), "n": len(values)}
        if len(values) > 1:
            _, lo, hi = bootstrap_ci(mean_score, list(values), vectorised=True)
            entry["ci"] = {"reward": [lo, hi]}
        models[name] = entry
    paired = {}
    if "base" in scores and tuned in scores:
        test = paired_permutation(list(scores[tuned]), list(scores["base"]))
        paired[f"{tuned} vs base"] = {"reward": {**test, "metric": "reward"}}
    return {"models": models, "paired": paired}
