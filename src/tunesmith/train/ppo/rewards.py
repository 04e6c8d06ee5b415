"""Where PPO's rewards come from: a trained reward model, a trained classifier, or a Python function.

Each source is a callable ``(prompts, responses) -> list[float]`` (prompts as strings or message lists),
so the loop does not care which it has; the trained ones run without gradients on the training device.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from tunesmith.errors import ConfigError

Scorer = Callable[[Sequence[Any], Sequence[str]], list[float]]


def _run_config(run_dir: Path) -> Any:
    from tunesmith.config.load import load_config

    return load_config(run_dir / "config.yaml")


def _trained(run_dir: Path, labels: list[str], config: Any) -> tuple[Any, Any]:
    from tunesmith.adapters import for_inference, get_method
    from tunesmith.models.load import load_configured_classifier

    method = get_method(config.method.name)
    model, tokenizer = load_configured_classifier(config.model, labels)
    weights = run_dir / ("adapter" if method.SAVES_ADAPTER else "model")
    if not weights.is_dir():
        raise ConfigError(f"train.ppo.reward: {run_dir} has no trained {weights.name}/; train that run first.")
    return for_inference(method.load(model, weights)).eval(), tokenizer


class RewardModelScorer:
    """The scalar head of a run trained with ``train.objective: reward``."""

    def __init__(self, run_dir: Path, device: torch.device, batch_size: int = 16) -> None:
        self.model, self.tokenizer = _trained(run_dir, ["reward"], _run_config(run_dir))
        self.model.to(device)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, prompts: Sequence[Any], responses: Sequence[str]) -> list[float]:
        from tunesmith.train.reward.data import _pad, answer_ids
        from tunesmith.train.reward.loss import rewards

        out: list[float] = []
        device = next(self.model.parameters()).device
        for i in range(0, len(prompts), self.batch_size):
            chunk = zip(prompts[i : i + self.batch_size], responses[i : i + self.batch_size], strict=True)
            rows = [answer_ids(self.tokenizer, p, r) for p, r in chunk]
            batch = {k: v.to(device) for k, v in _pad(rows, self.tokenizer.pad_token_id).items()}
            out += rewards(self.model, batch["input_ids"], batch["attention_mask"]).tolist()
        return out


class ClassifierScorer:
    """The probability of ``label`` under a run trained with ``train.objective: classify``, read from the
    response alone (e.g. how positive a reply sounds)."""

    def __init__(self, run_dir: Path, label: str | None, device: torch.device, batch_size: int = 16) -> None:
        manifest = json.loads((run_dir / "data" / "manifest.json").read_text())
        labels = manifest["labels"]
        if label not in labels:
            raise ConfigError(
                f"train.ppo.reward_label must name one of the classifier's labels {labels} (got {label!r})."
            )
        config = _run_config(run_dir)
        self.model, self.tokenizer = _trained(run_dir, labels, config)
        self.model.to(device)
        self.index, self.max_length, self.batch_size = labels.index(label), config.train.max_length, batch_size

    @torch.no_grad()
    def __call__(self, prompts: Sequence[Any], responses: Sequence[str]) -> list[float]:
        out: list[float] = []
        device = next(self.model.parameters()).device
        for i in range(0, len(responses), self.batch_size):
            enc = self.tokenizer(
                list(responses[i : i + self.batch_size]),
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            )
            logits = self.model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
            out += torch.softmax(logits.logits.float(), -1)[:, self.index].tolist()
        return out


def function_scorer(spec: str, base_dir: Path | None = None) -> Scorer:
    """``module:function`` (importable) or ``path/to/file.py:function`` (relative to ``base_dir``)."""
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise ConfigError(f"train.ppo.reward {spec!r}: write 'module:function' or 'file.py:function'.")
    if target.endswith(".py"):
        path = Path(target) if Path(target).is_absolute() or base_dir is None else base_dir / target
        if not path.is_file():
            raise ConfigError(f"train.ppo.reward: {path} does not exist.")
        module_spec = importlib.util.spec_from_file_location(f"tunesmith_reward_{path.stem}", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ConfigError(f"train.ppo.reward: cannot import {target!r} ({exc}).") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"train.ppo.reward: {target} has no function {name!r}.")

    def score(prompts: Sequence[Any], responses: Sequence[str]) -> list[float]:
        values = [float(v) for v in fn(list(prompts), list(responses))]
        if len(values) != len(responses):
            raise ConfigError(f"train.ppo.reward {spec}: returned {len(values)} rewards for {len(responses)} answers.")
        return values

    return score


def load_scorer(spec: str, label: str | None, device: torch.device, base_dir: Path | None = None) -> Scorer:
    """The scorer that ``train.ppo.reward`` names (a run directory's objective decides which kind)."""
    path = Path(spec) if Path(spec).is_absolute() or base_dir is None else base_dir / spec
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise ConfigError(f"train.ppo.reward: {path} is not a tunesmith run directory (no config.yaml).")
        objective = _run_config(path).train.objective
        if objective == "reward":
            return RewardModelScorer(path, device)
        if objective == "classify":
            return ClassifierScorer(path, label, device)
        raise ConfigError(f"train.ppo.reward: {path} was trained with objective {objective}, not reward or classify.")
    return function_scorer(spec, base_dir)
