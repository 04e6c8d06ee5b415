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


def _lora_copy(model):
    import copy

    from tunesmith.adapters import lora
    from tunesmith.config.schema import LoraMethod

    torch.manual_seed(0)
    tuned = lora.apply(copy.deepcopy(model), LoraMethod(r=4, alpha=8))
    torch.manual_seed(1)
    for name, p in tuned.named_parameters():
        if "lora_B" in name:  # B starts at zero, which would leave A's gradients zero and untested
            p.data.normal_(0, 0.05)
    return tuned


def test_compiled_blocks_train_like_eager_blocks_on_packed_rows_of_changing_shape(tiny_model) -> None:
    """train.compile: the same losses and adapter gradients as eager, on packed rows whose length and number
    of examples change every step (the shapes that would recompile a static graph), with names unchanged."""
    import copy

    from tunesmith.data.format import tokenize_example
    from tunesmith.train.packing import collate_packed, use_segment_attention
    from tunesmith.train.sft.loss import CausalLMLoss

    model, tok = tiny_model
    base = copy.deepcopy(model)
    use_segment_attention(base)
    eager, compiled = _lora_copy(base), _lora_copy(base)
    names = [n for n, _ in compiled.named_parameters()]
    assert kernels.compile_blocks(compiled) == len(base.model.layers)
    assert [n for n, _ in compiled.named_parameters()] == names  # adapters save and load as before

    texts = ["short", "a longer tweet about the rain and the market " * 2, "mid length words", "x " * 12, "ok"]
    exs = [tokenize_example({"prompt": t, "completion": "positive"}, tok, "completion") for t in texts]
    rows = [exs[:2], exs[1:5], exs[2:3], exs]  # 2, 4, 1 and 5 examples per row
    torch._dynamo.reset()
    graphs = []
    for row in rows:
        batch = collate_packed(row)
        grads = []
        for m in (eager, compiled):
            m.zero_grad(set_to_none=True)
            loss, _ = CausalLMLoss(m)(batch)
            loss.backward()
            grads.append((loss.item(), [p.grad.clone() for p in m.parameters() if p.requires_grad]))
        assert abs(grads[0][0] - grads[1][0]) < 1e-5
        for g_eager, g_compiled in zip(grads[0][1], grads[1][1], strict=True):
            torch.testing.assert_close(g_compiled, g_eager, rtol=1e-4, atol=1e-5)
        graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    assert graphs[0] > 0  # it did compile
    assert graphs[-1] == graphs[0], f"graphs after each row: {graphs}; new row shapes must not recompile"


def test_compile_without_a_cxx_compiler_says_what_to_do(monkeypatch, tiny_model_dir) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(kernels.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match=r"train.compile needs a C\+\+ compiler.*train.compile=false"):
        kernels.compile_blocks(model)
