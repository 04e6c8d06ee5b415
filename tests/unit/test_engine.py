from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tunesmith.config.schema import LoraMethod, TrainConfig
from tunesmith.data.format import tokenize_example
from tunesmith.errors import TrainingError
from tunesmith.models.load import load_model
from tunesmith.train import checkpoint as ckpt
from tunesmith.train.engine import fit
from tunesmith.train.sft.loss import CausalLMLoss


def _examples(tok, n: int = 12) -> list[dict[str, list[int]]]:
    words = ["good", "bad", "so so", "wahala", "sweet"]
    return [
        tokenize_example(
            {"prompt": f"tweet {words[i % 5]} {i}", "completion": ["positive", "negative"][i % 2]}, tok, "completion"
        )
        for i in range(n)
    ]


def _fresh(model_dir: Path, packing: bool = False):
    from tunesmith.adapters import lora
    from tunesmith.train.packing import use_segment_attention

    torch.manual_seed(0)
    model, tok = load_model(str(model_dir))
    if packing:
        use_segment_attention(model)
    return lora.apply(model, LoraMethod(r=4, alpha=8)), tok


def _run(
    model_dir: Path, tmp: Path, config: TrainConfig, resume: bool = False, model=None, halt_after=None, val_examples=()
):
    model, tok = model if model is not None else _fresh(model_dir, config.packing)
    result = fit(
        CausalLMLoss(model),
        _examples(tok),
        config,
        pad_id=tok.pad_token_id,
        seed=0,
        precision="fp32",
        checkpoint_dir=tmp / "ck",
        metrics_path=tmp / "metrics.jsonl",
        resume=resume,
        halt_after=halt_after,
        val_examples=val_examples,
    )
    return model, result


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_training_lowers_loss_and_changes_only_adapter_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tok = _fresh(tiny_model_dir)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    batch = __import__("tunesmith.train.batching", fromlist=["collate"]).collate(_examples(tok), tok.pad_token_id)
    before = float(CausalLMLoss(model)(batch)[0])
    config = TrainConfig(epochs=8, lr=2e-2, batch_tokens=512, max_batch_size=3, precision="fp32", warmup_ratio=0)
    _run(tiny_model_dir, tmp_path, config, model=(model, tok))
    after = float(CausalLMLoss(model)(batch)[0])
    assert after < before * 0.8
    for n, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p.cpu(), frozen[n].cpu()), n


@pytest.mark.parametrize("packing", [False, True], ids=["padded", "packed"])
def test_resume_continues_exactly(tiny_model_dir: Path, tmp_path: Path, packing: bool) -> None:
    config = TrainConfig(
        epochs=2,
        lr=1e-2,
        batch_tokens=256,
        max_batch_size=3,
        precision="fp32",
        save_every=2,
        keep_last=10,
        packing=packing,
    )
    straight, r1 = _run(tiny_model_dir, tmp_path / "a", config)
    # a run killed after step 7 (its last checkpoint is step 6, mid-epoch), then resumed with a fresh model
    _, killed = _run(tiny_model_dir, tmp_path / "b", config, halt_after=7)
    assert killed.state.step == 7 and r1.state.step == 8
    resumed, r2 = _run(tiny_model_dir, tmp_path / "b", config, resume=True)
    assert r2.state.step == r1.state.step and r2.steps == 2
    for (n, a), b in zip(_trainable(straight).items(), _trainable(resumed).values(), strict=True):
        torch.testing.assert_close(a, b, msg=n)


def test_packed_training_matches_padded_training(tiny_model_dir: Path, tmp_path: Path) -> None:
    """One optimizer step over the same 12 examples: one packed row vs one padded batch."""
    base = {
        "epochs": 1,
        "lr": 1e-2,
        "precision": "fp32",
        "max_steps": 1,
        "warmup_ratio": 0,
        "clip_grad": None,
        "batch_tokens": 10_000,
        "max_batch_size": 12,
    }
    padded, _ = _run(tiny_model_dir, tmp_path / "a", TrainConfig(**base))
    packed, _ = _run(tiny_model_dir, tmp_path / "b", TrainConfig(**base, packing=True))
    for (n, a), b in zip(_trainable(padded).items(), _trainable(packed).values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=n)


