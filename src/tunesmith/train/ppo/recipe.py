"""ppo: prompts -> sampled answers -> rewards -> clipped policy and value updates, with a KL leash to the base.

Each PPO step samples one answer for each of ``train.ppo.rollouts`` prompts with the policy's KV cache,
scores the answers (a reward model, a classifier or a function), and turns the scores into per-token
rewards minus ``kl_coef`` times the log-ratio to the reference (the base model: the adapter switched off,
or a frozen copy for full and freeze tuning). GAE over a value head on the policy's hidden states gives
the advantages; ``ppo_epochs`` passes over minibatches optimise the clipped surrogate plus the clipped value
loss. The KL coefficient adapts toward ``target_kl``. Checkpoints are the engine's (atomic, resumable).
"""

from __future__ import annotations

import copy
import math
import random
import time
from pathlib import Path
from typing import Any

import torch

from tunesmith.config.schema import RunConfig
from tunesmith.data.prepare import prepared_kind
from tunesmith.errors import ConfigError, TrainingError
from tunesmith.rundir import RunDir, read_jsonl
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import env, lifecycle
from tunesmith.train.causal import load_causal
from tunesmith.train.engine import FitResult, TrainState
from tunesmith.train.optim import build_optimizer, build_scheduler
from tunesmith.train.ppo import losses
from tunesmith.train.ppo.rewards import load_scorer
from tunesmith.train.ppo.rollout import Rollouts, ValueHead, sample, token_stats
from tunesmith.train.preference.config import ADAPTER_OFF_METHODS
from tunesmith.train.tracking import MetricsLog


def prompts_of(rows: list[dict[str, Any]]) -> list[Any]:
    """The prompt of every prepared row that has one (a chat's turns before its last answer)."""
    out = []
    for row in rows:
        prompt = row.get("prompt")
        if prompt is None and "messages" in row:
            prompt = row["messages"][:-1]
        if prompt:
            out.append(prompt)
    return out


class PolicyAndValue(torch.nn.Module):
    """The tuned model and its value head as one module: one optimizer, one checkpoint."""

    def __init__(self, model: Any, value_head: ValueHead) -> None:
        super().__init__()
        self.model, self.value_head = model, value_head


