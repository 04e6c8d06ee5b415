"""The steps every objective takes before and after the engine: environment, outputs, summary."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.adapters import count_parameters
from tunesmith.config.schema import RunConfig
from tunesmith.errors import DataError
from tunesmith.rundir import RunDir, write_json
from tunesmith.train import distributed, env, kernels
from tunesmith.train.checkpoint import load_file
from tunesmith.train.engine import FitResult, fit


def start(config: RunConfig, run: RunDir) -> str:
    """Threads, seed and precision, recorded in ``env.json``; checks the data is prepared. Returns the precision."""
    threads = env.set_threads(config.train.threads)
    if config.train.release_memory:
        env.release_freed_memory()
    env.set_seed(config.seed)
    precision = env.resolve_precision(config.train.precision)
    if distributed.is_main():
        write_json(run.env, {**env.describe(config.seed, precision, threads), "processes": distributed.world_size()})
    if not run.split("train").is_file():
        raise DataError(f"{run.split('train')} is missing: run `tunesmith data prepare` first.")
    return precision


def train(
    config: RunConfig,
    run: RunDir,
    model: Any,
    tokenizer: Any,
    make_loss: Callable[[Any], Any],
    train_ex: list[dict[str, Any]],
    val_ex: list[dict[str, Any]],
    precision: str,
    resume: bool = False,
    progress: Any = None,
    collate_fn: Callable[[Any], Any] | None = None,
    method_options: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Apply the tuning method, run the engine into the run dir, and finish (see :func:`finish`).

    The model is prepared first (:func:`prepare`). ``make_loss(model)`` builds the objective's loss module
    around the tuned model. ``method_options`` go to the method's ``apply`` (the new vocabulary rows that LoRA
    should train, say), since only the recipe knows them.
    """
    model, method = prepare(model, config, precision, method_options)
    started = time.perf_counter()
    result = fit(
        make_loss(model),
        train_ex,
        config.train,
        pad_id=tokenizer.pad_token_id,
        seed=config.seed,
        precision=precision,
        checkpoint_dir=run.checkpoints,
        metrics_path=run.metrics,
        val_examples=val_ex,
        resume=resume,
        progress=progress,
        collate_fn=collate_fn,
    )
    return finish(
        config,
        run,
        model,
        tokenizer,
        method,
        result,
        started,
        precision,
        train_examples=len(train_ex),
        validation_examples=len(val_ex),
        **extra,
    )


def prepare(
    model: Any, config: RunConfig, precision: str, method_options: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    """What every objective does to the loaded model before training: the chosen kernels, gradient
    checkpointing (if asked), the tuning method with a seeded init, the frozen base in bf16 where
    :func:`compact_frozen_base` allows, and compiled blocks (if asked). Returns the tuned model and its method."""
    from tunesmith.adapters import get_method

    kernels.apply(model, config.train.kernels)  # before the adapter wraps the blocks
    if config.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    method = get_method(config.method.name)
    env.set_seed(config.seed)  # the adapter's random init does not depend on what loading consumed
    model = method.apply(model, config.method, **(method_options or {}))
    compact_frozen_base(model, method, config, precision)
    if config.train.compile:
        kernels.compile_blocks(model)  # after the adapter, so its arithmetic fuses with the block's
    return model, method


def compact_frozen_base(model: Any, method: Any, config: RunConfig, precision: str) -> int:
    """Store frozen weights in bf16 when training in bf16 with an adapter method; returns the bytes saved.

    Under bf16 autocast every matmul casts its fp32 weight to bf16 anyway, so the forward values are the
    same; only adapters are saved, so the stored base is never written back. Full and freeze tuning save
    the whole model and keep fp32.
    """
    if precision != "bf16" or not config.train.bf16_frozen_base or not method.SAVES_ADAPTER:
        return 0
    return frozen_to_bf16(model)


def frozen_to_bf16(model: Any) -> int:
    """Cast every frozen fp32 parameter to bf16 in place; returns the bytes saved."""
    import torch

    saved = 0
    for p in model.parameters():
        if not p.requires_grad and p.dtype == torch.float32:
            saved += p.numel() * 2
            p.data = p.data.to(torch.bfloat16)
    return saved


def loading(progress: Any, what: str) -> Any:
    """A one-step progress task for a load (transformers' own bars are silenced by the CLI)."""
    return progress.add_task("loading model", total=1, info=what[-28:]) if progress else None


def finish(
    config: RunConfig,
    run: RunDir,
    model: Any,
    tokenizer: Any,
    method: Any,
    result: FitResult,
    started: float,
    precision: str,
    **extra: Any,
) -> dict[str, Any]:
    """Keep the best-validated weights, save the adapter (or model) with its tokenizer, write ``train.json``."""
    if result.best_checkpoint:
        model.load_state_dict(load_file(str(Path(result.best_checkpoint) / "trainable.safetensors")), strict=False)
    out_dir = run.adapter if method.SAVES_ADAPTER else run.model
    if distributed.is_main():
        method.save(model, out_dir)
        tokenizer.save_pretrained(out_dir)
    trainable, total = count_parameters(model)
    summary = {
        "objective": config.train.objective,
        "method": config.method.name,
        "optimizer": config.train.optimizer,
        "base": config.model.base,
        "output": str(out_dir),
        "trainable_params": trainable,
        "total_params": total,
        "trainable_pct": round(100 * trainable / total, 4),
        "steps": result.state.step,
        "epochs_completed": result.state.epoch,
        "stopped_early": result.state.stopped_early,
        "tokens_seen": result.state.tokens_seen,
        "tokens_per_s": round(result.tokens_per_s, 1),
        "train_seconds": round(time.perf_counter() - started, 1),
        "final_train_loss": result.final_train_loss,
        "best_val_loss": result.state.best_val_loss,
        "best_step": result.state.best_step,
        "precision": precision,
        "processes": distributed.world_size(),
        **extra,
    }
    if distributed.is_main():
        write_json(run.train_summary, summary)
    distributed.barrier()
    return summary