def test_grad_accumulation_equals_bigger_batch(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = {"epochs": 1, "lr": 1e-2, "precision": "fp32", "max_steps": 1, "warmup_ratio": 0, "clip_grad": None}
    # 4 micro-batches of 3 examples, accumulated, versus one batch of 12 examples
    small, _ = _run(
        tiny_model_dir, tmp_path / "a", TrainConfig(**base, batch_tokens=10_000, max_batch_size=3, grad_accum=4)
    )
    big, _ = _run(tiny_model_dir, tmp_path / "b", TrainConfig(**base, batch_tokens=10_000, max_batch_size=12))
    for (n, a), b in zip(_trainable(small).items(), _trainable(big).values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=n)


def test_non_finite_loss_stops_with_step_and_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, tok = _fresh(tiny_model_dir)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            with torch.no_grad():
                p.fill_(float("nan"))
            break
    with pytest.raises(TrainingError, match="optimizer step 1.*no checkpoint"):
        _run(tiny_model_dir, tmp_path, TrainConfig(precision="fp32"), model=(model, tok))


def test_checkpoints_are_verified_and_pruned(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=3, lr=1e-2, batch_tokens=256, precision="fp32", save_every=1, keep_last=2)
    _run(tiny_model_dir, tmp_path, config)
    kept = sorted((tmp_path / "ck").glob("step-*"))
    assert len(kept) == 2 and all(ckpt.verify(p) for p in kept)
    (kept[-1] / "trainable.safetensors").write_bytes(b"corrupt")
    assert ckpt.latest_checkpoint(tmp_path / "ck") == kept[0]  # a corrupted checkpoint is skipped


def test_early_stopping_after_patience_and_best_is_kept(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import tunesmith.train.engine as engine

    values = iter([1.0, 0.9, 0.95, 0.97, 0.5, 0.4])
    monkeypatch.setattr(engine, "evaluate_loss", lambda *a, **k: next(values))
    model, tok = _fresh(tiny_model_dir)
    config = TrainConfig(
        epochs=5, lr=1e-2, batch_tokens=256, max_batch_size=3, precision="fp32", eval_every=1, early_stopping=2
    )
    _, result = _run(tiny_model_dir, tmp_path, config, model=(model, tok), val_examples=_examples(tok, 3))
    assert result.state.stopped_early and result.state.step == 4
    assert result.state.best_step == 2 and result.best_checkpoint.endswith("step-0000002")
    assert '"event": "early stop"' in (tmp_path / "metrics.jsonl").read_text()


def test_l2sp_penalty_value() -> None:
    from tunesmith.train.losses import l2sp_penalty

    w = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    w0 = [torch.tensor([0.0, 0.0]), torch.tensor([[1.0]])]
    assert float(l2sp_penalty(w, w0, 0.5)) == pytest.approx(0.25 * (1 + 4 + 4))


def test_l2sp_keeps_full_tuning_near_the_pretrained_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tunesmith.adapters import full
    from tunesmith.config.schema import FullMethod

    drift = {}
    for strength in (0.0, 50.0):
        torch.manual_seed(0)
        model, tok = load_model(str(tiny_model_dir))
        start = {n: p.detach().clone() for n, p in model.named_parameters()}
        model = full.apply(model, FullMethod())
        config = TrainConfig(epochs=3, lr=1e-2, batch_tokens=256, max_batch_size=3, precision="fp32", l2sp=strength)
        _run(tiny_model_dir, tmp_path / str(strength), config, model=(model, tok))
        drift[strength] = sum(float((p.cpu() - start[n]).pow(2).sum()) for n, p in model.named_parameters())
    assert drift[50.0] < 0.5 * drift[0.0]


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir: Path) -> None:
    from tunesmith.train.batching import collate

    grads = []
    for checkpointing in (False, True):
        model, tok = _fresh(tiny_model_dir)
        if checkpointing:
            base = model.get_base_model()
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        loss_module = CausalLMLoss(model).train()
        loss, _ = loss_module(collate(_examples(tok, 4), tok.pad_token_id))
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.requires_grad])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_bf16_frozen_base_matches_fp32_base_under_autocast(tiny_model_dir: Path) -> None:
    from tunesmith.train.batching import collate
    from tunesmith.train.lifecycle import frozen_to_bf16

    losses = []
    for compact in (False, True):
        model, tok = _fresh(tiny_model_dir)
        if compact:
            assert frozen_to_bf16(model) > 0
            assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = CausalLMLoss(model)(collate(_examples(tok, 4), tok.pad_token_id))
        losses.append(float(loss))
    assert losses[0] == pytest.approx(losses[1], rel=1e-2)


