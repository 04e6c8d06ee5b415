"""The retention (forgetting) suite: loading, checking, measuring and the deltas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.errors import ConfigError, DataError
from tunesmith.eval import retention


def test_shipped_suite_loads() -> None:
    texts, tasks = retention.load_suite(retention.suite_dir("default"))
    assert len(texts) >= 30 and len(tasks) >= 40
    assert all(0 <= t["answer"] < len(t["options"]) for t in tasks)


def test_bad_suites_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lacks general_text.jsonl"):
        retention.suite_dir(str(tmp_path))
    (tmp_path / "general_text.jsonl").write_text('{"text": "fine"}\n')
    (tmp_path / "general_tasks.jsonl").write_text(json.dumps({"question": "q", "options": ["a", "b"], "answer": 2}))
    with pytest.raises(DataError, match=r"general_tasks.jsonl:1: field 'answer' 2 is not an option index"):
        retention.load_suite(retention.suite_dir(str(tmp_path)))


def test_measure_and_forgetting_on_the_tiny_model(tiny_model) -> None:
    model, tokenizer = tiny_model
    texts = ["the sun is a star", "water boils at one hundred degrees"]
    tasks = [{"question": "what is two plus two?", "options": ["four", "five"], "answer": 0}]
    base = retention.measure(model, tokenizer, texts, tasks, autocast=False)
    assert base["perplexity"] > 1 and base["accuracy"] in (0.0, 1.0) and base["questions"] == 1
    worse = {**base, "perplexity": base["perplexity"] * 1.5, "accuracy": base["accuracy"] - 0.5}
    report = retention.forgetting(base, worse, "default")
    assert report["delta"]["perplexity_pct"] == pytest.approx(50.0)
    assert report["delta"]["accuracy"] == pytest.approx(-0.5)
    assert "+50.0%" in report["summary"]
