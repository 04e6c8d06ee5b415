from __future__ import annotations

import pytest
import torch

from tunesmith.data.format import chat_prompt_text, encode
from tunesmith.eval.metrics import by_group, classification_metrics
from tunesmith.eval.scoring import label_continuations, predict, score_labels


def test_metrics_by_hand() -> None:
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", "b", "a"]
    m = classification_metrics(gold, pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    # F1: a = 2*0.5*0.5/1 = 0.5; b = 2*(2/3)*1/(5/3) = 0.8; c = 0 -> macro 1.3/3
    assert m["macro_f1"] == pytest.approx(1.3 / 3)
    assert m["per_label"]["c"]["support"] == 1 and m["predicted_counts"]["c"] == 0
    assert m["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_metrics_by_group() -> None:
    out = by_group(
        ["a", "b", "a"], ["a", "a", "a"], [{"lang": "x"}, {"lang": "y"}, {"lang": "x"}], ["lang"], ["a", "b"]
    )
    assert out["lang"]["x"]["accuracy"] == 1.0 and out["lang"]["y"]["accuracy"] == 0.0


def _reference_scores(model, tok, prompt: str, labels: list[str]) -> dict[str, float]:
    """Score each label by a plain full forward pass of prompt + label tokens."""
    conts = label_continuations(tok, labels)
    out = {}
    for lab in labels:
        p = encode(tok, chat_prompt_text(tok, prompt))
        ids = torch.tensor([p + conts[lab]])
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        out[lab] = sum(float(logp[len(p) - 1 + k, t]) for k, t in enumerate(conts[lab]))
    return out


def test_multi_token_label_scores_match_a_plain_forward(tiny_model) -> None:
    model, tok = tiny_model
    labels = ["negative", "neutral", "positive"]
    assert any(len(c) > 1 for c in label_continuations(tok, labels).values())  # exercises the pairwise path
    prompts = ["tweet one", "a much longer tweet with many words in it", "x"]
    scores = score_labels(model, tok, prompts, labels, batch_tokens=64)
    for p, s in zip(prompts, scores, strict=True):
        ref = _reference_scores(model, tok, p, labels)
        for lab in labels:
            assert s[lab] == pytest.approx(ref[lab], abs=1e-4)
    assert predict(scores) == [max(s, key=s.get) for s in scores]


def test_single_token_labels_share_one_forward(tiny_model) -> None:
    model, tok = tiny_model
    labels = [t for t in ["a", "b", "c", "d", "e", "f"] if len(label_continuations(tok, [t])[t]) == 1][:3]
    assert len(labels) == 3
    prompts = ["first", "second prompt here"]
    scores = score_labels(model, tok, prompts, labels)
    for p, s in zip(prompts, scores, strict=True):
        ref = _reference_scores(model, tok, p, labels)
        for lab in labels:
            assert s[lab] == pytest.approx(ref[lab], abs=1e-4)


def test_batch_calibration_removes_a_constant_label_preference() -> None:
    import math

    from tunesmith.eval.calibration import batch_calibrate, label_prior, normalise

    # evidence favours a for row 0 and b for row 1, but a prior of +3 on "a" hides it in the raw argmax
    raw = [{"a": 3.0 + 1.0, "b": 0.0}, {"a": 3.0 + 0.0, "b": 1.0}]
    assert predict(raw) == ["a", "a"]
    assert predict(batch_calibrate(raw)) == ["a", "b"]
    row = normalise({"a": 0.0, "b": 0.0})
    assert row["a"] == pytest.approx(math.log(0.5))
    prior = label_prior([{"a": 0.0, "b": -100.0}, {"a": -100.0, "b": 0.0}])
    assert prior["a"] == pytest.approx(math.log(0.5), abs=1e-6)
    assert batch_calibrate([]) == []


def test_summary_gives_intervals_groups_and_paired_tests() -> None:
    from tunesmith.eval.summary import group_keys, label_summary, paired_tests

    labels = ["neg", "pos"]
    gold = ["pos", "neg"] * 40
    rows = [
        {"label": g, "groups": {"dialect": "a" if i < 60 else "b"}, "detected": {"language": "hau", "cmi": 0.0}}
        for i, g in enumerate(gold)
    ]
    good = list(gold)
    good[0] = "neg"  # one mistake
    bad = ["pos"] * len(gold)  # majority-style
    keys = group_keys(rows, ["dialect"])
    assert keys == ["dialect"]  # one detected language and one CMI bin: nothing to break down
    summary = label_summary(gold, good, rows, labels, keys, min_rows=30)
    lo, hi = summary["ci"]["accuracy"]
    assert lo <= 79 / 80 <= hi and hi == 1.0
    assert summary["groups"]["dialect"]["b"]["few_rows"] and not summary["groups"]["dialect"]["a"]["few_rows"]
    assert summary["group_gap"]["dialect"]["gap"] is None  # only one group has enough rows to rank
    paired = paired_tests(
        gold, {"tuned (lora)": {"predictions": good}, "base": {"predictions": bad}}, labels, "tuned (lora)"
    )
    test = paired["tuned (lora) vs base"]
    assert test["macro_f1"]["delta"] > 0.5 and test["macro_f1"]["p_value"] < 0.01
    assert test["accuracy"]["b"] == 40 and test["accuracy"]["c"] == 1 and test["accuracy"]["p_value"] < 1e-6


def test_per_row_nll_adds_up_to_the_batch_loss_and_gives_an_interval(tiny_model) -> None:
    import torch

    from tunesmith.eval.perplexity import held_out_loss
    from tunesmith.train.batching import collate
    from tunesmith.train.sft.loss import CausalLMLoss

    model, tokenizer = tiny_model
    texts = ["the sun is a star", "water boils at one hundred degrees", "a b c d e f g", "hello there"]
    examples = [{"input_ids": ids, "labels": ids} for ids in (tokenizer(t)["input_ids"] for t in texts)]
    out = held_out_loss(model, examples, tokenizer.pad_token_id)
    with torch.no_grad():
        loss, n = CausalLMLoss(model)(collate(examples, tokenizer.pad_token_id))
    assert out["tokens"] == n and abs(out["loss"] - float(loss)) < 1e-5
    assert sum(s for s, _ in out["per_example"]) / n == pytest.approx(out["loss"], rel=1e-6)
    low, high = out["ci"]["perplexity"]
    assert low <= out["perplexity"] <= high


def test_loss_by_group_is_token_weighted_and_skips_chunked_text() -> None:
    from tunesmith.eval.summary import loss_summary

    rows = [{"groups": {"dialect": "a" if i < 40 else "b"}} for i in range(50)]
    per_example = [[2.0 * 10, 10] if i < 40 else [4.0 * 5, 5] for i in range(50)]  # a: loss 2, b: loss 4
    out = loss_summary(per_example, rows, ["dialect"], min_rows=30)
    a, b = out["groups"]["dialect"]["a"], out["groups"]["dialect"]["b"]
    assert a["score"] == pytest.approx(2.0) and b["score"] == pytest.approx(4.0)
    assert not a["few_rows"] and b["few_rows"]
    assert loss_summary(per_example[:10], rows, ["dialect"], 30) == {}  # examples are pieces, not rows
