"""Our preference losses equal TRL's on the same model and batch (TRL is a dev dependency, used only here).

Each test builds TRL's own trainer around a tiny random model, takes a batch from TRL's collator, computes
TRL's loss, and computes ours from the same token ids, to 1e-5 in fp32.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

from tunesmith.train.losses import labelled_logps_per_row
from tunesmith.train.preference import losses
from tunesmith.train.preference.config import PreferenceConfig
from tunesmith.train.preference.loss import KTOLoss, PreferenceLoss, sequence_logps
from tunesmith.train.reward.config import RewardConfig
from tunesmith.train.reward.loss import RewardLoss
from tunesmith.train.sft.loss import CausalLMLoss

PAIRS = [
    ("Is it possible to download a car?", "I'm not sure what you mean.", "No."),
    ("My wife loves to cook.", "Great, what can I help you with today?", "That's great, I hope she cooks for you."),
    ("What is the capital of Kenya?", "Nairobi.", "I don't know, maybe Mombasa or somewhere else."),
    ("How do I say thank you in Hausa?", "You can say 'na gode'.", "Thank you."),
]


def _chat(text: str, role: str) -> list[dict[str, str]]:
    return [{"role": role, "content": text}]


def _models(model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return AutoModelForCausalLM.from_pretrained(model_dir), AutoModelForCausalLM.from_pretrained(model_dir), tokenizer


def _perturb(model) -> None:
    """Make the policy differ from the reference, so the loss is not log 2 for any implementation."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def _dpo_trainer(tmp_path: Path, model_dir: Path, loss_type: str, beta: float = 0.1):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    policy, ref, tokenizer = _models(model_dir)
    _perturb(policy)
    rows = [
        {"prompt": _chat(p, "user"), "chosen": _chat(c, "assistant"), "rejected": _chat(r, "assistant")}
        for p, c, r in PAIRS
    ]
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=len(rows),
        report_to=[],
        beta=beta,
        loss_type=[loss_type],
        use_cpu=True,
        bf16=False,
    )
    trainer = DPOTrainer(
        model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer, batch


def _our_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    n = batch["input_ids"].shape[0] // 2
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "labels": labels,
        "units": torch.ones(n),
    }


def test_sequence_logps_equal_full_logits_log_softmax(tiny_model_dir: Path) -> None:
    from trl.trainer.utils import selective_log_softmax

    model, _, _ = _models(tiny_model_dir)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 200, (3, 12), generator=g)
    labels = ids.clone()
    labels[:, :5] = -100
    labels[2, 9:] = -100
    logits = model(input_ids=ids).logits
    targets = labels[:, 1:]
    full = selective_log_softmax(logits[:, :-1], targets.clamp(min=0))
    expected = (full * (targets != -100)).sum(-1)
    scorer = CausalLMLoss(model, chunk_size=4)  # several chunks, checkpointed
    got, counts = sequence_logps(scorer, ids, torch.ones_like(ids), labels)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert counts.tolist() == [7, 7, 4]
    got.sum().backward()  # gradients flow through the chunked head
    assert model.get_output_embeddings().weight.grad is not None


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_dpo_loss_equals_trl_dpo_trainer(tmp_path: Path, tiny_model_dir: Path, loss_type: str) -> None:
    trainer, batch = _dpo_trainer(tmp_path, tiny_model_dir, loss_type)
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer._compute_loss(trainer.model, batch, False)
        ours = _our_batch(batch)
        n = ours["units"].numel()
        ref, _ = sequence_logps(
            CausalLMLoss(trainer.ref_model), ours["input_ids"], ours["attention_mask"], ours["labels"]
        )
        ours["ref_chosen"], ours["ref_rejected"] = ref[:n], ref[n:]
        module = PreferenceLoss(trainer.model, "dpo", PreferenceConfig(loss_type=loss_type, beta=0.1), "precompute")
        loss, units = module(ours)
    assert units == len(PAIRS)
    assert abs(float(loss) - float(expected)) < 1e-5, (float(loss), float(expected))
    assert abs(float(expected) - 0.6931) > 1e-3  # the policy really differs from the reference


def test_dpo_adapter_off_reference_is_the_base_model(tiny_model_dir: Path) -> None:
    """With a fresh LoRA adapter the policy equals the base, so DPO starts at exactly log 2."""
    from tunesmith.adapters import lora
    from tunesmith.config.schema import LoraMethod
    from tunesmith.train.preference.data import collate_pairs, encode_pair

    model, _, tokenizer = _models(tiny_model_dir)
    model = lora.apply(model, LoraMethod(r=4, alpha=8))
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS]
    batch = collate_pairs([encode_pair(r, tokenizer) for r in rows], tokenizer.pad_token_id)
    module = PreferenceLoss(model, "dpo", PreferenceConfig(), "adapter_off")
    loss, _ = module(batch)
    assert abs(float(loss) - 0.693147) < 1e-5
    loss.backward()  # the adapter gets a gradient, the reference pass none
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None for g in grads)


