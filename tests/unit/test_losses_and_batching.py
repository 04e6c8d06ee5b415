from __future__ import annotations

import pytest
import torch

from tunesmith.train.batching import collate, labelled_tokens, token_budget_batches
from tunesmith.train.losses import IGNORE_INDEX, labelled_lm_loss
from tunesmith.train.sft.loss import CausalLMLoss


def _batch(tok, n: int = 4) -> dict[str, torch.Tensor]:
    from tunesmith.data.format import tokenize_example

    exs = [
        tokenize_example({"prompt": f"tweet number {i} " * (i + 1), "completion": "positive"}, tok, "completion")
        for i in range(n)
    ]
    return collate(exs, tok.pad_token_id)


def test_labelled_loss_equals_hf_loss_with_padding(tiny_model) -> None:
    model, tok = tiny_model
    batch = _batch(tok)
    assert (batch["attention_mask"] == 0).any()  # padding present
    reference = model(**batch).loss
    ours, n = CausalLMLoss(model)(batch)
    assert n == labelled_tokens(batch)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)


def test_chunked_loss_and_grads_equal_unchunked() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(2, 9, 8, requires_grad=True)
    head = torch.nn.Linear(8, 50, bias=False)
    labels = torch.randint(0, 50, (2, 9))
    labels[0, :4] = IGNORE_INDEX
    full, n = labelled_lm_loss(hidden, labels, head, chunk_size=10_000)
    g_full = torch.autograd.grad(full, [hidden, head.weight])
    chunked, n2 = labelled_lm_loss(hidden, labels, head, chunk_size=3)
    g_chunk = torch.autograd.grad(chunked, [hidden, head.weight])
    assert n == n2 == 13  # 16 shifted positions, 3 masked
    torch.testing.assert_close(full, chunked)
    for a, b in zip(g_full, g_chunk, strict=True):
        torch.testing.assert_close(a, b)
    logits = head(hidden[:, :-1]).reshape(-1, 50)
    ref = torch.nn.functional.cross_entropy(logits, labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)
    torch.testing.assert_close(full, ref)


def test_normalizer_makes_accumulation_exact() -> None:
    torch.manual_seed(1)
    hidden = torch.randn(4, 6, 8)
    head = torch.nn.Linear(8, 20, bias=False)
    labels = torch.randint(0, 20, (4, 6))
    labels[1, :5] = IGNORE_INDEX  # uneven labelled counts per row
    whole, n = labelled_lm_loss(hidden, labels, head)
    parts = [labelled_lm_loss(hidden[i : i + 1], labels[i : i + 1], head, normalizer=n)[0] for i in range(4)]
    torch.testing.assert_close(whole, sum(parts))


def test_token_budget_batches_respect_budget_and_cover_everything() -> None:
    lengths = [5, 50, 7, 48, 6, 100, 9, 51]
    batches = token_budget_batches(lengths, batch_tokens=110, max_batch_size=3, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(8))
    for b in batches:
        assert len(b) <= 3 and (len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 110)
    assert token_budget_batches(lengths, 110, 3, seed=0) == batches
    assert token_budget_batches(lengths, 110, 3, seed=1) != batches or len(batches) == 1


def test_length_grouping_cuts_padding_and_can_be_switched_off() -> None:
    import random

    lengths = [random.Random(i).randint(5, 200) for i in range(64)]

    def padded_tokens(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    grouped = token_budget_batches(lengths, 100_000, 4, seed=0)
    plain = token_budget_batches(lengths, 100_000, 4, seed=0, group_by_length=False)
    for batches in (grouped, plain):
        assert sorted(i for b in batches for i in b) == list(range(64)) and all(len(b) <= 4 for b in batches)
    assert padded_tokens(grouped) < 0.8 * padded_tokens(plain)  # similar lengths together: far less padding
    assert token_budget_batches(lengths, 100_000, 4, seed=0, group_by_length=False) == plain  # still seeded


def test_example_weights_scale_each_rows_tokens() -> None:
    torch.manual_seed(2)
    hidden = torch.randn(3, 5, 8)
    head = torch.nn.Linear(8, 20, bias=False)
    labels = torch.randint(0, 20, (3, 5))
    weights = torch.tensor([2.0, 0.5, 1.0])
    weighted, n = labelled_lm_loss(hidden, labels, head, weights=weights)
    rows = [labelled_lm_loss(hidden[i : i + 1], labels[i : i + 1], head, normalizer=n)[0] for i in range(3)]
    torch.testing.assert_close(weighted, sum(w * r for w, r in zip(weights, rows, strict=True)))
    unweighted, _ = labelled_lm_loss(hidden, labels, head, weights=torch.ones(3))
    torch.testing.assert_close(unweighted, labelled_lm_loss(hidden, labels, head)[0])


def test_balanced_class_weights_average_one() -> None:
    from tunesmith.train.causal import class_weights

    rows = [{"label": "a"}] * 6 + [{"label": "b"}] * 3 + [{"label": "c"}]
    w = class_weights(rows)
    assert w["c"] == pytest.approx(10 / 3) and w["a"] == pytest.approx(10 / 18)
    assert sum(w[r["label"]] for r in rows) / len(rows) == pytest.approx(1.0)


def test_classification_loss_matches_torch_and_weights() -> None:
    from tunesmith.train.losses import classification_loss

    torch.manual_seed(3)
    logits = torch.randn(5, 3)
    labels = torch.tensor([0, 2, 1, 1, 0])
    ref = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
    torch.testing.assert_close(classification_loss(logits, labels), ref)
    w = torch.tensor([1.0, 2.0, 0.5, 1.0, 0.0])
    per = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(classification_loss(logits, labels, w), (per * w).sum())
