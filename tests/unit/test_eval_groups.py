from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tunesmith.eval.groups import breakdown, breakdown_scores, cmi_bin, group_gap, row_groups
from tunesmith.eval.metrics import classification_metrics


@pytest.mark.parametrize(
    ("cmi", "expected"),
    [(0.0, "0"), (0.01, "0-10"), (9.99, "0-10"), (10.0, "10-20"), (25.5, "20-30"), (30.0, "30+"), (50.0, "30+")],
)
def test_cmi_bin(cmi: float, expected: str) -> None:
    assert cmi_bin(cmi) == expected


def test_cmi_bin_edges() -> None:
    assert cmi_bin(100.0) == "30+" and cmi_bin(None) == ""
    with pytest.raises(ValueError):
        cmi_bin(-1.0)


def test_row_groups_reads_groups_then_detected() -> None:
    row = {
        "groups": {"dialect": "coastal", "language": "sw"},
        "detected": {"language": "en", "script": "Latn", "cmi": 14.29, "confidence": 0.9},
    }
    keys = ["dialect", "language", "script", "cmi", "detected.language", "missing"]
    assert row_groups(row, keys) == {
        "dialect": "coastal",
        "language": "sw",  # the data's own column beats the prediction
        "script": "Latn",
        "cmi": "10-20",
        "detected.language": "en",
        "missing": "",
    }
    assert row_groups({}, ["language", "cmi"]) == {"language": "", "cmi": ""}


def _rows() -> tuple[list[str], list[str], list[dict]]:
    """40 monolingual rows (30 right) in dialect A, 35 mixed rows (14 right) in dialect B, 5 rows in dialect C."""
    gold, pred, rows = [], [], []
    for i in range(40):
        gold.append("pos" if i % 2 else "neg")
        pred.append(gold[-1] if i < 30 else ("neg" if gold[-1] == "pos" else "pos"))
        rows.append({"groups": {"dialect": "A"}, "detected": {"language": "sw", "script": "Latn", "cmi": 0.0}})
    for i in range(35):
        gold.append("pos" if i % 2 else "neg")
        pred.append(gold[-1] if i < 14 else ("neg" if gold[-1] == "pos" else "pos"))
        cmi = 5.0 if i < 20 else 33.3
        rows.append({"groups": {"dialect": "B"}, "detected": {"language": "sw", "script": "Latn", "cmi": cmi}})
    for _ in range(5):
        gold.append("neg")
        pred.append("neg")  # perfect, but only 5 rows: must not be named the best group
        rows.append({"groups": {"dialect": "C"}, "detected": {"language": "en", "script": "Latn", "cmi": 12.0}})
    return gold, pred, rows


def test_breakdown_counts_flags_and_metrics() -> None:
    gold, pred, rows = _rows()
    out = breakdown(gold, pred, rows, ["dialect", "cmi", "language"], ["neg", "pos"], n_resamples=200)
    dialect = out["dialect"]
    assert list(dialect) == ["A", "B", "C"]
    assert [dialect[v]["n"] for v in "ABC"] == [40, 35, 5]
    assert [dialect[v]["few_rows"] for v in "ABC"] == [False, False, True]
    assert dialect["A"]["accuracy"] == pytest.approx(30 / 40) and dialect["B"]["accuracy"] == pytest.approx(14 / 35)
    ix = [i for i, r in enumerate(rows) if r["groups"]["dialect"] == "B"]
    expected = classification_metrics([gold[i] for i in ix], [pred[i] for i in ix], ["neg", "pos"])
    assert {k: dialect["B"][k] for k in expected} == expected
    for value in dialect.values():
        for name, (low, high) in value["ci"].items():
            assert low <= value[name] <= high
    assert list(out["cmi"]) == ["0", "0-10", "10-20", "30+"]  # natural bin order, empty bins absent
    assert [out["cmi"][b]["n"] for b in out["cmi"]] == [40, 20, 5, 15]
    assert out["language"]["en"]["n"] == 5 and out["language"]["sw"]["n"] == 75
    json.dumps(out)  # the report writes it as is