def test_freeze_names_a_missing_module(tiny_model_dir: Path) -> None:
    from tunesmith.adapters import freeze
    from tunesmith.config.schema import FreezeMethod

    model, _ = load_model(str(tiny_model_dir))
    with pytest.raises(ValueError, match="no module named 'decoder_blocks'"):
        freeze.apply(model, FreezeMethod(last_n_layers=0, modules=["decoder_blocks"]))


def test_skipping_lora_input_casts_changes_nothing_under_autocast(tiny_model_dir: Path) -> None:
    from tunesmith.train.lifecycle import frozen_to_bf16

    model, tok = _fresh(tiny_model_dir)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    frozen_to_bf16(model)
    batch = __import__("tunesmith.train.batching", fromlist=["collate"]).collate(_examples(tok), tok.pad_token_id)
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    assert layers and not any(m.cast_input_dtype_enabled for m in layers)  # lora.apply switched them off

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _ = CausalLMLoss(model)(batch)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    skipped = loss_and_grads()
    for m in layers:
        m.cast_input_dtype_enabled = True
    cast = loss_and_grads()
    assert torch.equal(skipped[0], cast[0])
    for a, b in zip(skipped[1], cast[1], strict=True):
        assert torch.equal(a, b)


def test_the_final_step_is_validated_when_eval_every_does_not_divide_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    """An epoch ending between evaluations still gets its last state validated and considered for best."""
    import json

    model, tok = _fresh(tiny_model_dir)
    config = TrainConfig(epochs=1, lr=1e-2, batch_tokens=256, max_batch_size=2, precision="fp32", eval_every=4)
    _, result = _run(tiny_model_dir, tmp_path, config, model=(model, tok), val_examples=_examples(tok, 3))
    assert result.state.step % 4  # the run does not end on an evaluation step
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    validated = [r["step"] for r in rows if "val_loss" in r]
    assert validated[-1] == result.state.step


def test_a_second_training_in_the_process_may_use_another_precision(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Evaluation trains the encoder baseline after a bf16 run; accelerate's per-process state must not refuse it."""
    for i, precision in enumerate(["bf16", "fp32"]):
        model, tok = _fresh(tiny_model_dir)
        result = fit(
            CausalLMLoss(model),
            _examples(tok),
            TrainConfig(epochs=1, lr=1e-3, batch_tokens=256),
            pad_id=tok.pad_token_id,
            seed=0,
            precision=precision,
            checkpoint_dir=tmp_path / f"ck{i}",
            metrics_path=tmp_path / f"metrics{i}.jsonl",
        )
        assert result.steps >= 1


class _Exploit:
    """Pickles into a call of ``os.system``: what a malicious checkpoint file would carry."""

    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/tunesmith-pwned",))


def test_a_checkpoint_with_pickled_code_is_refused_not_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tunesmith.train.checkpoint import load_checkpoint

    Path("/tmp/tunesmith-pwned").unlink(missing_ok=True)
    _run(tiny_model_dir, tmp_path, TrainConfig(epochs=1, lr=1e-3, batch_tokens=256))
    checkpoint = sorted((tmp_path / "ck").glob("step-*"))[-1]
    torch.save({"state": {}, "param_groups": [], "x": _Exploit()}, checkpoint / "optimizer.pt")
    fresh, _ = _fresh(tiny_model_dir)
    optimizer = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_checkpoint(checkpoint, CausalLMLoss(fresh), optimizer, scheduler)
    assert not Path("/tmp/tunesmith-pwned").exists()
