"""The training loop every objective shares.

An objective supplies a ``loss_module``: an ``nn.Module`` whose ``forward(batch, normalizer)`` returns
``(loss, labelled_tokens)``. The engine owns the rest: ``accelerate`` for device placement, mixed precision
and distribution (start with ``accelerate launch`` for DDP/FSDP); token-budget batches; exact gradient
accumulation (each micro-batch is normalised by the labelled tokens of the whole optimizer step, so 4x1
equals 1x4); warmup + schedule; clipping; a non-finite-loss guard; validation; atomic checkpoints with
resume; ``metrics.jsonl``; and a progress bar.

Under a launcher (``accelerate launch`` / ``torchrun``) the same loop runs data-parallel: each optimizer
step's micro-batches are shared out among the processes (see :mod:`tunesmith.train.distributed`), the loss
is normalised by the labelled tokens of the whole step across all processes, and only the main process
writes checkpoints and metrics, so ``w`` processes with ``grad_accum = a`` compute the same steps as one
process with ``grad_accum = a * w``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from tunesmith.config.schema import TrainConfig
from tunesmith.errors import TrainingError
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import distributed, hooks
from tunesmith.train.batching import collate, labelled_tokens, token_budget_batches
from tunesmith.train.losses import l2sp_penalty
from tunesmith.train.optim import build_optimizer, build_scheduler
from tunesmith.train.packing import collate_packed, pack_plan
from tunesmith.train.tracking import MetricsLog

Example = dict[str, Any]


@dataclass
class TrainState:
    """Progress that a checkpoint restores: where in which epoch, and the best validation so far."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    tokens_seen: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class FitResult:
    state: TrainState
    steps: int
    seconds: float
    tokens_per_s: float
    final_train_loss: float | None
    best_checkpoint: str | None


def example_length(example: Example) -> int:
    """What an example costs in a batch: its ``length`` when it spans several rows (a preference pair is
    two), else its token count."""
    return int(example["length"]) if "length" in example else len(example["input_ids"])


def plan_epoch(lengths: Sequence[int], config: TrainConfig, seed: int, epoch: int) -> list[list[int]]:
    """The micro-batches of one epoch (index lists); a seed and epoch always give the same plan."""
    if config.packing:
        return pack_plan(lengths, config.batch_tokens, config.max_batch_size, seed=seed * 1000 + epoch)
    return token_budget_batches(
        lengths, config.batch_tokens, config.max_batch_size, seed * 1000 + epoch, config.group_by_length
    )


def make_batch(examples: Sequence[Example], config: TrainConfig, pad_id: int) -> dict[str, torch.Tensor]:
    """One packed row (``packing``) or a right-padded batch."""
    return collate_packed(examples) if config.packing else collate(examples, pad_id)


def total_steps(n_batches: int, config: TrainConfig, world: int = 1) -> int:
    per_epoch = math.ceil(n_batches / (config.grad_accum * world))
    steps = max(1, math.ceil(per_epoch * config.epochs))
    return min(steps, config.max_steps) if config.max_steps else steps


def evaluate_loss(
    loss_module: torch.nn.Module,
    examples: Sequence[Example],
    config: TrainConfig,
    pad_id: int,
    accelerator: Any,
    collate_fn: Callable[[Sequence[Example]], dict[str, torch.Tensor]] | None = None,
) -> float:
    """Token-weighted mean loss over ``examples`` (no gradients), shared out among processes when several."""
    world, rank = accelerator.num_processes, accelerator.process_index
    loss_module = accelerator.unwrap_model(loss_module)  # no DDP collectives for uneven eval shares
    loss_module.eval()
    tally = getattr(loss_module, "tally", None)
    if tally is not None:
        tally.scope = "val"
    total, count = 0.0, 0
    with torch.no_grad():
        for idx in plan_epoch([example_length(e) for e in examples], config, 0, 0)[rank::world]:
            chunk = [examples[i] for i in idx]
            made = collate_fn(chunk) if collate_fn else make_batch(chunk, config, pad_id)
            batch = {k: v.to(accelerator.device) for k, v in made.items()}
            n = labelled_tokens(batch)
            if n == 0:
                continue
            with accelerator.autocast():
                loss, _ = loss_module(batch, normalizer=1.0)
            total += float(loss)
            count += n
    loss_module.train()
    if tally is not None:
        tally.scope = "train"
    return distributed.reduce_sum(total, accelerator) / max(distributed.reduce_sum(count, accelerator), 1.0)


def _progress_info(loss: float, lr: float, tokens_per_s: float) -> str:
    """The progress bar's text: loss, learning rate, trained tokens/s, and memory (CUDA peak or CPU RSS)."""
    from tunesmith.adapters.plan import current_rss

    if torch.cuda.is_available():
        memory = f"{torch.cuda.max_memory_allocated() / 2**30:.1f}G cuda"
    else:
        memory = f"{current_rss() / 2**30:.1f}G"
    return f"loss {loss:.3f} lr {lr:.1e} {tokens_per_s:,.0f} tok/s {memory}"


