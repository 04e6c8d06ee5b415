from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tunesmith.adapters import fewshot
from tunesmith.config.schema import FewshotMethod


def _rows(n: int = 30) -> list[dict]:
    labels = ["negative", "neutral", "positive"]
    return [
        {"prompt": f"tweet number {i}", "completion": labels[i % 3], "label": labels[i % 3], "text": f"t{i}"}
        for i in range(n)
    ]


def test_balanced_draws_round_robin_over_labels_and_is_seeded() -> None:
    picked = fewshot.balanced(_rows(), 6, seed=1)
    assert Counter(r["label"] for r in picked) == {"negative": 2, "neutral": 2, "positive": 2}
    assert picked == fewshot.balanced(_rows(), 6, seed=1)
    assert picked != fewshot.balanced(_rows(), 6, seed=2)
    assert len(fewshot.balanced(_rows(2), 6, seed=0)) == 2  # never more than the split holds


def test_messages_put_demonstrations_as_earlier_turns() -> None:
    artifact = fewshot.fit(_rows(), FewshotMethod(k=3), seed=0)
    messages = fewshot.Demonstrations(artifact).messages(["how far"])[0]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3 + ["user"]
    assert messages[-1]["content"] == "how far"
    assert {m["content"] for m in messages[1:-1:2]} == {"negative", "neutral", "positive"}


def test_fit_refuses_rows_without_answers() -> None:
    with pytest.raises(ValueError, match="supervised rows"):
        fewshot.fit([{"text": "raw"}], FewshotMethod(), seed=0)


def test_similar_puts_the_nearest_example_next_to_the_query(tiny_encoder_dir: Path) -> None:
    rows = _rows(12)
    artifact = fewshot.fit(rows, FewshotMethod(k=3, select="similar", encoder=str(tiny_encoder_dir)), seed=0)
    assert len(artifact["pool"]) == 12
    messages = fewshot.Demonstrations(artifact).messages(["tweet number 7", "tweet number 2"])
    assert messages[0][-3]["content"] == "tweet number 7"  # an identical pool row is the most similar
    assert messages[1][-3]["content"] == "tweet number 2"
