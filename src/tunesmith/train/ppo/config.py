"""``train.ppo``: the settings of the ppo objective."""

from __future__ import annotations

from pydantic import Field

from tunesmith.config.section import Section


class PPOConfig(Section):
    """Proximal policy optimisation against a reward (``train.ppo``)."""

    reward: str | None = Field(
        None,
        description="Where rewards come from: a run directory trained with objective reward (its scalar head), "
        "a run directory trained with objective classify (the probability of reward_label), or a Python function "
        "'module:function' / 'file.py:function' called as f(prompts, responses) -> list of floats.",
    )
    reward_label: str | None = Field(
        None, description="With a classifier run as the reward: the label whose probability is the reward."
    )
    rollouts: int = Field(8, ge=1, description="Prompts sampled per PPO step (each gets one sampled answer).")
    minibatch: int = Field(4, ge=1, description="Rollouts per gradient step inside a PPO epoch.")
    ppo_epochs: int = Field(2, ge=1, description="Passes over each step's rollouts.")
    max_new_tokens: int = Field(48, ge=1, description="Longest sampled answer, in tokens.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of the rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling of the rollouts (1: off).")
    clip: float = Field(0.2, gt=0, description="PPO's ratio clip range (policy loss).")
    clip_value: float = Field(0.2, gt=0, description="Clip range of the value predictions (value loss).")
    value_coef: float = Field(0.1, ge=0, description="Weight of the value loss.")
    gamma: float = Field(1.0, gt=0, le=1, description="Discount of future rewards within an answer.")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    kl_coef: float = Field(0.05, ge=0, description="Initial weight of the per-token KL penalty to the reference.")
    target_kl: float | None = Field(
        6.0,
        gt=0,
        description="Adaptive KL control (Ziegler et al. 2019): kl_coef moves so the answer-level KL approaches "
        "this; null keeps kl_coef fixed.",
    )
    kl_horizon: int = Field(10000, ge=1, description="Adaptive KL control's horizon, in rollouts.")
    whiten_rewards: bool = Field(
        False, description="Normalise each step's scores to mean 0, std 1 before the KL term."
    )