@pytest.mark.parametrize("loss_type", ["sigmoid", "simpo"])
def test_simpo_and_cpo_sigmoid_equal_trl_cpo_loss(loss_type: str) -> None:
    from trl.experimental.cpo import CPOTrainer

    g = torch.Generator().manual_seed(0)
    chosen, rejected = -torch.rand(6, generator=g) * 3, -torch.rand(6, generator=g) * 3
    trl = types.SimpleNamespace(
        alpha=0.0,
        beta=2.0,
        simpo_gamma=0.5,
        label_smoothing=0.1,
        loss_type=loss_type,
        accelerator=types.SimpleNamespace(device="cpu"),
    )
    expected, exp_c, exp_r = CPOTrainer.cpo_loss(trl, chosen, rejected)
    gamma = 0.5 if loss_type == "simpo" else 0.0
    ours = losses.simpo_loss(chosen, rejected, beta=2.0, gamma=gamma, label_smoothing=0.1)
    torch.testing.assert_close(ours.losses, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.chosen_rewards, exp_c, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.rejected_rewards, exp_r, rtol=0, atol=1e-6)


def test_orpo_loss_equals_trl_odds_ratio_loss() -> None:
    from trl.experimental.orpo import ORPOTrainer

    g = torch.Generator().manual_seed(0)
    # mean log-probs per token, including values near 0 where log(1 - p) needs care
    chosen = torch.cat([-torch.rand(5, generator=g) * 4, torch.tensor([-1e-4])])
    rejected = torch.cat([-torch.rand(5, generator=g) * 4, torch.tensor([-3.0])])
    trl = types.SimpleNamespace(beta=0.25, accelerator=types.SimpleNamespace(device="cpu"))
    ratio_losses, _, _, _, _ = ORPOTrainer.odds_ratio_loss(trl, chosen, rejected)
    nll = torch.tensor(2.5)
    expected = nll - ratio_losses.mean()  # ORPOTrainer.get_batch_loss_metrics
    ours = losses.orpo_loss(chosen, rejected, nll.expand(6), beta=0.25)
    assert abs(float(ours.losses.mean()) - float(expected)) < 1e-6


def test_kto_loss_equals_trl_kto_trainer(tmp_path: Path, tiny_model_dir: Path) -> None:
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer

    policy, ref, tokenizer = _models(tiny_model_dir)
    _perturb(policy)
    rows = []
    for p, c, r in PAIRS:
        rows.append({"prompt": _chat(p, "user"), "completion": _chat(c, "assistant"), "label": True})
        rows.append({"prompt": _chat(p, "user"), "completion": _chat(r, "assistant"), "label": False})
    args = KTOConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=len(rows),
        report_to=[],
        beta=0.1,
        desirable_weight=1.0,
        undesirable_weight=1.5,
        use_cpu=True,
        bf16=False,
    )
    trainer = KTOTrainer(
        model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
    )
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer._compute_loss(trainer.model, batch, False)
        labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
        kl_labels = batch["KL_input_ids"].masked_fill(batch["KL_completion_mask"] == 0, -100)
        ref_scorer = CausalLMLoss(trainer.ref_model)
        ref_logps, _ = sequence_logps(ref_scorer, batch["input_ids"], batch["attention_mask"], labels)
        ref_kl, _ = sequence_logps(ref_scorer, batch["KL_input_ids"], batch["KL_attention_mask"], kl_labels)
        ours = {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "labels": labels,
            "kl_input_ids": batch["KL_input_ids"],
            "kl_attention_mask": batch["KL_attention_mask"],
            "kl_labels": kl_labels,
            "desirable": torch.as_tensor(batch["label"], dtype=torch.bool),
            "units": torch.ones(len(batch["label"])),
            "ref_logps": ref_logps,
            "ref_kl_logps": ref_kl,
        }
        settings = PreferenceConfig(beta=0.1, desirable_weight=1.0, undesirable_weight=1.5)
        loss, _ = KTOLoss(trainer.model, settings, "precompute")(ours)
    assert abs(float(loss) - float(expected)) < 1e-5, (float(loss), float(expected))


@pytest.mark.parametrize("margin", [False, True])
def test_reward_loss_equals_trl_reward_trainer(tmp_path: Path, tiny_model_dir: Path, margin: bool) -> None:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig as TrlRewardConfig
    from trl import RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    rows = [
        {"prompt": _chat(p, "user"), "chosen": _chat(c, "assistant"), "rejected": _chat(r, "assistant")}
        for p, c, r in PAIRS
    ]
    if margin:
        for i, row in enumerate(rows):
            row["margin"] = 0.5 * i
    args = TrlRewardConfig(
        output_dir=str(tmp_path / "trl"),
        per_device_train_batch_size=len(rows),
        report_to=[],
        center_rewards_coefficient=0.01,
        use_cpu=True,
        bf16=False,
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.compute_loss(trainer.model, dict(batch))
        n = batch["input_ids"].shape[0] // 2
        ours = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "units": torch.ones(n)}
        if margin:
            ours["margin"] = batch["margin"]
        loss, _ = RewardLoss(trainer.model, RewardConfig(margin=margin, center=0.01))(ours)
    assert abs(float(loss) - float(expected)) < 1e-5, (float(loss), float(expected))


def test_labelled_logps_have_no_rows_without_labels() -> None:
    hidden = torch.randn(2, 4, 8, requires_grad=True)
    head = torch.nn.Linear(8, 16)
    labels = torch.full((2, 4), -100)
    sums, counts = labelled_logps_per_row(hidden, labels, head)
    assert sums.tolist() == [0.0, 0.0] and counts.tolist() == [0, 0]
    sums.sum().backward()  # still connected to the graph
    assert hidden.grad is not None
