"""PPO's pure pieces against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tunesmith.train.ppo import losses
from tunesmith.train.ppo.rollout import assemble


def test_clipped_policy_loss_matches_a_hand_computed_example() -> None:
    # two tokens: ratio e^0.5 = 1.6487 with A = +1 (clipped at 1.2), ratio e^-0.5 = 0.6065 with A = -2 (clipped at 0.8)
    logps = torch.tensor([[0.5, -0.5]])
    old = torch.zeros(1, 2)
    adv = torch.tensor([[1.0, -2.0]])
    mask = torch.ones(1, 2)
    loss, frac = losses.policy_loss(logps, old, adv, mask, clip=0.2)
    # token 1: max(-1 * 1.6487, -1 * 1.2) = -1.2 (clipped); token 2: max(2 * 0.6065, 2 * 0.8) = 1.6 (clipped)
    assert float(loss) == pytest.approx((-1.2 + 1.6) / 2, abs=1e-6)
    assert float(frac) == 1.0
    # inside the clip range nothing is clipped and the loss is -A * ratio
    small, frac = losses.policy_loss(
        torch.tensor([[0.1]]), torch.zeros(1, 1), torch.tensor([[1.0]]), torch.ones(1, 1), 0.2
    )
    assert float(small) == pytest.approx(-math.exp(0.1)) and float(frac) == 0.0


def test_padding_does_not_count() -> None:
    logps = torch.tensor([[0.0, 5.0]])
    loss, _ = losses.policy_loss(logps, torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([[1.0, 0.0]]), 0.2)
    assert float(loss) == pytest.approx(-1.0)


def test_value_loss_takes_the_worse_of_clipped_and_unclipped() -> None:
    values, old, returns = torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]])
    # unclipped error 0; clipped value 0.2 has error 0.8 -> 0.5 * 0.64
    assert float(losses.value_loss(values, old, returns, torch.ones(1, 1), 0.2)) == pytest.approx(0.32)


def test_gae_by_hand() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.3, 9.0]])  # the last position is padding
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    gamma, lam = 0.9, 0.8
    d2 = 1.0 - 0.3
    d1 = 0.0 + gamma * 0.3 - 0.4
    d0 = 0.0 + gamma * 0.4 - 0.5
    a2, a1 = d2, d1 + gamma * lam * d2
    a0 = d0 + gamma * lam * a1
    adv, ret = losses.gae(rewards, values, mask, gamma, lam)
    assert adv[0].tolist() == pytest.approx([a0, a1, a2, 0.0])
    assert ret[0, :3].tolist() == pytest.approx([a0 + 0.5, a1 + 0.4, a2 + 0.3])


def test_kl_rewards_put_the_score_on_the_last_answer_token() -> None:
    logps = torch.tensor([[-1.0, -1.0, -1.0, 0.0]])
    ref = torch.tensor([[-2.0, -1.0, -1.5, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    rewards, kl = losses.kl_rewards(logps, ref, torch.tensor([3.0]), mask, kl_coef=0.1)
    assert kl[0].tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])
    assert rewards[0].tolist() == pytest.approx([-0.1, 0.0, 3.0 - 0.05, 0.0])


def test_whitening_and_adaptive_kl() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    w = losses.whiten(x, mask)
    assert float(losses.masked_mean(w, mask)) == pytest.approx(0.0, abs=1e-6) and float(w[0, 3]) == 0.0
    controller = losses.AdaptiveKL(0.1, target=6.0, horizon=100)
    controller.update(kl=12.0, n=10)  # above target: error clipped at +0.2
    assert controller.coef == pytest.approx(0.1 * (1 + 0.2 * 10 / 100))
    fixed = losses.AdaptiveKL(0.1, target=None, horizon=100)
    assert fixed.update(50.0, 10) == 0.1


def test_rollout_rows_are_left_padded_prompts_then_answers() -> None:
    ro = assemble([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], pad_id=0, device="cpu", responses=["a", "b"])
    assert ro.input_ids.tolist() == [[5, 6, 7, 1, 2, 0], [0, 0, 8, 3, 4, 9]]
    assert ro.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
    assert ro.position_ids[1].tolist()[2:] == [0, 1, 2, 3]  # positions start at the first real token
    # mask[t] marks predictions of answer tokens (t + 1 is an answer position)
    assert ro.mask.tolist() == [[0, 0, 1, 1, 0], [0, 0, 1, 1, 1]]


def test_function_rewards_load_from_a_file_and_are_checked(tmp_path: Path) -> None:
    from tunesmith.errors import ConfigError
    from tunesmith.train.ppo.rewards import function_scorer, load_scorer

    (tmp_path / "r.py").write_text("def good(p, r):\n    return [len(x) for x in r]\ndef bad(p, r):\n    return [1]\n")
    score = load_scorer("r.py:good", None, torch.device("cpu"), tmp_path)
    assert score(["q", "q"], ["ab", "abc"]) == [2.0, 3.0]
    with pytest.raises(ConfigError, match="returned 1 rewards for 2"):
        function_scorer(f"{tmp_path / 'r.py'}:bad")(["q", "q"], ["a", "b"])
    with pytest.raises(ConfigError, match="no function"):
        function_scorer(f"{tmp_path / 'r.py'}:missing")
    with pytest.raises(ConfigError, match="module:function"):
        function_scorer("nothing")