class Reference:
    """Reference log-probs without a second copy where the method has an adapter to switch off."""

    def __init__(self, model: Any, method_name: str) -> None:
        self.copy = None if method_name in ADAPTER_OFF_METHODS else copy.deepcopy(model).eval().requires_grad_(False)
        self.model = model

    @torch.no_grad()
    def logps(self, rows: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
        if self.copy is not None:
            return token_stats(self.copy, None, rows, temperature)["logps"]
        with self.model.disable_adapter():
            return token_stats(self.model, None, rows, temperature)["logps"]


def _autocast(device: torch.device, bf16: bool) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def rollout_step(
    policy: PolicyAndValue,
    reference: Reference,
    scorer: Any,
    tokenizer: Any,
    prompts: list[Any],
    config: RunConfig,
    kl_coef: float,
    seed: int,
    bf16: bool,
) -> tuple[Rollouts, torch.Tensor, torch.Tensor, dict[str, float]]:
    """Sample, score and estimate advantages: ``(rollouts, advantages, returns, statistics)``."""
    pc = config.train.ppo
    model = policy.model
    device = next(model.parameters()).device
    ro = sample(model, tokenizer, prompts, pc.max_new_tokens, pc.temperature, pc.top_p, seed, bf16)
    rows = ro.rows(torch.arange(len(prompts), device=device))
    model.eval()
    with torch.no_grad(), _autocast(device, bf16):
        stats = token_stats(model, policy.value_head, rows, pc.temperature)
        ro.ref_logps = reference.logps(rows, pc.temperature)
    model.train()
    ro.logps, ro.values = stats["logps"], stats["values"]
    raw = torch.tensor(scorer(prompts, ro.responses), dtype=torch.float32, device=device)
    scores = (raw - raw.mean()) / (raw.std() + 1e-8) if pc.whiten_rewards and len(raw) > 1 else raw
    ro.scores = raw
    rewards, kl = losses.kl_rewards(ro.logps, ro.ref_logps, scores, ro.mask, kl_coef)
    advantages, returns = losses.gae(rewards, ro.values, ro.mask, pc.gamma, pc.lam)
    advantages = losses.whiten(advantages, ro.mask)
    lengths = ro.mask.sum(1)
    info = {
        "reward": float(raw.mean()),
        "reward_std": float(raw.std()) if len(raw) > 1 else 0.0,
        "kl": float(kl.sum(1).mean()),
        "entropy": float(losses.masked_mean(stats["entropy"], ro.mask)),
        "response_length": float(lengths.mean()),
    }
    return ro, advantages, returns, info


def optimise(
    policy: PolicyAndValue,
    optimizer: Any,
    scheduler: Any,
    ro: Rollouts,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    config: RunConfig,
    rng: random.Random,
    bf16: bool,
) -> dict[str, float]:
    """``ppo_epochs`` passes of clipped policy + value updates over minibatches of the rollouts."""
    pc, tc = config.train.ppo, config.train
    device = ro.input_ids.device
    n = ro.input_ids.shape[0]
    totals = {"policy_loss": 0.0, "value_loss": 0.0, "clip_frac": 0.0}
    updates = 0
    for _ in range(pc.ppo_epochs):
        order = list(range(n))
        rng.shuffle(order)
        for start in range(0, n, pc.minibatch):
            idx = torch.tensor(order[start : start + pc.minibatch], device=device)
            rows = ro.rows(idx)
            with _autocast(device, bf16):
                now = token_stats(policy.model, policy.value_head, rows, pc.temperature)
            assert ro.logps is not None and ro.values is not None
            mask = rows["mask"]
            pg, clip_frac = losses.policy_loss(now["logps"], ro.logps[idx], advantages[idx], mask, pc.clip)
            vf = losses.value_loss(now["values"], ro.values[idx], returns[idx], mask, pc.clip_value)
            loss = pg + pc.value_coef * vf
            if not math.isfinite(float(loss)):
                raise TrainingError("PPO loss became non-finite; lower train.lr or train.ppo.kl_coef.")
            loss.backward()
            if tc.clip_grad:
                torch.nn.utils.clip_grad_norm_(policy.parameters(), tc.clip_grad)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            totals["policy_loss"] += float(pg)
            totals["value_loss"] += float(vf)
            totals["clip_frac"] += float(clip_frac)
            updates += 1
    return {k: v / max(updates, 1) for k, v in totals.items()}


@torch.no_grad()
def held_out_reward(
    model: Any, tokenizer: Any, scorer: Any, prompts: list[Any], config: RunConfig, bf16: bool
) -> float:
    """Mean reward of greedy answers to ``prompts`` (validation during training), generated as stage 5 does."""
    from tunesmith.eval.generate import generate

    pc = config.train.ppo
    was_training = model.training
    answers = generate(
        model, tokenizer, prompts, max_new_tokens=pc.max_new_tokens, batch_size=pc.rollouts, autocast=bf16
    )
    model.train(was_training)
    scores = scorer(prompts, answers)
    return sum(scores) / max(len(scores), 1)


def train_ppo(config: RunConfig, run: RunDir, resume: bool = False, progress: Any = None) -> dict[str, Any]:
    """RLHF with PPO on the prompts of the prepared splits of ``run``."""
    tc, pc = config.train, config.train.ppo
    if pc.reward is None:
        raise ConfigError(
            "train.objective ppo needs train.ppo.reward: a reward run directory, a classify run directory "
            "(with train.ppo.reward_label), or 'file.py:function'."
        )
    precision = lifecycle.start(config, run)
    bf16 = precision == "bf16"
    kind = prepared_kind(run)
    train_prompts = prompts_of(read_jsonl(run.split("train")))
    val_path = run.split("validation")
    val_prompts = prompts_of(read_jsonl(val_path))[:32] if val_path.is_file() else []
    if not train_prompts:
        raise ConfigError(f"train.objective ppo samples answers to prompts; the prepared '{kind}' rows have none.")
    model, tokenizer = load_causal(config, progress)
    device = torch.device(env.device_name())
    scorer = load_scorer(pc.reward, pc.reward_label, device)
    model, method = lifecycle.prepare(model, config, precision)
    model.to(device)
    reference = Reference(model, config.method.name)
    policy = PolicyAndValue(model, ValueHead(model.config.hidden_size).to(device))

    n_steps = tc.max_steps or max(1, math.ceil(tc.epochs * len(train_prompts) / pc.rollouts))
    updates_per_step = pc.ppo_epochs * math.ceil(pc.rollouts / pc.minibatch)
    optimizer = build_optimizer(policy, tc)
    scheduler = build_scheduler(optimizer, tc, n_steps * updates_per_step)
    state = {"step": 0, "kl_coef": pc.kl_coef, "tokens_seen": 0}
    if resume and (last := ckpt.latest_checkpoint(run.checkpoints)) is not None:
        state.update(ckpt.load_checkpoint(last, policy, optimizer, scheduler))
    controller = losses.AdaptiveKL(float(state["kl_coef"]), pc.target_kl, pc.kl_horizon)
    log = MetricsLog(run.metrics, run.root / "tensorboard", config.name)
    bar = progress.add_task("ppo", total=n_steps, completed=state["step"], info="") if progress else None
    order = list(range(len(train_prompts)))
    started = time.perf_counter()
    first_step = int(state["step"])

    def save(step: int, kind: str) -> None:
        ckpt.save_checkpoint(run.checkpoints, step, policy, optimizer, scheduler,
                             {**state, "kl_coef": controller.coef, "kind": kind})  # fmt: skip
        ckpt.prune(run.checkpoints, tc.keep_last, set())

    for step in range(first_step, n_steps):
        epoch, offset = divmod(step * pc.rollouts, len(order))
        shuffled = order[:]
        random.Random(config.seed * 1000 + epoch).shuffle(shuffled)
        picked = [shuffled[(offset + i) % len(order)] for i in range(pc.rollouts)]
        prompts = [train_prompts[i] for i in picked]
        seed = config.seed * 100_003 + step
        ro, advantages, returns, info = rollout_step(
            policy, reference, scorer, tokenizer, prompts, config, controller.coef, seed, bf16
        )
        fit = optimise(policy, optimizer, scheduler, ro, advantages, returns, config, random.Random(seed), bf16)
        kl_coef = controller.coef
        controller.update(info["kl"], len(prompts))
        state["step"] = step + 1
        state["tokens_seen"] = int(state["tokens_seen"]) + int(ro.attention_mask.sum())
        elapsed = time.perf_counter() - started
        record = {
            "step": step + 1,
            "epoch": epoch,
            "loss": fit["policy_loss"] + pc.value_coef * fit["value_loss"],
            **fit,
            **info,
            "kl_coef": kl_coef,
            "lr": scheduler.get_last_lr()[0],
            "tokens": state["tokens_seen"],
            "elapsed_s": round(elapsed, 2),
        }
        if (step + 1) % tc.log_every == 0 or step + 1 == n_steps:
            log.write(**record)
        if val_prompts and tc.eval_every and (step + 1) % tc.eval_every == 0:
            log.write(
                step=step + 1,
                epoch=epoch,
                val_reward=held_out_reward(model, tokenizer, scorer, val_prompts, config, bf16),
            )
        if tc.save_every and (step + 1) % tc.save_every == 0:
            save(step + 1, "periodic")
        if progress:
            progress.update(bar, completed=step + 1, info=f"reward {info['reward']:.3f} kl {info['kl']:.2f}")
    if val_prompts and (not tc.eval_every or n_steps % tc.eval_every):
        log.write(
            step=n_steps, epoch=0, val_reward=held_out_reward(model, tokenizer, scorer, val_prompts, config, bf16)
        )
    save(n_steps, "final")
    log.close()
    seconds = time.perf_counter() - started
    result = FitResult(
        state=TrainState(step=n_steps, tokens_seen=int(state["tokens_seen"])),
        steps=n_steps - first_step,
        seconds=seconds,
        tokens_per_s=int(state["tokens_seen"]) / max(seconds, 1e-9),
        final_train_loss=None,
        best_checkpoint=None,
    )
    out = lifecycle.finish(
        config, run, model, tokenizer, method, result, started, precision,
        rollouts=n_steps * pc.rollouts, reward_source=str(pc.reward), final_kl_coef=controller.coef,
        reference="adapter_off" if reference.copy is None else "frozen copy",
    )  # fmt: skip
    from safetensors.torch import save_file

    save_file(policy.value_head.state_dict(), str(Path(out["output"]) / "value_head.safetensors"))
    return out
