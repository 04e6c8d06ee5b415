"""QLoRA (bitsandbytes-quantized base + LoRA) and bitsandbytes' 8-bit / paged AdamW, on tiny models on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tunesmith.adapters import for_inference, qlora
from tunesmith.config.schema import QloraMethod, TrainConfig
from tunesmith.data.format import tokenize_example
from tunesmith.models.load import load_model
from tunesmith.train.batching import collate, to_device
from tunesmith.train.engine import fit
from tunesmith.train.optim import build_optimizer
from tunesmith.train.sft.loss import CausalLMLoss

bnb = pytest.importorskip("bitsandbytes")


def _batch(tok) -> dict[str, torch.Tensor]:
    rows = [
        {"prompt": f"tweet {w} {i}", "completion": ["positive", "negative"][i % 2]} for i, w in enumerate("abcdef")
    ]
    return collate([tokenize_example(r, tok, "completion") for r in rows], tok.pad_token_id)


@pytest.mark.parametrize("bits", [4, 8])
def test_qlora_quantizes_block_linears_and_trains_only_the_adapter(tiny_model_64_dir: Path, bits: int) -> None:
    model, tok = load_model(str(tiny_model_64_dir))
    fp_bytes = sum(m.weight.numel() * 4 for m in model.modules() if type(m) is torch.nn.Linear)
    model = qlora.apply(model, QloraMethod(r=4, alpha=8, bits=bits))
    layer = bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt
    quantized = [m for m in model.modules() if isinstance(m, layer)]
    assert len(quantized) == 2 * 7  # q, k, v, o, gate, up, down in each of 2 blocks
    q_bytes = sum(m.weight.numel() * m.weight.element_size() for m in quantized)
    assert q_bytes < fp_bytes / (7 if bits == 4 else 3.5)  # lm_head stays full precision, not counted in q_bytes
    assert all(not p.requires_grad for m in quantized for p in m.parameters(recurse=False))

    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    batch, loss_fn = _batch(tok), CausalLMLoss(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    before = float(loss_fn(batch)[0])
    for _ in range(10):
        loss, _ = loss_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert float(loss_fn(batch)[0]) < before
    for n, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p.cpu(), frozen[n].cpu()), n


def test_qlora_adapter_round_trip_gives_identical_outputs(tiny_model_64_dir: Path, tmp_path: Path) -> None:
    model, tok = load_model(str(tiny_model_64_dir))
    model = qlora.apply(model, QloraMethod(r=4, alpha=8))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()  # B starts at zero; make the adapter matter
    batch = to_device(_batch(tok), model)
    model.eval()
    expected = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    qlora.save(model, tmp_path)
    assert (tmp_path / "quantization.json").is_file() and (tmp_path / "adapter_config.json").is_file()

    base, _ = load_model(str(tiny_model_64_dir))
    loaded = for_inference(qlora.load(base, tmp_path))
    assert not hasattr(loaded, "merge_and_unload") or loaded.tunesmith_quantization  # kept unmerged
    got = loaded.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(got, expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a limit of bitsandbytes' CPU kernels only")
def test_qlora_names_the_layer_when_widths_do_not_fit_the_cpu_kernels(tiny_model_dir: Path) -> None:
    model, _ = load_model(str(tiny_model_dir))  # hidden width 32: less than one 64-wide block
    with pytest.raises(ValueError, match=r"q_proj is 32 -> 32.*bits: 8"):
        qlora.apply(model, QloraMethod(bits=4))


@pytest.mark.parametrize("name", ["adamw8bit", "paged_adamw", "paged_adamw8bit"])
def test_bitsandbytes_optimizers_train_and_resume(tiny_model_64_dir: Path, tmp_path: Path, name: str) -> None:
    from tunesmith.adapters import lora
    from tunesmith.config.schema import LoraMethod

    def run(out: Path, halt_after: int | None = None, resume: bool = False):
        torch.manual_seed(0)
        model, tok = load_model(str(tiny_model_64_dir))
        model = lora.apply(model, LoraMethod(r=64, alpha=64))  # 64 x 64 = 4096 elements: bnb's 8-bit minimum
        rows = [{"prompt": f"tweet {i}", "completion": ["positive", "negative"][i % 2]} for i in range(12)]
        config = TrainConfig(
            epochs=2, lr=1e-2, batch_tokens=256, max_batch_size=3, precision="fp32", optimizer=name, save_every=2
        )
        result = fit(
            CausalLMLoss(model),
            [tokenize_example(r, tok, "completion") for r in rows],
            config,
            pad_id=tok.pad_token_id,
            seed=0,
            precision="fp32",
            checkpoint_dir=out / "ck",
            metrics_path=out / "metrics.jsonl",
            resume=resume,
            halt_after=halt_after,
        )
        return model, result, config

    straight, r1, config = run(tmp_path / "a")
    run(tmp_path / "b", halt_after=5)
    resumed, r2, _ = run(tmp_path / "b", resume=True)
    assert r2.state.step == r1.state.step
    for (n, a), (_, b) in zip(
        ((n, p) for n, p in straight.named_parameters() if p.requires_grad),
        ((n, p) for n, p in resumed.named_parameters() if p.requires_grad),
        strict=True,
    ):
        torch.testing.assert_close(a, b, msg=n)

    optimizer = build_optimizer(straight, config)
    assert type(optimizer).__module__.startswith("bitsandbytes")
    p = next(p for p in straight.parameters() if p.requires_grad and p.numel() >= 4096)
    p.grad = torch.ones_like(p)
    optimizer.step()
    assert optimizer.state[p]["state1"].dtype == (torch.uint8 if "8bit" in name else torch.float32)


def test_qlora_with_the_adapter_disabled_is_the_quantized_base(tiny_model_64_dir: Path) -> None:
    model, tok = load_model(str(tiny_model_64_dir))
    model = qlora.apply(model, QloraMethod(r=4, alpha=8))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.normal_()
    base, _ = load_model(str(tiny_model_64_dir))
    qlora.quantize_linears(base, QloraMethod(r=4, alpha=8))
    batch = to_device(_batch(tok), model)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    model.eval()
    with torch.no_grad(), model.disable_adapter():
        disabled = model(**inputs).logits
    with torch.no_grad():
        adapted = model(**inputs).logits
        torch.testing.assert_close(disabled, base.eval()(**inputs).logits)
    assert not torch.allclose(adapted, disabled)
