"""`tunesmith run` with ``model.new_tokens``: prepare, extend the vocabulary, train the new rows, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration


TEXT = {"format": "text", "columns": {"text": "tweet"}}  # raw text: continued pre-training, scored by perplexity


@pytest.mark.parametrize(("method", "data"), [("lora", {}), ("full", TEXT)])
def test_run_with_new_tokens_end_to_end(make_config, method: str, data: dict) -> None:
    from transformers import AutoTokenizer

    method_section = {"name": method, **({"r": 4} if method == "lora" else {})}
    config = make_config(model={"new_tokens": 10}, method=method_section, data=data)
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "tiny"
    added = json.loads((run / "data" / "vocab.json").read_text())
    n = added["added"]  # the 48 raw tweets hold fewer than 10 words seen 5 times and split in 3+ pieces
    assert n == (10 if not data else 6) and [t["id"] for t in added["tokens"]] == list(range(400, 400 + n))
    for split in ("train", "validation"):
        fertility = added["fertility"][split]
        assert fertility["tokens_per_word_after"] < fertility["tokens_per_word_before"]
        assert "pcm" in fertility["languages"]
    assert json.loads((run / "train.json").read_text())["new_tokens"] == n
    saved = run / ("adapter" if method == "lora" else "model")
    assert len(AutoTokenizer.from_pretrained(saved)) == 400 + n
    report = json.loads((run / "eval" / "report.json").read_text())
    base = "base" if data else "base zero-shot"
    assert set(report["models"]) == {base, f"tuned ({method})"}
    if data:  # fewer tokens for the same words: compare per word
        tuned = report["models"][f"tuned ({method})"]
        assert tuned["tokens"] < report["models"]["base"]["tokens"] and tuned["nll_per_word"] > 0
        assert "nll / word" in (run / "eval" / "report.md").read_text()
