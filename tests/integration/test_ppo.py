"""PPO end to end through the CLI on the tiny model: a toy reward rises while the KL to the base stays bounded,
and reward models and classifiers trained by tunesmith serve as rewards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration

PAIRS = Path(__file__).parents[1] / "assets" / "hh_rlhf_sample.jsonl"
PROMPTS = {"train": str(PAIRS), "test": None, "format": "preference", "columns": {},
           "split": {"validation": 0.1, "test": 0.1}}  # fmt: skip
TOY = "def count_e(prompts, responses):\n    return [float(r.count('e')) for r in responses]\n"


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_ppo_raises_a_toy_reward_with_bounded_kl(make_config, tmp_path: Path) -> None:
    (tmp_path / "toy.py").write_text(TOY)
    ppo = {"reward": f"{tmp_path / 'toy.py'}:count_e", "rollouts": 16, "minibatch": 8, "max_new_tokens": 16,
           "kl_coef": 0.1, "target_kl": None}  # fmt: skip
    config = make_config(
        name="ppo-toy",
        method={"name": "lora", "r": 8, "alpha": 16},
        data=PROMPTS,
        train={"objective": "ppo", "max_steps": 40, "lr": 3e-2, "log_every": 1, "ppo": ppo},
        eval={"retention": "none", "generate_rows": 6},
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "ppo-toy"
    steps = [m for m in _metrics(run) if "reward" in m]
    assert len(steps) == 40
    assert steps[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the policy starts as the reference
    first = sum(m["reward"] for m in steps[:10]) / 10
    last = sum(m["reward"] for m in steps[-10:]) / 10
    assert last > 2 * first, (first, last)
    assert max(m["kl"] for m in steps) < 100  # the penalty holds the policy near the base
    for key in ("entropy", "value_loss", "policy_loss", "clip_frac", "kl_coef", "response_length"):
        assert key in steps[-1]
    assert all(m["kl_coef"] == 0.1 for m in steps)  # fixed when target_kl is null
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["task"] == "rewards"
    assert report["models"]["tuned (lora)"]["reward"] > report["models"]["base"]["reward"]
    assert (run / "adapter" / "value_head.safetensors").is_file()
    assert (run / "eval" / "answers.jsonl").is_file()


def test_ppo_resumes_from_its_checkpoint(make_config, tmp_path: Path) -> None:
    """Stopped after 3 steps and resumed to 6, PPO takes the same steps as 6 uninterrupted ones (CPU, fp32)."""
    (tmp_path / "toy.py").write_text(TOY)
    ppo = {"reward": f"{tmp_path / 'toy.py'}:count_e", "rollouts": 4, "minibatch": 2, "max_new_tokens": 8}
    train = {"objective": "ppo", "lr": 1e-2, "log_every": 1, "scheduler": "constant", "warmup_ratio": 0, "ppo": ppo}
    straight = make_config(name="ppo-straight", data=PROMPTS, train={**train, "max_steps": 6})
    assert main(["train", str(straight)]) == 0
    resumed = make_config(name="ppo-resumed", data=PROMPTS, train={**train, "max_steps": 3})
    assert main(["train", str(resumed)]) == 0
    assert main(["train", str(resumed), "--resume", "--set", "train.max_steps=6"]) == 0
    runs = Path(yaml.safe_load(resumed.read_text())["output_dir"])
    a = [m for m in _metrics(runs / "ppo-straight") if "reward" in m]
    b = [m for m in _metrics(runs / "ppo-resumed") if "reward" in m]
    assert [m["step"] for m in b] == [1, 2, 3, 4, 5, 6]
    assert [m["reward"] for m in a] == [m["reward"] for m in b]
    assert [m["kl"] for m in a] == pytest.approx([m["kl"] for m in b], abs=1e-5)


@pytest.mark.parametrize("source", ["reward", "classify"])
def test_trained_runs_serve_as_rewards(make_config, tmp_path: Path, tiny_encoder_dir: Path, source: str) -> None:
    if source == "reward":
        scorer = make_config(
            name="scorer",
            data=PROMPTS,
            train={"objective": "reward", "epochs": 1, "lr": 5e-3, "max_length": 96},
            eval={"retention": "none"},
        )
        extra: dict = {}
    else:  # a sentiment classifier on the tiny encoder (the pcm slice)
        scorer = make_config(
            name="scorer", model={"base": str(tiny_encoder_dir)}, train={"objective": "classify", "epochs": 1}
        )
        extra = {"reward_label": "positive"}
    assert main(["run", str(scorer)]) == 0
    scorer_dir = Path(yaml.safe_load(scorer.read_text())["output_dir"]) / "scorer"
    config = tmp_path / "ppo.yaml"
    ppo = {"reward": str(scorer_dir), "rollouts": 4, "minibatch": 2, "max_new_tokens": 8, **extra}
    make_config(
        name=f"ppo-{source}",
        data=PROMPTS,
        train={"objective": "ppo", "max_steps": 2, "lr": 1e-2, "log_every": 1, "ppo": ppo},
        eval={"retention": "none", "generate_rows": 4},
    ).rename(config)
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / f"ppo-{source}"
    steps = [m for m in _metrics(run) if "reward" in m]
    assert len(steps) == 2 and all(isinstance(m["reward"], float) for m in steps)
    if source == "classify":
        assert all(0.0 <= m["reward"] <= 1.0 for m in steps)  # a probability


def test_ppo_refuses_what_it_cannot_do(make_config) -> None:
    config = make_config(name="ppo-bad", data=PROMPTS, train={"objective": "ppo"})
    assert main(["train", str(config)]) == 2  # no train.ppo.reward: a config error, not a traceback
    prompt = make_config(name="ppo-prompt", data=PROMPTS, method={"name": "prompt"}, train={"objective": "ppo"})
    assert main(["train", str(prompt)]) == 2
