"""Stage 5 for runs that learn from feedback: reward models, preference-tuned policies (dpo, orpo, kto) and ppo.

:func:`evaluate_feedback` is what :func:`tunesmith.eval.run.evaluate` hands these runs to; the metrics
themselves are in :mod:`tunesmith.eval.preferences`. Each writes the same report files as every other run
(``finish_report``), plus ``pairs.jsonl`` (every held-out pair's margins) or ``answers.jsonl`` (ppo).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tunesmith.adapters import for_inference
from tunesmith.config.schema import RunConfig
from tunesmith.errors import DataError
from tunesmith.eval import preferences as prefs
from tunesmith.eval.run import Retention, finish_report
from tunesmith.models.load import load_configured, load_configured_classifier
from tunesmith.rundir import RunDir, write_jsonl
from tunesmith.train import env


def evaluate_feedback(
    config: RunConfig,
    run: RunDir,
    rows: list[dict[str, Any]],
    kind: str,
    method: Any,
    trained_dir: Any,
    autocast: bool,
    progress: Any,
) -> dict[str, Any]:
    """Score a reward, ppo or preference-tuned run on the held-out ``rows`` and write its report."""
    if config.train.objective == "reward":
        return _evaluate_reward(config, run, rows, kind, method, trained_dir, autocast)
    if config.train.objective == "ppo":
        return _evaluate_ppo(config, run, rows, method, trained_dir, autocast, progress)
    return _evaluate_policy(config, run, rows, kind, method, trained_dir, autocast, progress)


def _report(config: RunConfig, rows: list, scored: int, found: dict[str, Any]) -> dict:
    return {
        "run": config.name,
        "task": "preferences",
        "split": config.eval.split,
        "rows": len(rows),
        "scored": scored,
        "base_model": config.model.base,
        "method": config.method.name,
        **found,
    }


MIN_SAME_PROMPT_PAIRS = 20  # fewer pairs of answers to one prompt: ratings are compared across prompts


def _fitting(
    rows: list[dict[str, Any]], encode: Callable[[dict[str, Any], Any], dict[str, Any]], tokenizer: Any, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The held-out rows whose encoding fits ``train.max_length``, and their encodings."""
    kept = [(r, ex) for r, ex in ((r, encode(r, tokenizer)) for r in rows) if ex["longest"] <= limit]
    if not kept:
        raise DataError(f"eval: no held-out example fits train.max_length={limit}.")
    return [r for r, _ in kept], [ex for _, ex in kept]


def _evaluate_reward(
    config: RunConfig,
    run: RunDir,
    rows: list[dict[str, Any]],
    kind: str,
    method: Any,
    trained_dir: Any,
    autocast: bool,
) -> dict[str, Any]:
    """A reward model's held-out pairwise accuracy against the untrained head and the longer-answer rule."""
    from tunesmith.train.reward.data import encode_pair

    env.set_seed(config.seed)  # the untrained head is the one training started from
    base, tokenizer = load_configured_classifier(config.model, ["reward"])
    same_prompt = prefs.as_pairs(rows, kind, config.data.pair_margin)
    if kind == "rating" and len(same_prompt) < MIN_SAME_PROMPT_PAIRS:
        return _evaluate_ratings(config, run, rows, base, tokenizer, method, trained_dir, autocast)
    pairs, examples = _fitting(same_prompt, encode_pair, tokenizer, config.train.max_length)
    base.to(env.device_name())
    pad, budget = tokenizer.pad_token_id, config.eval.batch_tokens
    untrained = prefs.pair_rewards(base, examples, pad, budget, autocast)
    tuned = prefs.pair_rewards(for_inference(method.load(base, trained_dir)), examples, pad, budget, autocast)
    longer = prefs.length_margins(pairs)
    prefs.write_pair_scores(
        run.eval / "pairs.jsonl", pairs, {"untrained": untrained, "longer": longer, "tuned": tuned}
    )
    found = prefs.reward_report(config, untrained, longer, tuned)
    return finish_report(_report(config, rows, len(pairs), found), run, [])


def _evaluate_ratings(
    config: RunConfig,
    run: RunDir,
    rows: list[dict[str, Any]],
    base: Any,
    tokenizer: Any,
    method: Any,
    trained_dir: Any,
    autocast: bool,
) -> dict[str, Any]:
    """Ratings of one answer per prompt (user feedback): does the reward order any two held-out answers as
    their human scores do? Pairs across prompts, plus each model's Spearman correlation with the scores."""
    from scipy.stats import spearmanr

    from tunesmith.train.reward.data import encode_rating

    kept, examples = _fitting(rows, encode_rating, tokenizer, config.train.max_length)
    human = [float(r["score"]) for r in kept]
    pairs = prefs.across_prompts(human, config.data.pair_margin, 5000, config.seed)
    if not pairs:
        raise DataError("eval: every held-out rating has the same score; there is nothing to order.")
    base.to(env.device_name())
    pad, budget = tokenizer.pad_token_id, config.eval.batch_tokens
    scored = {"untrained": prefs.answer_rewards(base, examples, pad, budget, autocast)}
    scored["tuned"] = prefs.answer_rewards(for_inference(method.load(base, trained_dir)), examples, pad, budget,
                                           autocast)  # fmt: skip
    scored["longer"] = [float(len(r["response"])) for r in kept]
    margins = {name: [values[i] - values[j] for i, j in pairs] for name, values in scored.items()}
    found = prefs.reward_report(config, margins["untrained"], margins["longer"], margins["tuned"])
    names = {"untrained": "untrained head", "longer": "longer answer", "tuned": f"tuned ({config.method.name})"}
    for key, name in names.items():
        rho = spearmanr(scored[key], human).statistic
        found["models"][name]["spearman"] = None if rho != rho else float(rho)  # NaN when a side is constant
    found["scoring"] = (
        f"one rated answer per prompt: pairwise accuracy over {len(pairs)} pairs of held-out answers (from "
        f"{len(kept)} ratings, across prompts) whose human scores differ, and each model's Spearman correlation "
        "with the scores; the pairs share answers, so their intervals are too narrow"
    )
    return finish_report(_report(config, rows, len(pairs), found), run, [])


