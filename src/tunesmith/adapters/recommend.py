"""`tunesmith plan`: every method's cost on the configured model and data, the machine's memory, and a
recommendation that says why. The numbers come from :mod:`tunesmith.adapters.plan`.

The recommendation follows the data first and the machine second:

- fewer than ``TOO_FEW_ROWS`` training rows: ``fewshot`` (no training; the rows become demonstrations);
- fewer than ``FEW_ROWS`` training rows: the method with the fewest trained parameters that fits (``ia3``),
  since millions of parameters overfit a few dozen examples;
- ``MANY_ROWS`` rows or more, and full fine-tuning fits: ``full``;
- otherwise ``lora`` if it fits, else ``qlora`` (a quantized base), else ``freeze`` of the top blocks.

"Fits" means the estimated peak is at most ``HEADROOM`` of the memory available now (CPU RAM, or CUDA
memory on a GPU machine).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from tunesmith.adapters import plan
from tunesmith.config.schema import PROMPT_LEARNING, MethodConfig, RunConfig
from tunesmith.errors import TunesmithError

TOO_FEW_ROWS = 20
FEW_ROWS = 100
MANY_ROWS = 20_000
HEADROOM = 0.8
CATALOGUE: dict[str, dict[str, Any]] = {
    "full": {"name": "full"},
    "freeze": {"name": "freeze", "last_n_layers": 2},
    "lora": {"name": "lora"},
    "dora": {"name": "dora"},
    "qlora": {"name": "qlora"},
    "ia3": {"name": "ia3"},
    "prompt": {"name": "prompt"},
    "ptuning": {"name": "ptuning"},
    "prefix": {"name": "prefix"},
    "adapters": {"name": "adapters"},
}


def device_memory() -> dict[str, Any]:
    """The device training would use and the memory available on it now, in bytes."""
    import torch

    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return {"device": f"cuda ({torch.cuda.get_device_name()})", "available": free, "total": total}
    info: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return {"device": "cpu", "available": info.get("MemAvailable", 0), "total": info.get("MemTotal", 0)}


def _answered(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The (prompt, answer) rows a prepared row trains as: both answers of a pair, every ranked or rated
    response; supervised and raw-text rows as they are."""
    from tunesmith.data.format import _prompt_messages

    if "chosen" in row and "rejected" in row:
        answers = [row["chosen"], row["rejected"]]
    elif "responses" in row or "response" in row:
        answers = row.get("responses") or [row["response"]]
    else:
        return [row]
    prompt = _prompt_messages(row["prompt"]) if isinstance(row["prompt"], str) else row["prompt"]
    return [{"prompt": prompt, "completion": a} for a in answers]