def fit(
    loss_module: torch.nn.Module,
    train_examples: Sequence[Example],
    config: TrainConfig,
    *,
    pad_id: int,
    seed: int,
    precision: str,
    checkpoint_dir: Path,
    metrics_path: Path,
    val_examples: Sequence[Example] = (),
    resume: bool = False,
    progress: Any = None,
    halt_after: int | None = None,
    collate_fn: Callable[[Sequence[Example]], dict[str, torch.Tensor]] | None = None,
) -> FitResult:
    """Train ``loss_module`` on ``train_examples``; see the module docstring for what the loop does.

    ``collate_fn`` builds a batch from examples (default: a packed row or a right-padded causal-LM batch).
    ``halt_after`` stops after that optimizer step without a final checkpoint or validation, exactly as a
    kill would (the schedule still spans the whole run); the resume tests use it.
    """
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    # accelerate keeps one mixed-precision setting per process and refuses another; a second training in the
    # same process (evaluation's encoder baseline after a bf16 run) must start from a clean slate. The
    # distributed state (process group) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        mixed_precision="bf16" if precision == "bf16" else "no",
        cpu=not torch.cuda.is_available(),
        # transformer buffers (rotary tables) are constants: no broadcast before every forward
        kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)],
    )
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    lengths = [example_length(e) for e in train_examples]

    def build(chunk: Sequence[Example]) -> dict[str, torch.Tensor]:
        return collate_fn(chunk) if collate_fn else make_batch(chunk, config, pad_id)

    n_steps = total_steps(len(plan_epoch(lengths, config, seed, 0)), config, world)
    per_step = config.grad_accum * world  # micro-batches of one optimizer step, all processes together
    trainable = [p for p in loss_module.parameters() if p.requires_grad]
    anchors = [p.detach().clone() for p in trainable] if config.l2sp else []  # pretrained values, before resume
    optimizer = build_optimizer(loss_module, config)
    scheduler = build_scheduler(optimizer, config, n_steps)
    tally = getattr(loss_module, "tally", None)  # statistics beside the loss (preference accuracy, margins)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)
    if anchors:  # to wherever prepare put the model
        anchors = [a.to(p.device) for a, p in zip(anchors, trainable, strict=True)]
    state = TrainState()
    if resume and (last := ckpt.latest_checkpoint(checkpoint_dir)) is not None:
        saved = ckpt.load_checkpoint(last, accelerator.unwrap_model(loss_module), optimizer, scheduler)
        state = TrainState(**{k: v for k, v in saved.items() if k in TrainState.__dataclass_fields__})
    distributed.barrier()  # nobody writes a checkpoint before every process has read the last one
    log = MetricsLog(metrics_path, metrics_path.parent / "tensorboard", metrics_path.parent.name) if main else None
    task = progress.add_task("training", total=n_steps, completed=state.step, info="") if progress else None
    loss_module.train()
    start, window_tokens, window_start = time.perf_counter(), 0, time.perf_counter()
    last_loss: float | None = None
    last_ckpt: Path | None = ckpt.latest_checkpoint(checkpoint_dir)
    best_path: Path | None = checkpoint_dir / f"step-{state.best_step:07d}" if state.best_step else None
    steps_at_start = state.step

    def record(**values: Any) -> None:
        if log is not None:
            log.write(**values)

    def save(kind: str) -> Path:
        nonlocal last_ckpt
        if main:
            ckpt.save_checkpoint(
                checkpoint_dir,
                state.step,
                accelerator.unwrap_model(loss_module),
                optimizer,
                scheduler,
                {**asdict(state), "kind": kind},
            )
            ckpt.prune(checkpoint_dir, config.keep_last, {best_path} if best_path else set())
        distributed.barrier()
        last_ckpt = checkpoint_dir / f"step-{state.step:07d}"
        return last_ckpt

    def validate() -> None:
        nonlocal best_path
        if not val_examples:
            return
        val = evaluate_loss(loss_module, val_examples, config, pad_id, accelerator, collate_fn)
        state.history.append({"step": state.step, "val_loss": val})
        stats = {f"val_{k}": v for k, v in tally.take("val", accelerator).items()} if tally else {}
        record(step=state.step, epoch=state.epoch, val_loss=val, **stats)
        if state.best_val_loss is None or val < state.best_val_loss:
            state.best_val_loss, state.best_step = val, state.step
            state.evals_without_improvement = 0
            best_path = checkpoint_dir / f"step-{state.step:07d}"
            save("best")
        else:
            state.evals_without_improvement += 1
            if config.early_stopping and state.evals_without_improvement >= config.early_stopping:
                state.stopped_early = True
                record(
                    step=state.step,
                    event="early stop",
                    reason=f"no validation improvement in {config.early_stopping} evaluations",
                )
        if hooks.report_validation(state.step, {"val_loss": val, **stats}) and not state.stopped_early:
            state.stopped_early = True
            record(step=state.step, event="pruned", reason="the hyperparameter search stopped this weak trial")

    def guard(losses: list[float]) -> None:
        """Stop every process together when any process saw a non-finite loss in this step."""
        bad = next((v for v in losses if not math.isfinite(v)), None)
        if distributed.reduce_sum(float(bad is not None), accelerator) == 0:
            return
        record(step=state.step, error="non-finite loss")
        where = f"the last good checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint was written yet"
        raise TrainingError(
            f"Loss became {bad if bad is not None else 'non-finite on another process'} at optimizer step "
            f"{state.step + 1} (epoch {state.epoch}); {where}. Lower train.lr, enable train.clip_grad, "
            "or check the data for empty targets."
        )

    while state.step < n_steps and not state.stopped_early:
        batches = plan_epoch(lengths, config, seed, state.epoch)
        groups = [batches[i : i + per_step] for i in range(0, len(batches), per_step)]
        for g in range(state.batch_index // per_step, len(groups)):
            if state.step >= n_steps:
                break
            made = [build([train_examples[i] for i in idx]) for idx in groups[g]]
            n_labelled = sum(labelled_tokens(b) for b in made)  # the whole step's, across processes
            share, padding = distributed.my_share(made, rank, world)
            # DDP averages gradients over processes; scaling by `world` makes that a sum, as one process has
            scale = 0.0 if padding else float(world)
            step_loss, seen = 0.0, []
            for j, cpu_batch in enumerate(share):
                batch = {k: v.to(accelerator.device) for k, v in cpu_batch.items()}
                sync = j == len(share) - 1
                with contextlib.nullcontext() if sync else accelerator.no_sync(loss_module), accelerator.autocast():
                    loss, _ = loss_module(batch, normalizer=max(n_labelled, 1))
                value = float(loss.detach())
                seen.append(value)
                if world == 1 and not math.isfinite(value):
                    guard(seen)  # one process: stop before the bad gradient exists
                loss = loss * scale if world > 1 else loss
                if anchors and sync:  # once per optimizer step
                    loss = loss + l2sp_penalty(trainable, anchors, config.l2sp)
                accelerator.backward(loss)
                step_loss += 0.0 if padding else value
            if world > 1:
                guard(seen)
                step_loss = distributed.reduce_sum(step_loss, accelerator)
            grad_norm = None
            if config.clip_grad:
                grad_norm = float(accelerator.clip_grad_norm_(loss_module.parameters(), config.clip_grad))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_tokens = sum(int(b["attention_mask"].sum()) for b in made)
            state.step += 1
            state.batch_index = (g + 1) * per_step
            state.tokens_seen += step_tokens
            window_tokens += step_tokens
            last_loss = step_loss
            if state.step % config.log_every == 0 or state.step == n_steps:
                now = time.perf_counter()
                tps = window_tokens / max(now - window_start, 1e-9)
                stats = tally.take("train", accelerator) if tally else {}
                record(
                    step=state.step,
                    epoch=state.epoch,
                    loss=step_loss,
                    lr=scheduler.get_last_lr()[0],
                    grad_norm=grad_norm,
                    tokens=state.tokens_seen,
                    tokens_per_s=round(tps, 1),
                    elapsed_s=round(now - start, 2),
                    **stats,
                )
                window_tokens, window_start = 0, now
                if progress:
                    progress.update(task, info=_progress_info(step_loss, scheduler.get_last_lr()[0], tps))
            if progress:
                progress.update(task, completed=state.step)
            if config.eval_every and state.step % config.eval_every == 0:
                validate()
                if state.stopped_early:
                    break
            if config.save_every and state.step % config.save_every == 0:
                save("periodic")
            if halt_after is not None and state.step >= halt_after:
                break
        else:
            state.epoch += 1
            state.batch_index = 0
            if not config.eval_every:
                validate()
            if not config.save_every:
                save("epoch")
            continue
        break
    halted = halt_after is not None and state.step >= halt_after and state.step < n_steps and not state.stopped_early
    if not halted:
        # the last step is always validated (an epoch's end is not when eval_every is set), so the best
        # checkpoint is chosen among every trained state, the final one included
        if val_examples and not state.stopped_early and (not state.history or state.history[-1]["step"] != state.step):
            validate()
        if last_ckpt is None or not str(last_ckpt).endswith(f"{state.step:07d}"):
            save("final")
    if log is not None:
        log.close()
    elapsed = time.perf_counter() - start
    trained = state.step - steps_at_start
    return FitResult(
        state=state,
        steps=trained,
        seconds=elapsed,
        tokens_per_s=state.tokens_seen / max(elapsed, 1e-9) if trained else 0.0,
        final_train_loss=last_loss,
        best_checkpoint=str(best_path) if best_path else None,
    )
