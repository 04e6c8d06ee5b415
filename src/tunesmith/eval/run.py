"""Stage 5: score the tuned model and the base model's prompting baselines on the same held-out rows."""

from __future__ import annotations

import json
import time
from typing import Any

from tunesmith.adapters import get_method
from tunesmith.config.schema import RunConfig
from tunesmith.data.split import cap_rows
from tunesmith.errors import DataError, RunDirError
from tunesmith.eval.calibration import batch_calibrate
from tunesmith.eval.metrics import by_group, classification_metrics
from tunesmith.eval.report import write_report
from tunesmith.eval.scoring import predict, score_labels
from tunesmith.models.load import load_model
from tunesmith.rundir import RunDir, read_jsonl
from tunesmith.train import env


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
    raw = score_labels(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        labels,
        batch_tokens=config.eval.batch_tokens,
        autocast=autocast,
        progress=progress,
        description=f"eval: {name}",
    )
    gold = [r["label"] for r in rows]
    groups = [r.get("groups", {}) for r in rows]
    rules = {"none": raw, "batch": batch_calibrate(raw)}
    out: dict[str, Any] = {}
    for rule, scores in rules.items():
        pred = predict(scores)
        metrics = classification_metrics(gold, pred, labels)
        metrics["groups"] = by_group(gold, pred, groups, config.eval.groups, labels)
        metrics["predictions"] = pred
        out[rule] = metrics
    headline = out[config.eval.calibration]
    headline["calibration"] = config.eval.calibration
    headline["other_rule"] = {
        k: v
        for k, v in out["batch" if config.eval.calibration == "none" else "none"].items()
        if k in ("accuracy", "macro_f1", "weighted_f1", "predicted_counts")
    }
    headline["scores"] = raw
    headline["seconds"] = round(time.perf_counter() - t0, 1)
    return headline


def evaluate(config: RunConfig, run: RunDir, progress: Any = None) -> dict[str, Any]:
    """Evaluate base zero-shot and the tuned model; write ``eval/report.json`` and ``eval/report.md``."""
    manifest = json.loads(run.manifest.read_text()) if run.manifest.is_file() else None
    if manifest is None:
        raise RunDirError(f"{run.root}: no prepared data (data/manifest.json); run `tunesmith run` or `data prepare`.")
    if manifest["format"] != "classification":
        raise DataError(f"eval: format '{manifest['format']}' has no label metrics yet; only classification does.")
    split = config.eval.split
    if not run.split(split).is_file():
        raise DataError(f"eval: the prepared data has no '{split}' split ({run.split(split)}).")
    rows = cap_rows(read_jsonl(run.split(split)), config.eval.max_rows, config.seed)
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
    results: dict[str, Any] = {}
    task = progress.add_task(f"loading {config.model.base}", total=1) if progress else None
    base, tokenizer = load_model(config.model.base, config.model.gguf_file, config.model.chat_template)
    if progress:
        progress.update(task, completed=1)
    if "zero-shot" in config.eval.baselines:
        results["base zero-shot"] = _evaluate_model(
            base, tokenizer, rows, labels, config, autocast, progress, "base zero-shot"
        )
    tuned = method.load(base, trained_dir)
    if hasattr(tuned, "merge_and_unload"):
        tuned = tuned.merge_and_unload()
    results[f"tuned ({config.method.name})"] = _evaluate_model(
        tuned, tokenizer, rows, labels, config, autocast, progress, "tuned"
    )
    report = {
        "run": config.name,
        "split": split,
        "rows": len(rows),
        "labels": labels,
        "gold_counts": {lab: sum(r["label"] == lab for r in rows) for lab in labels},
        "scoring": "label log-likelihood after the chat-formatted prompt"
        + (", batch-calibrated (label prior divided out)" if config.eval.calibration == "batch" else ", argmax"),
        "base_model": config.model.base,
        "method": config.method.name,
        "models": results,
    }
    train_summary = run.train_summary
    if train_summary.is_file():
        report["training"] = json.loads(train_summary.read_text())
    write_report(report, run.eval, rows)
    return report