def _data_profile(config: RunConfig, tokenizer: Any) -> dict[str, Any]:
    """Training rows and the share of their tokens that carry a label, from the prepared data (prepared
    into a scratch directory; nothing is written to the run)."""
    from tunesmith.data.format import tokenize_example
    from tunesmith.data.prepare import prepare_data
    from tunesmith.rundir import RunDir, read_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp))
        result = prepare_data(config.data, run, seed=config.seed)
        rows = read_jsonl(run.split("train"))
    sample = rows[:256]
    labelled = total = 0
    for row in sample:
        if config.train.objective == "classify":
            total += len(tokenizer(row.get("text", ""))["input_ids"])
            continue
        for answered in _answered(row):  # a preference pair trains as two rows, a ranking as one per response
            ex = tokenize_example(answered, tokenizer, config.train.loss_on)
            labelled += sum(1 for t in ex["labels"] if t != -100)
            total += min(len(ex["input_ids"]), config.train.max_length)
    return {
        "train_rows": result.counts.get("train", 0),
        "labels": result.labels,
        "labelled_fraction": labelled / total if total and labelled else 1.0,
        "example_length": max(total // max(len(sample), 1), 8),
    }


def recommend(estimates: dict[str, plan.Estimate], rows: int, available: int) -> tuple[str, str]:
    """(method, why) for ``rows`` training rows and ``available`` bytes."""
    fits = {name: e.peak <= HEADROOM * available for name, e in estimates.items()}
    gb = plan.GB

    def why(name: str, reason: str) -> str:
        e = estimates[name]
        return (
            f"{reason}; {name} trains {e.trainable:,} parameters ({100 * e.trainable / e.total:.2f}%), needs about "
            f"{e.peak / gb:.1f} GB of the {available / gb:.1f} GB available, and a step costs "
            f"{e.step_cost:.2f}x a full fine-tuning step"
        )

    if rows < TOO_FEW_ROWS:
        return "fewshot", (
            f"{rows} training rows are too few to train on: put them in front of each query as demonstrations "
            "(method: {name: fewshot, k: 4}); no weights change"
        )
    if rows < FEW_ROWS and fits.get("ia3"):
        return "ia3", why("ia3", f"{rows} training rows are few: the fewest trained parameters overfit least")
    if rows >= MANY_ROWS and fits.get("full"):
        return "full", why("full", f"{rows:,} training rows can move every weight, and full fine-tuning fits")
    for name, reason in (
        ("lora", f"{rows:,} training rows suit a low-rank adapter"),
        ("qlora", "LoRA does not fit; a 4-bit base does"),
        ("freeze", "no adapter method fits; training only the top blocks does"),
    ):
        if fits.get(name):
            return name, why(name, reason)
    smallest = min(estimates, key=lambda n: estimates[n].peak)
    return smallest, why(smallest, "nothing fits the available memory with headroom; this needs the least")


def plan_for_config(config: RunConfig) -> dict[str, Any]:
    """Estimates for every method in the catalogue (the configured one as configured), and a recommendation."""
    from tunesmith.models.load import (
        configured_source,
        load_configured,
        load_configured_classifier,
        load_tokenizer,
    )
    from tunesmith.train import env

    if config.train.release_memory:
        env.release_freed_memory()
    precision = env.resolve_precision(config.train.precision)
    if config.train.objective in ("classify", "reward"):  # the head's size: the labels, or one reward
        tokenizer = load_tokenizer(configured_source(config.model))
        profile = _data_profile(config, tokenizer)
        labels = profile["labels"] if config.train.objective == "classify" else ["reward"]
        model, _ = load_configured_classifier(config.model, labels)
    else:
        model, tokenizer = load_configured(config.model)
        profile = _data_profile(config, tokenizer)
    runtime = plan.baseline_rss()
    methods = dict(CATALOGUE)
    methods[config.method.name] = config.method.model_dump()
    estimates: dict[str, plan.Estimate] = {}
    skipped: dict[str, str] = {}
    for name, raw in methods.items():
        method_config = TypeAdapter(MethodConfig).validate_python(raw)
        train = config.train.model_copy(update={"packing": config.train.packing and name not in PROMPT_LEARNING})
        try:
            estimates[name] = plan.estimate(
                model,
                method_config,
                train,
                precision,
                runtime,
                labelled_fraction=profile["labelled_fraction"],
                example_length=profile["example_length"],
            )
        except (ValueError, ImportError, TunesmithError) as exc:  # prefix on an encoder, no bitsandbytes, ...
            skipped[name] = str(exc).split(";")[0]
    memory = device_memory()
    choice, reason = recommend(estimates, profile["train_rows"], memory["available"])
    return {
        "model": config.model.base,
        "objective": config.train.objective,
        "precision": precision,
        "batch_tokens": config.train.batch_tokens,
        "gradient_checkpointing": config.train.gradient_checkpointing,
        "train_rows": profile["train_rows"],
        "labelled_fraction": round(profile["labelled_fraction"], 4),
        "example_length": profile["example_length"],
        "device": memory["device"],
        "memory_available_gb": round(memory["available"] / plan.GB, 2),
        "memory_total_gb": round(memory["total"] / plan.GB, 2),
        "configured": config.method.name,
        "recommended": choice,
        "why": reason,
        "methods": {name: e.as_dict() for name, e in estimates.items()},
        "not_applicable": skipped,
    }
