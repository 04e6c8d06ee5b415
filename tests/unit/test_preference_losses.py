"""Preference and reward losses, their batches, and their config, on hand-made tensors and the tiny tokenizer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tunesmith.train.preference import losses
from tunesmith.train.preference.config import PreferenceConfig
from tunesmith.train.preference.data import add_mismatched, collate_pairs, collate_unpaired, encode_pair, unpair
from tunesmith.train.reward.loss import as_lists
from tunesmith.train.reward.losses import bradley_terry_loss, listwise_loss
from tunesmith.train.tracking import Tally


def test_dpo_is_log_two_when_the_policy_is_the_reference() -> None:
    logps = torch.tensor([-12.0, -30.0])
    out = losses.dpo_loss(logps, logps - 3, logps, logps - 3, beta=0.1)
    torch.testing.assert_close(out.losses, torch.full((2,), math.log(2)))
    assert out.chosen_rewards.tolist() == [0.0, 0.0]


def test_dpo_rewards_a_policy_that_moved_toward_the_chosen_answer() -> None:
    ref_c, ref_r = torch.tensor([-10.0]), torch.tensor([-10.0])
    better = losses.dpo_loss(ref_c + 2, ref_r - 2, ref_c, ref_r, beta=0.5)
    worse = losses.dpo_loss(ref_c - 2, ref_r + 2, ref_c, ref_r, beta=0.5)
    assert float(better.losses) < math.log(2) < float(worse.losses)
    assert float(better.losses) == pytest.approx(-math.log(1 / (1 + math.exp(-0.5 * 4))))
    assert float(better.chosen_rewards) == pytest.approx(1.0) and float(better.rejected_rewards) == pytest.approx(-1.0)


def test_ipo_targets_a_per_token_gap_of_one_over_two_beta() -> None:
    counts = torch.tensor([4.0])
    # per-token log-ratio gap of exactly 1/(2 beta) = 5 -> zero loss
    at_target = losses.dpo_loss(torch.tensor([20.0]), torch.tensor([0.0]), torch.zeros(1), torch.zeros(1), 0.1,
                                "ipo", chosen_counts=counts, rejected_counts=counts)  # fmt: skip
    assert float(at_target.losses) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="counts"):
        losses.dpo_loss(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1), 0.1, "ipo")
    with pytest.raises(ValueError, match="unknown"):
        losses.dpo_loss(torch.zeros(1), torch.zeros(1), torch.zeros(1), torch.zeros(1), 0.1, "nope")


def test_label_smoothing_makes_the_loss_symmetric_at_one_half() -> None:
    c, r, z = torch.tensor([1.0]), torch.tensor([-1.0]), torch.zeros(1)
    a = losses.dpo_loss(c, r, z, z, 1.0, label_smoothing=0.4999999)
    b = losses.dpo_loss(r, c, z, z, 1.0, label_smoothing=0.4999999)
    assert float(a.losses) == pytest.approx(float(b.losses), abs=1e-5)


def test_simpo_subtracts_the_target_margin() -> None:
    c, r = torch.tensor([-1.0]), torch.tensor([-1.0])
    out = losses.simpo_loss(c, r, beta=2.0, gamma=0.5)
    assert float(out.losses) == pytest.approx(-math.log(1 / (1 + math.exp(0.5))))


def test_orpo_odds_ratio_is_stable_near_probability_one() -> None:
    ratio = losses.orpo_odds_ratio(torch.tensor([-1e-7, -2.0]), torch.tensor([-5.0, -2.0]))
    assert torch.isfinite(ratio).all()
    assert float(ratio[1]) == pytest.approx(math.log(0.5))  # equal odds
    assert float(ratio[0]) > -1e-3  # chosen near certain: odds ratio huge, log sigmoid -> 0


def test_kto_loss_pushes_each_answer_by_its_label() -> None:
    logps, ref = torch.tensor([-5.0, -5.0]), torch.tensor([-6.0, -6.0])  # both answers became more likely
    good = torch.tensor([True, False])
    per, rewards = losses.kto_loss(logps, ref, good, torch.tensor(0.0), beta=1.0, undesirable_weight=2.0)
    assert float(per[0]) == pytest.approx(1 - 1 / (1 + math.exp(-1)))  # desirable: rewarded
    assert float(per[1]) == pytest.approx(2.0 * (1 - 1 / (1 + math.exp(1))))  # undesirable: penalised, weighted
    assert rewards.tolist() == [1.0, 1.0]
    assert float(losses.kto_kl(torch.tensor([-3.0]), torch.tensor([-1.0]))) == 0.0  # clamped at zero


def test_listwise_loss_is_bradley_terry_for_two_and_handles_ties_and_padding() -> None:
    scores = torch.tensor([[1.5, 0.2, 0.0]])
    ranks = torch.tensor([[1, 2, 0]])
    mask = torch.tensor([[True, True, False]])
    bt = bradley_terry_loss(torch.tensor([1.5]), torch.tensor([0.2]))
    torch.testing.assert_close(listwise_loss(scores, ranks, mask), bt)
    # three responses, best first: -[s1 - lse(s1,s2,s3)] - [s2 - lse(s2,s3)]
    s = torch.tensor([[2.0, 1.0, -1.0]])
    expected = -((2 - torch.logsumexp(s[0], 0)) + (1 - torch.logsumexp(s[0, 1:], 0)))
    got = listwise_loss(s, torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.bool))
    assert float(got) == pytest.approx(float(expected))
    # a tie for second: both compete against the same set, no order between them
    tied = listwise_loss(s, torch.tensor([[1, 2, 2]]), torch.ones(1, 3, dtype=torch.bool))
    pair = torch.logsumexp(s[0, 1:], 0)
    assert float(tied) == pytest.approx(float(-((2 - torch.logsumexp(s[0], 0)) + (1 - pair) + (-1 - pair))))


def test_flat_rankings_become_padded_lists() -> None:
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    ranks = torch.tensor([1, 2, 2, 1, 3])
    padded, padded_ranks, mask = as_lists(scores, ranks, torch.tensor([0, 0, 1, 1, 1]))
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert padded_ranks.tolist() == [[1, 2, 0], [2, 1, 3]]
    assert padded[1].tolist() == pytest.approx([0.3, 0.4, 0.5])


def test_tally_averages_between_takes_and_names_its_statistics() -> None:
    tally = Tally(("accuracy", "margin"))
    tally.add("accuracy", 3, 4)
    tally.add("accuracy", 1, 4)
    tally.scope = "val"
    tally.add("accuracy", 1, 1)
    assert tally.take("train") == {"accuracy": 0.5}
    assert tally.take("train") == {}
    assert tally.take("val") == {"accuracy": 1.0}
    with pytest.raises(KeyError, match="statistics"):
        tally.add("nope", 1, 1)


def test_reference_source_per_method_and_objective() -> None:
    p = PreferenceConfig()
    assert p.reference_source("dpo", "lora") == "adapter_off"
    assert p.reference_source("dpo", "full") == "precompute"
    assert p.reference_source("orpo", "lora") == "none"
    assert PreferenceConfig(loss_type="simpo").reference_source("dpo", "full") == "none"
    assert PreferenceConfig(loss_type="simpo").strength("dpo") == 2.0 and p.strength("dpo") == 0.1
    with pytest.raises(ValueError, match="precompute"):
        PreferenceConfig(reference="adapter_off").reference_source("kto", "freeze")


def test_config_refuses_what_cannot_run(tmp_path: Path) -> None:
    from tunesmith.config.load import load_config
    from tunesmith.errors import ConfigError

    def load(**train: object):
        path = tmp_path / "c.yaml"
        import yaml

        path.write_text(
            yaml.safe_dump(
                {
                    "name": "x",
                    "data": {"train": "d.jsonl", "format": "preference"},
                    "method": {"name": "full"},
                    "train": train,
                }
            )
        )
        return load_config(path)

    with pytest.raises(ConfigError, match="precompute"):
        load(objective="dpo", preference={"reference": "adapter_off"})
    with pytest.raises(ConfigError, match="packing"):
        load(objective="dpo", packing=True)
    config = load(objective="dpo")
    config.check_trainable()  # preference data trains dpo
    sft = load(objective="sft")
    with pytest.raises(ConfigError, match="reward, dpo, orpo or kto"):
        sft.check_trainable()


def test_pairs_are_labelled_on_the_answers_only(tiny_model) -> None:
    _, tokenizer = tiny_model
    row = {"prompt": "How are you?", "chosen": "Fine, thanks.", "rejected": "Go away."}
    ex = encode_pair(row, tokenizer)
    assert ex["length"] == 2 * ex["longest"]
    batch = collate_pairs([ex, ex], tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 4 and batch["units"].numel() == 2
    n_prompt = len(ex["prompt_ids"])
    assert (batch["labels"][:, :n_prompt] == -100).all()
    assert batch["labels"][0, n_prompt : n_prompt + len(ex["chosen_ids"])].tolist() == ex["chosen_ids"]
    assert batch["labels"][2, n_prompt : n_prompt + len(ex["rejected_ids"])].tolist() == ex["rejected_ids"]
    # the answers end with the chat template's end-of-turn marker, as in SFT
    assert tokenizer.decode(ex["chosen_ids"]).startswith("Fine, thanks.<|im_end|>")


def test_unpaired_examples_get_another_examples_answer_for_the_kl_term(tiny_model) -> None:
    from tunesmith.train.preference.data import encode_unpaired

    _, tokenizer = tiny_model
    rows = unpair([{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)])
    assert [r["label"] for r in rows] == [True, False] * 3
    examples = [encode_unpaired(r, tokenizer) for r in rows]
    add_mismatched(examples, seed=0)
    assert all(e["kl_answer_ids"] is not e["answer_ids"] for e in examples)
    assert sorted(map(tuple, (e["kl_answer_ids"] for e in examples))) == sorted(
        map(tuple, (e["answer_ids"] for e in examples))
    )  # a permutation: the same answers, each with another prompt
    batch = collate_unpaired(examples, tokenizer.pad_token_id)
    assert batch["desirable"].tolist() == [True, False] * 3
    assert batch["kl_input_ids"].shape[0] == 6


def test_summaries_count_ties_half() -> None:
    from tunesmith.eval.preferences import length_margins, summarise

    out = summarise([1.0, 0.0, -2.0, 3.0])
    assert out["accuracy"] == pytest.approx(0.625) and out["n"] == 4
    assert out["ci"]["accuracy"][0] <= 0.625 <= out["ci"]["accuracy"][1]
    assert length_margins([{"chosen": "long answer", "rejected": "no"}]) == [9.0]
