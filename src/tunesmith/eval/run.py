"""Stage 5: score the tuned model and the base model's prompting baselines on the same held-out rows."""

from __future__ import annotations

import json
import time
from typing import Any

from tunesmith.adapters import for_inference, get_method
from tunesmith.config.schema import RunConfig
from tunesmith.data.format import chunk_example, tokenize_example
from tunesmith.data.split import cap_rows
from tunesmith.errors import DataError, RunDirError
from tunesmith.eval.answers import answer_rows, paired_chrf, score_answers
from tunesmith.eval.calibration import batch_calibrate
from tunesmith.eval.classifier import evaluate_classifier
from tunesmith.eval.metrics import classification_metrics
from tunesmith.eval.perplexity import held_out_loss
from tunesmith.eval.report import write_report
from tunesmith.eval.scoring import predict, score_labels
from tunesmith.eval.summary import group_keys, label_summary, loss_summary, paired_losses, paired_tests
from tunesmith.models.load import load_configured, load_configured_classifier
from tunesmith.rundir import RunDir, read_jsonl
from tunesmith.train import env, lifecycle


def _evaluate_model(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    labels: list[str],
    config: RunConfig,
    autocast: bool,
    progress: Any,
    name: str,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    prompts: list[Any] = [r["prompt"] for r in rows]
    if hasattr(model, "tunesmith_fewshot"):  # demonstrations as earlier chat turns
        prompts = model.tunesmith_fewshot.messages(prompts)
    if config.eval.classify_by == "generate":
        return _classify_by_generation(model, tokenizer, prompts, rows, labels, config, autocast, progress, name, t0)
    raw = score_labels(
        model,
        tokenizer,
        prompts,
        labels,
        batch_tokens=config.eval.batch_tokens,
        autocast=autocast,
        progress=progress,
        description=f"eval: {name}",
    )
    gold = [r["label"] for r in rows]
    rules = {"none": raw, "batch": batch_calibrate(raw)}
    out: dict[str, Any] = {}
    for rule, scores in rules.items():
        pred = predict(scores)
        metrics = classification_metrics(gold, pred, labels)
        metrics["predictions"] = pred
        out[rule] = metrics
    headline = out[config.eval.calibration]
    keys = group_keys(rows, config.eval.groups)
    headline.update(label_summary(gold, headline["predictions"], rows, labels, keys, config.eval.min_group_rows))
    headline["calibration"] = config.eval.calibration
    headline["other_rule"] = {
        k: v
        for k, v in out["batch" if config.eval.calibration == "none" else "none"].items()
        if k in ("accuracy", "macro_f1", "weighted_f1", "predicted_counts")
    }
    headline["scores"] = raw
    headline["seconds"] = round(time.perf_counter() - t0, 1)
    return headline


def _classify_by_generation(
    model: Any,
    tokenizer: Any,
    prompts: list[Any],
    rows: list[dict[str, Any]],
    labels: list[str],
    config: RunConfig,
    autocast: bool,
    progress: Any,
    name: str,
    t0: float,
) -> dict[str, Any]:
    """Free answers, parsed to the first label word; an answer naming no label is wrong and counted."""
    from tunesmith.eval.answers import write_answers
    from tunesmith.eval.generate import parse_label

    answers = write_answers(model, tokenizer, prompts, config, autocast, progress, f"eval: {name}")
    unparsed = "(no label)"
    pred = [parse_label(a, labels) or unparsed for a in answers]
    gold = [r["label"] for r in rows]
    metrics = classification_metrics(gold, pred, labels)
    metrics.update(
        label_summary(gold, pred, rows, labels, group_keys(rows, config.eval.groups), config.eval.min_group_rows)
    )
    metrics["unparsed"] = pred.count(unparsed)
    metrics["predictions"], metrics["answers"] = pred, answers
    metrics["scores"] = [{lab: float(p == lab) for lab in labels} for p in pred]
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    return metrics


def _with_demonstrations(base: Any, run: RunDir, config: RunConfig, k: int, score: Any) -> dict[str, Any]:
    """Score the base model with ``k`` balanced training demonstrations in front of each query."""
    from tunesmith.adapters import fewshot
    from tunesmith.config.schema import FewshotMethod

    artifact = fewshot.fit(read_jsonl(run.split("train")), FewshotMethod(k=k), config.seed)
    base.tunesmith_fewshot = fewshot.Demonstrations(artifact)
    try:
        result: dict[str, Any] = score(base)
    finally:
        del base.tunesmith_fewshot
    result["demonstrations"] = [d["prompt"][:80] for d in artifact["demonstrations"]]
    return result


def _perplexity_examples(
    rows: list[dict[str, Any]], tokenizer: Any, kind: str, max_length: int
) -> tuple[list[dict], list[int]]:
    """Raw text: every token, cut into max_length pieces. Instructions: the completion tokens only.

    Also returns the row each example came from: a long document gives several pieces, and groups, paired
    tests and tokenizers that cut differently (vocabulary extension) all need the score per row.
    """
    examples: list[dict[str, list[int]]] = []
    owners: list[int] = []
    for i, row in enumerate(rows):
        pieces = (
            chunk_example(tokenize_example(row, tokenizer, "all"), max_length)
            if kind == "text"
            else [tokenize_example(row, tokenizer, "completion")]
        )
        examples += pieces
        owners += [i] * len(pieces)
    return examples, owners


def per_row(per_example: list[list[float]], owners: list[int], rows: int) -> list[list[float]]:
    """``[nll_sum, tokens]`` per row from those of its examples (pieces of one document add up)."""
    out = [[0.0, 0] for _ in range(rows)]
    for (nll, tokens), row in zip(per_example, owners, strict=True):
        out[row][0] += nll
        out[row][1] += tokens
    return out


def _scored_words(row: dict[str, Any], kind: str) -> int:
    """Whitespace words of the text a perplexity score covers (the raw text, or the answers): the loss per word
    compares models whose tokenizers differ (vocabulary extension), where the loss per token cannot."""
    if kind == "text":
        return len(row["text"].split())
    if "completion" in row:
        return len(row["completion"].split())
    return sum(len(m["content"].split()) for m in row.get("messages", []) if m.get("role") == "assistant")


def _evaluate_head(
    config: RunConfig,
    run: RunDir,
    rows: list[dict[str, Any]],
    labels: list[str],
    method: Any,
    trained_dir: Any,
    progress: Any,
) -> dict[str, Any]:
    """A trained classification head against the majority-class baseline."""
    base, tokenizer = load_configured_classifier(config.model, labels)
    base.to(env.device_name())
    tuned = for_inference(method.load(base, trained_dir))
    results = evaluate_classifier(
        tuned,
        tokenizer,
        rows,
        read_jsonl(run.split("train")),
        labels,
        config.eval.groups,
        config.train.max_length,
        config.eval.batch_tokens,
        progress,
        config.eval.min_group_rows,
    )
    results[f"tuned ({config.method.name})"] = results.pop("tuned")
    tuned_name = f"tuned ({config.method.name})"
    report: dict[str, Any] = {
        "run": config.name,
        "task": "labels",
        "split": config.eval.split,
        "rows": len(rows),
        "base_model": config.model.base,
        "method": config.method.name,
        "models": results,
        "labels": labels,
        "gold_counts": {lab: sum(r["label"] == lab for r in rows) for lab in labels},
        "scoring": "argmax of the trained classification head; baseline: the most frequent training label",
        "paired": paired_tests([r["label"] for r in rows], results, labels, tuned_name),
    }
    return finish_report(report, run, rows)


SHOT_KINDS = ("classification", "instruction", "prompt_completion")  # solved examples can go before a query
FEEDBACK_KINDS = ("preference", "ranking", "rating", "choice", "unpaired")  # scored by eval/feedback_run.py


def evaluate(config: RunConfig, run: RunDir, progress: Any = None) -> dict[str, Any]:
    """Evaluate the base model (prompting baselines) and the tuned model on the same held-out rows.

    Classification data is scored by label log-likelihood (accuracy, F1); raw text and instruction data by
    held-out loss and perplexity (of every token, or of the completions). Writes ``eval/report.json``,
    ``eval/report.md`` and, for labels, ``eval/predictions.jsonl``.
    """
    manifest = json.loads(run.manifest.read_text()) if run.manifest.is_file() else None
    if manifest is None:
        raise RunDirError(f"{run.root}: no prepared data (data/manifest.json); run `tunesmith run` or `data prepare`.")
    kind = manifest["format"]
    split = config.eval.split
    if not run.split(split).is_file():
        raise DataError(f"eval: the prepared data has no '{split}' split ({run.split(split)}).")
    rows = cap_rows(read_jsonl(run.split(split)), config.eval.max_rows, config.seed)
    if not rows:
        raise DataError(f"eval: the '{split}' split is empty after preparation; nothing to evaluate.")
    labels = manifest["labels"]
    autocast = env.resolve_precision(config.train.precision) == "bf16"
    env.set_threads(config.train.threads)

    method = get_method(config.method.name)
    trained_dir = run.adapter if method.SAVES_ADAPTER else run.model
    if not trained_dir.is_dir():
        raise RunDirError(
            f"{run.root}: no trained {'adapter' if method.SAVES_ADAPTER else 'model'} at {trained_dir}; "
            "train first (`tunesmith train`)."
        )
    if config.train.objective == "classify":
        return _evaluate_head(config, run, rows, labels, method, trained_dir, progress)
    if config.train.objective in ("reward", "ppo") or kind in FEEDBACK_KINDS:
        from tunesmith.eval.feedback_run import evaluate_feedback

        return evaluate_feedback(config, run, rows, kind, method, trained_dir, autocast, progress)
    task = lifecycle.loading(progress, config.model.base)
    base, tokenizer = load_configured(config.model)
    base.to(env.device_name())
    if progress:
        progress.update(task, completed=1)

    if kind == "classification":

        def score(model: Any, name: str, tok: Any = tokenizer) -> dict[str, Any]:
            return _evaluate_model(model, tok, rows, labels, config, autocast, progress, name)

        base_name = "base zero-shot"
    else:
        examples, owners = _perplexity_examples(rows, tokenizer, kind, config.train.max_length)
        words = sum(_scored_words(r, kind) for r in rows)
        keys = group_keys(rows, config.eval.groups)

        def score(model: Any, name: str, tok: Any = tokenizer) -> dict[str, Any]:
            t0 = time.perf_counter()
            exs, own = (
                (examples, owners)
                if tok is tokenizer
                else _perplexity_examples(rows, tok, kind, config.train.max_length)
            )
            if hasattr(model, "tunesmith_fewshot"):  # the same answers, after the demonstrations
                contexts = model.tunesmith_fewshot.messages([r["prompt"] for r in rows])
                exs = [
                    tokenize_example({"prompt": c, "completion": r["completion"]}, tokenizer, "completion")
                    for r, c in zip(rows, contexts, strict=True)
                ]
                own = list(range(len(rows)))
            out: dict[str, Any] = held_out_loss(
                model, exs, tok.pad_token_id, config.eval.batch_tokens, autocast, progress, f"eval: {name}"
            )
            out["per_example"] = per_row(out["per_example"], own, len(rows))  # a row, not a piece, is the unit
            out["nll_per_word"] = out["loss"] * out["tokens"] / max(words, 1)  # comparable across tokenizers
            out.update(loss_summary(out["per_example"], rows, keys, config.eval.min_group_rows))
            out["seconds"] = round(time.perf_counter() - t0, 1)
            return out

        base_name = "base"
    answering = answer_rows(rows, config) if config.eval.generate and kind != "classification" else []
    if answering:
        plain = score

        def score(model: Any, name: str, tok: Any = tokenizer) -> dict[str, Any]:
            out = plain(model, name, tok)
            out["generation"] = score_answers(model, tok, answering, config, autocast, progress, name)
            return out

    results: dict[str, Any] = {}
    if "zero-shot" in config.eval.baselines:
        results[base_name] = score(base, base_name)
    shots = {"one-shot": 1, "few-shot": config.eval.shots}
    for baseline in (b for b in config.eval.baselines if b in shots):
        if kind in SHOT_KINDS:
            name = f"base {shots[baseline]}-shot"
            results[name] = _with_demonstrations(base, run, config, shots[baseline], lambda m, n=name: score(m, n))
    if config.eval.encoder_baseline and kind == "classification":
        from tunesmith.eval.encoder import encoder_baseline

        name, metrics = encoder_baseline(config, run, progress)
        results[name] = metrics
    keep = Retention(config, base, tokenizer, autocast, progress)
    tuned_tokenizer = tokenizer
    if config.model.new_tokens:  # the adapter holds the new rows; the base needs room for them first
        from tunesmith.models.vocab import resize_to_saved

        tuned_tokenizer = resize_to_saved(base, trained_dir)
    tuned = for_inference(method.load(base, trained_dir))
    results[f"tuned ({config.method.name})"] = score(tuned, "tuned", tuned_tokenizer)
    report: dict[str, Any] = {
        "run": config.name,
        "task": "labels" if kind == "classification" else "perplexity",
        "split": split,
        "rows": len(rows),
        "base_model": config.model.base,
        "method": config.method.name,
        "models": results,
    }
    if kind == "classification":
        report["labels"] = labels
        report["gold_counts"] = {lab: sum(r["label"] == lab for r in rows) for lab in labels}
        report["paired"] = paired_tests([r["label"] for r in rows], results, labels, f"tuned ({config.method.name})")
        report["scoring"] = "label log-likelihood after the chat-formatted prompt" + (
            ", batch-calibrated (label prior divided out)" if config.eval.calibration == "batch" else ", argmax"
        )
        if config.eval.classify_by == "generate":
            report["scoring"] = (
                f"free generation (greedy, up to {config.eval.max_new_tokens} tokens), first label word in the answer"
            )
    else:
        report["scoring"] = "mean loss per " + ("token of held-out text" if kind == "text" else "completion token")
        report["paired"] = paired_losses(results, f"tuned ({config.method.name})")
        if answering:
            generated = {n: m["generation"] for n, m in results.items() if "generation" in m}
            for pair, test in paired_chrf(generated, f"tuned ({config.method.name})").items():
                report["paired"].setdefault(pair, {}).update(test)
            report["generation_rows"] = len(answering)
        if config.model.new_tokens:
            report["scoring"] += "; the tuned model reads with its extended vocabulary: compare nll per word"
    forgetting = keep.compare(tuned, tuned_tokenizer)
    if forgetting is not None:
        report["forgetting"] = forgetting
    return finish_report(report, run, rows)


def finish_report(report: dict[str, Any], run: RunDir, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Add the training summary and the overfitting analysis; write report.json/md and report.html."""
    from tunesmith.eval.curves import overfitting, read_curves
    from tunesmith.eval.html import write_report_html

    if run.train_summary.is_file():
        report["training"] = json.loads(run.train_summary.read_text())
    if run.metrics.is_file():
        report["overfitting"] = overfitting(read_curves(run.metrics))
    write_report(report, run.eval, rows)
    write_report_html(run.root)
    return report


class Retention:
    """The retention suite (``eval.retention``) measured on the base now and on the tuned model later."""

    def __init__(self, config: RunConfig, base: Any, tokenizer: Any, autocast: bool, progress: Any) -> None:
        from tunesmith.eval import retention

        self.spec, self.autocast, self.base = config.eval.retention, autocast, None
        if self.spec == "none":
            return
        self.texts, self.tasks = retention.load_suite(retention.suite_dir(self.spec))
        task = progress.add_task("eval: retention (base)", total=1) if progress else None
        self.base = retention.measure(base, tokenizer, self.texts, self.tasks, autocast)
        if progress:
            progress.update(task, completed=1)

    def compare(self, tuned: Any, tokenizer: Any) -> dict[str, Any] | None:
        from tunesmith.eval import retention

        if self.base is None:
            return None
        after = retention.measure(tuned, tokenizer, self.texts, self.tasks, self.autocast)
        return retention.forgetting(self.base, after, self.spec)
