"""train.kernels: the default leaves the model alone; 'liger' refuses clearly where it cannot run."""

from __future__ import annotations

import sys

import pytest
import torch

from tunesmith.errors import ConfigError
from tunesmith.train import kernels


def test_torch_kernels_leave_the_model_alone(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {name: type(m) for name, m in model.named_modules()}
    assert kernels.apply(model, "torch") == []
    assert {name: type(m) for name, m in model.named_modules()} == before


def test_unknown_kernels_are_refused():
    with pytest.raises(ConfigError, match="unknown kernels 'triton'"):
        kernels.apply(object(), "triton")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_liger_without_cuda_says_so(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        kernels.apply(model, "liger")


def test_liger_missing_package_and_model_type_are_named(monkeypatch, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"liger-kernel package.*tunesmith\[liger\]"):
        kernels.apply(model, "liger")

    class Fake:
        def _apply_liger_kernel_to_instance(self, **kwargs):  # pragma: no cover - must not be reached
            raise AssertionError("patched a model type it should refuse")

    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", Fake())
    model.config.model_type = "gpt2"
    with pytest.raises(ConfigError, match="no Liger kernels for model type 'gpt2'"):
        kernels.apply(model, "liger")


def test_liger_is_applied_with_our_loss_kept(monkeypatch, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    calls = []

    class Fake:
        @staticmethod
        def _apply_liger_kernel_to_instance(**kwargs):
            calls.append(kwargs)

    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", Fake())
    assert kernels.apply(model, "liger") == ["rms_norm", "swiglu", "rope"]
    (call,) = calls
    assert call["model"] is model
    assert call["fused_linear_cross_entropy"] is False and call["cross_entropy"] is False
