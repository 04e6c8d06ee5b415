from __future__ import annotations

from pathlib import Path

import torch

from tunesmith.adapters import lora
from tunesmith.config.schema import LoraMethod, TrainConfig
from tunesmith.models.load import load_model
from tunesmith.train.optim import build_optimizer, param_groups


def test_weight_decay_skips_one_dimensional_parameters() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    groups = param_groups(model, weight_decay=0.1, lr=1e-3)
    decayed = {id(p) for g in groups if g["weight_decay"] for p in g["params"]}
    assert decayed == {id(model[0].weight)}
    assert all(g["lr"] == 1e-3 for g in groups)


def test_loraplus_gives_the_b_matrices_a_larger_learning_rate(tiny_model_dir: Path) -> None:
    model, _ = load_model(str(tiny_model_dir))
    model = lora.apply(model, LoraMethod(r=4, loraplus_ratio=16))
    optimizer = build_optimizer(model, TrainConfig(lr=1e-4, weight_decay=0.01))
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert lr_of[id(p)] == (16e-4 if "lora_B" in name else 1e-4), name
    assert any("lora_B" in n for n, p in model.named_parameters() if p.requires_grad)


def test_rslora_scales_by_the_square_root_of_the_rank(tiny_model_dir: Path) -> None:
    model, _ = load_model(str(tiny_model_dir))
    model = lora.apply(model, LoraMethod(r=4, alpha=8, rslora=True))
    layer = next(m for m in model.modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict))
    assert layer.scaling["default"] == 8 / 4**0.5