def _evaluate_ppo(
    config: RunConfig,
    run: RunDir,
    rows: list[dict[str, Any]],
    method: Any,
    trained_dir: Any,
    autocast: bool,
    progress: Any,
) -> dict[str, Any]:
    """Greedy answers of the base and the PPO-tuned model to held-out prompts, scored by the run's reward."""
    import torch

    from tunesmith.eval.generate import generate
    from tunesmith.train.ppo.recipe import prompts_of
    from tunesmith.train.ppo.rewards import load_scorer

    prompts = prompts_of(rows)[: config.eval.generate_rows]
    if not prompts:
        raise DataError(f"eval: the '{config.eval.split}' split has no prompts to answer.")
    scorer = load_scorer(str(config.train.ppo.reward), config.train.ppo.reward_label, torch.device(env.device_name()))
    base, tokenizer = load_configured(config.model)
    base.to(env.device_name())
    keep = Retention(config, base, tokenizer, autocast, progress)
    answers: dict[str, list[str]] = {}
    budget = config.train.ppo.max_new_tokens
    answers["base"] = generate(base, tokenizer, prompts, max_new_tokens=budget, autocast=autocast)
    tuned = for_inference(method.load(base, trained_dir))
    tuned_name = f"tuned ({config.method.name})"
    answers[tuned_name] = generate(tuned, tokenizer, prompts, max_new_tokens=budget, autocast=autocast)
    scores = {name: scorer(prompts, texts) for name, texts in answers.items()}
    found = prefs.reward_table(scores, tuned_name)
    found["scoring"] = f"mean reward ({config.train.ppo.reward}) of greedy answers (up to {budget} tokens)"
    report = {**_report(config, rows, len(prompts), found), "task": "rewards"}
    forgetting = keep.compare(tuned, tokenizer)
    if forgetting is not None:
        report["forgetting"] = forgetting
    write_jsonl(
        run.eval / "answers.jsonl",
        [
            {"prompt": p, **{n: {"answer": answers[n][i], "reward": scores[n][i]} for n in answers}}
            for i, p in enumerate(prompts)
        ],
    )
    return finish_report(report, run, [])


def _evaluate_policy(
    config: RunConfig,
    run: RunDir,
    rows: list[dict[str, Any]],
    kind: str,
    method: Any,
    trained_dir: Any,
    autocast: bool,
    progress: Any,
) -> dict[str, Any]:
    """A preference-tuned policy against its base on held-out pairs, and what it kept of general knowledge."""
    from tunesmith.train.preference.data import encode_pair, encode_unpaired

    base, tokenizer = load_configured(config.model)
    base.to(env.device_name())
    pad, budget, limit = tokenizer.pad_token_id, config.eval.batch_tokens, config.train.max_length
    keep = Retention(config, base, tokenizer, autocast, progress)
    if kind == "unpaired":
        _, examples = _fitting(rows, encode_unpaired, tokenizer, limit)
        before = prefs.answer_logps(base, examples, pad, budget, autocast)
        tuned = for_inference(method.load(base, trained_dir))
        after_answers = prefs.answer_logps(tuned, examples, pad, budget, autocast)
        found = prefs.unpaired_report(config, examples, before, after_answers)
        scored = len(examples)
    else:
        pairs, examples = _fitting(prefs.as_pairs(rows, kind, config.data.pair_margin), encode_pair, tokenizer, limit)
        before = prefs.pair_logps(base, examples, pad, budget, autocast)
        tuned = for_inference(method.load(base, trained_dir))
        after = prefs.pair_logps(tuned, examples, pad, budget, autocast)
        found = prefs.policy_report(config, before, after)
        gaps = {"base": [prefs.mean_gap(s) for s in before], "tuned": [prefs.mean_gap(s) for s in after]}
        prefs.write_pair_scores(run.eval / "pairs.jsonl", pairs, gaps)
        scored = len(pairs)
    report = _report(config, rows, scored, found)
    forgetting = keep.compare(tuned, tokenizer)
    if forgetting is not None:
        report["forgetting"] = forgetting
    return finish_report(report, run, [])
