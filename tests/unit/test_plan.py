"""The planner: memory components, the live-bytes probe, and the recommendation rules."""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import TypeAdapter

from tunesmith.adapters import plan
from tunesmith.adapters.recommend import FEW_ROWS, MANY_ROWS, TOO_FEW_ROWS, recommend
from tunesmith.config.schema import MethodConfig, TrainConfig
from tunesmith.models.load import load_model


def _method(**raw):
    return TypeAdapter(MethodConfig).validate_python(raw)


def test_live_bytes_tracks_peak_and_frees() -> None:
    mode = plan.LiveBytes()
    with mode:
        a = torch.ones(1000)  # 4,000 bytes
        b = torch.ones(500)  # 2,000 more
        del a
        c = torch.ones(250)  # 1,000
    assert mode.peak >= 6000 and mode.live < 6000
    del b, c


def test_estimate_components_follow_the_method(tiny_model_dir: Path) -> None:
    model, _ = load_model(str(tiny_model_dir))
    train = TrainConfig(batch_tokens=256)
    est = {
        name: plan.estimate(model, _method(**raw), train, "bf16", runtime=0, example_length=32)
        for name, raw in {
            "full": {"name": "full"},
            "lora": {"name": "lora", "r": 4},
            "freeze": {"name": "freeze", "last_n_layers": 1},
        }.items()
    }
    total = est["full"].total
    assert est["full"].weights == {"fp32": total * 4}
    assert est["full"].gradients == total * 4 and est["full"].optimizer == total * 8
    assert sum(est["lora"].weights.values()) < sum(est["full"].weights.values())  # frozen base in bf16
    assert est["lora"].optimizer == est["lora"].trainable * 8
    assert 0 < est["freeze"].activations < est["lora"].activations  # backward stops at the top block
    assert est["freeze"].step_cost <= est["lora"].step_cost < est["full"].step_cost == 1.0
    eight_bit = plan.estimate(
        model, _method(name="full"), train.model_copy(update={"optimizer": "adamw8bit"}), "bf16", runtime=0
    )
    assert eight_bit.optimizer == total * 2
    checkpointed = plan.estimate(
        model, _method(name="full"), train.model_copy(update={"gradient_checkpointing": True}), "bf16", runtime=0
    )
    assert checkpointed.activations < est["full"].activations


def test_activation_probe_is_deterministic_and_counts_the_method(tiny_model_dir: Path) -> None:
    model, _ = load_model(str(tiny_model_dir))
    full = plan.activation_bytes_per_token(model, _method(name="full"), "fp32", length=32)
    assert full == plan.activation_bytes_per_token(model, _method(name="full"), "fp32", length=32)
    prompt = plan.activation_bytes_per_token(model, _method(name="prompt", virtual_tokens=32), "fp32", length=32)
    assert full[0] > 0 and prompt[0] > full[0]  # 32 virtual tokens per example double the tokens a block sees


def _estimate(name: str, peak_gb: float, trainable: int = 10) -> plan.Estimate:
    return plan.Estimate(
        method=name,
        trainable=trainable,
        total=100,
        weights={"fp32": int(peak_gb * plan.GB)},
        gradients=0,
        optimizer=0,
        activations=0,
        head=0,
        runtime=0,
        step_cost=1.0,
    )


def test_recommendation_follows_data_then_memory() -> None:
    estimates = {
        n: _estimate(n, gb) for n, gb in {"full": 8, "lora": 2, "qlora": 1, "freeze": 1.5, "ia3": 1.9}.items()
    }
    gb = plan.GB
    assert recommend(estimates, TOO_FEW_ROWS - 1, 16 * gb)[0] == "fewshot"
    assert recommend(estimates, FEW_ROWS - 1, 16 * gb)[0] == "ia3"
    assert recommend(estimates, MANY_ROWS, 16 * gb)[0] == "full"
    assert recommend(estimates, MANY_ROWS, 8 * gb)[0] == "lora"  # full needs 8 GB: no headroom
    assert recommend(estimates, 1000, 16 * gb)[0] == "lora"
    choice, why = recommend(estimates, 1000, 2 * gb)
    assert choice == "qlora" and "LoRA does not fit" in why
    assert recommend(estimates, 1000, 0.5 * gb)[0] == "qlora"  # nothing fits: the smallest peak


def test_preference_rows_are_profiled_as_their_answers() -> None:
    from tunesmith.adapters.recommend import _answered

    pair = {"prompt": "Human: hi\n\nAssistant:", "chosen": "hello", "rejected": "go away"}
    rows = _answered(pair)
    assert [r["completion"] for r in rows] == ["hello", "go away"]
    assert rows[0]["prompt"] == [{"role": "user", "content": "hi"}]  # an HH dialogue becomes chat turns
    assert len(_answered({"prompt": "q", "responses": ["a", "b", "c"], "ranks": [1, 2, 3]})) == 3
    sft = {"prompt": "q", "completion": "a"}
    assert _answered(sft) == [sft]