def test_group_gap_ignores_few_rows() -> None:
    gold, pred, rows = _rows()
    out = breakdown(gold, pred, rows, ["dialect", "language"], ["neg", "pos"], n_resamples=50)
    gap = group_gap(out, metric="accuracy")
    assert gap["dialect"] == {
        "best": "A",
        "worst": "B",
        "best_value": pytest.approx(0.75),
        "worst_value": pytest.approx(0.4),
        "gap": pytest.approx(0.35),
        "compared": 2,
        "ignored": ["C"],
    }
    assert gap["language"]["gap"] is None and gap["language"]["compared"] == 1  # only "sw" has enough rows
    macro = group_gap(out)["dialect"]
    assert macro["best"] == "A" and macro["gap"] == pytest.approx(
        out["dialect"]["A"]["macro_f1"] - macro["worst_value"]
    )
    everyone_small = breakdown(gold, pred, rows, ["dialect"], ["neg", "pos"], min_rows=100, n_resamples=10)
    assert group_gap(everyone_small)["dialect"]["best"] is None
    assert group_gap(everyone_small)["dialect"]["ignored"] == ["A", "B", "C"]


def test_breakdown_scores_mean_and_weighted() -> None:
    _, _, rows = _rows()
    values = [1.0] * 40 + [3.0] * 35 + [10.0] * 5
    out = breakdown_scores(values, rows, ["dialect"], n_resamples=100)
    assert out["dialect"]["A"] == {"score": 1.0, "n": 40, "few_rows": False, "ci": [1.0, 1.0]}
    assert out["dialect"]["C"]["few_rows"] is True
    gap = group_gap(out, metric="score", higher_is_better=False)["dialect"]
    assert (gap["best"], gap["worst"], gap["gap"]) == ("A", "B", 2.0)  # C (10.0) is too small to be the worst

    losses = list(np.random.default_rng(0).uniform(1, 3, 80))
    tokens = list(np.random.default_rng(1).integers(1, 50, 80))
    weighted = breakdown_scores(losses, rows, ["language"], weights=tokens, min_rows=3, n_resamples=100)
    ix = [i for i, r in enumerate(rows) if r["detected"]["language"] == "en"]
    expected = sum(losses[i] * tokens[i] for i in ix) / sum(tokens[i] for i in ix)
    en = weighted["language"]["en"]
    assert en["score"] == pytest.approx(expected) and en["ci"][0] <= en["score"] <= en["ci"][1]
    assert math.exp(en["score"]) > 1  # a perplexity, when the scores are token losses

    medians = breakdown_scores(values, rows, ["dialect"], reduce=lambda v: float(np.median(v)), n_resamples=20)
    assert medians["dialect"]["B"]["score"] == 3.0
    json.dumps([out, weighted, medians])


def test_breakdown_refuses_misaligned_input() -> None:
    with pytest.raises(ValueError):
        breakdown(["a"], ["a", "b"], [{}], ["x"], ["a"])
    with pytest.raises(ValueError):
        breakdown_scores([1.0], [{}, {}], ["x"])


def test_long_documents_cut_into_pieces_are_scored_and_grouped_per_row(tiny_model) -> None:
    from tunesmith.eval.run import _perplexity_examples, per_row
    from tunesmith.eval.summary import loss_summary

    _, tokenizer = tiny_model
    rows = [
        {"text": "short one", "groups": {"source": "news"}},
        {"text": "a much longer document " * 20, "groups": {"source": "news"}},
        {"text": "another text here", "groups": {"source": "tweets"}},
    ]
    examples, owners = _perplexity_examples(rows, tokenizer, "text", max_length=16)
    assert len(examples) > len(rows) and owners[0] == 0 and owners[-1] == 2 and owners.count(1) > 1
    per_example = [[float(len(e["input_ids"])), len(e["input_ids"])] for e in examples]  # loss 1 per token
    rowwise = per_row(per_example, owners, len(rows))
    expected = [sum(n for (_, n), o in zip(per_example, owners, strict=True) if o == i) for i in range(3)]
    assert [n for _, n in rowwise] == expected
    summary = loss_summary(rowwise, rows, ["source"], min_rows=1)
    assert set(summary["groups"]["source"]) == {"news", "tweets"}
