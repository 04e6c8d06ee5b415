from __future__ import annotations

import copy

import pytest
import torch

from tunesmith.data.format import tokenize_example
from tunesmith.train.batching import collate
from tunesmith.train.packing import collate_packed, pack_plan, use_segment_attention
from tunesmith.train.sft.loss import CausalLMLoss, causal_parts


def _examples(tok, loss_on: str = "completion") -> list[dict]:
    prompts = ["short", "a somewhat longer tweet about the rain " * 2, "mid length words here", "x " * 15]
    return [
        tokenize_example({"prompt": p, "completion": c}, tok, loss_on)
        for p, c in zip(prompts, ["positive", "negative", "neutral", "negative"], strict=True)
    ]


def _packed_model(tiny_model):
    model, tok = tiny_model
    packed = copy.deepcopy(model)
    use_segment_attention(packed)
    return model, packed, tok


def test_packed_loss_equals_examples_run_one_by_one(tiny_model) -> None:
    model, packed, tok = _packed_model(tiny_model)
    for loss_on in ("completion", "all"):
        exs = _examples(tok, loss_on)
        total, count = 0.0, 0
        for e in exs:  # each example alone, plain SDPA, no padding
            loss, n = CausalLMLoss(model)(collate([e], tok.pad_token_id), normalizer=1.0)
            total, count = total + float(loss), count + n
        loss, n = CausalLMLoss(packed)(collate_packed(exs))
        assert n == count
        assert abs(float(loss) - total / count) < 1e-5


def test_packed_hidden_states_match_and_do_not_leak(tiny_model) -> None:
    model, packed, tok = _packed_model(tiny_model)
    exs = _examples(tok)
    batch = collate_packed(exs)
    decoder, _ = causal_parts(packed)
    bounds = batch["cu_seq_lens"]
    hidden = decoder(
        input_ids=batch["input_ids"],
        position_ids=batch["position_ids"],
        cu_seq_lens_q=bounds,
        cu_seq_lens_k=bounds,
        max_length_q=64,
        max_length_k=64,
    ).last_hidden_state[0]
    alone_decoder, _ = causal_parts(model)
    for i, e in enumerate(exs):
        alone = alone_decoder(input_ids=torch.tensor([e["input_ids"]])).last_hidden_state[0]
        torch.testing.assert_close(hidden[bounds[i] : bounds[i + 1]], alone, rtol=1e-5, atol=1e-5)
    # the same packed row with plain causal SDPA (no segments) differs: examples would see each other
    leaky = alone_decoder(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).last_hidden_state[0]
    assert not torch.allclose(leaky[bounds[1] :], hidden[bounds[1] :], atol=1e-4)


def test_packed_gradients_equal_separate_gradients(tiny_model) -> None:
    model, packed, tok = _packed_model(tiny_model)
    exs = _examples(tok)
    n_total = sum(sum(1 for x in e["labels"][1:] if x != -100) for e in exs)
    for e in exs:
        loss, _ = CausalLMLoss(model)(collate([e], tok.pad_token_id), normalizer=n_total)
        loss.backward()
    loss, _ = CausalLMLoss(packed)(collate_packed(exs))
    loss.backward()
    for (name, a), b in zip(model.named_parameters(), packed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
    model.zero_grad()


def test_pack_plan_budget_and_coverage() -> None:
    lengths = [30, 70, 20, 90, 10, 150, 40]
    rows = pack_plan(lengths, batch_tokens=100, max_examples=8, seed=0)
    assert sorted(i for r in rows for i in r) == list(range(7))
    assert all(sum(lengths[i] for i in r) <= 100 or len(r) == 1 for r in rows)
    assert pack_plan(lengths, 100, 8, seed=0) == rows


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_varlen_kernel_matches_per_segment_attention() -> None:
    from tunesmith.train.packing import _varlen_kernel, segment_attention, varlen_attention

    if _varlen_kernel() is None:
        pytest.skip("this torch has no varlen attention")
    torch.manual_seed(0)
    bounds = torch.tensor([0, 5, 12, 30], dtype=torch.int32, device="cuda")
    q = torch.randn(1, 4, 30, 64, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, 2, 30, 64, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    module = torch.nn.Module()
    module.num_key_value_groups = 2  # type: ignore[assignment]
    module.is_causal = True  # type: ignore[assignment]
    fast = varlen_attention(q, k, v, bounds, 18, 64**-0.5)
    loop, _ = segment_attention(
        module, q.cpu().float(), k.cpu().float(), v.cpu().float(), None, scaling=64**-0.5, cu_seq_lens_q=bounds.cpu()
    )
    torch.testing.assert_close(fast.float().cpu(), loop, atol=2e-2, rtol=2e-2)
