"""Simulated traffic against a tiny run: a Pidgin window is not flagged, a Hausa one is; the report shows it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration
ASSETS = Path(__file__).parents[1] / "assets"
TEMPLATE = "Classify the sentiment of this tweet as negative, neutral or positive. Answer with one word.\nTweet: "


def tweets(*files: Path) -> list[str]:
    rows = []
    for path in files:
        with path.open(encoding="utf-8") as fh:
            rows += [r["tweet"] for r in csv.DictReader(fh, delimiter="\t")]
    return rows


def log_traffic(store, texts: list[str], start: float, run: Path, model: str = "tiny-lora") -> None:
    from tunesmith.monitor.drift_run import training_template
    from tunesmith.monitor.writer import StoreWriter, WriterSettings, default_annotator

    writer = StoreWriter(store, WriterSettings(privacy="redact"), default_annotator(training_template(run)))
    for i, text in enumerate(texts):
        writer.record(
            {
                "request_id": f"{start}-{i}",
                "time": start + 60 * i,
                "endpoint": "chat",
                "model": model,
                "prompt": [{"role": "user", "content": TEMPLATE + text}],
                "response": ["positive"],
                "prompt_tokens": 40,
                "completion_tokens": 2,
                "latency_s": 0.2 + 0.01 * i,
                "finish_reason": "stop",
                "stream": False,
            }
        )
    writer.close()


def test_a_language_shift_is_flagged_and_reported(tiny_lora_run: Path, tmp_path: Path, capsys) -> None:
    from tunesmith.monitor.store import Store

    run = tmp_path / "deployed"
    shutil.copytree(tiny_lora_run, run)
    store = Store(run / "monitor.db")
    pidgin = tweets(ASSETS / "afrisenti" / "pcm" / "train.tsv", ASSETS / "afrisenti" / "pcm" / "test.tsv")
    log_traffic(store, pidgin[:40], start=1_700_000_000.0, run=run)
    assert main(["monitor", "drift", str(run), "--last", "40", "--no-semantic"]) == 0
    assert "no drift" in capsys.readouterr().out
    first = store.drift_checks()[-1]
    assert not first["drifted"] and first["rows"] == 40
    assert first["report"]["template_cut"]["window"]["prefix"] == TEMPLATE  # the template was not compared

    hausa = tweets(ASSETS / "afrisenti" / "hau" / "train.tsv", ASSETS / "afrisenti" / "hau" / "test.tsv")
    log_traffic(store, hausa[:40], start=1_700_100_000.0, run=run)
    assert main(["monitor", "drift", str(run), "--last", "40", "--no-semantic"]) == 0
    second = store.drift_checks()[-1]
    assert second["drifted"] and any("language mix moved" in a for a in second["alerts"])
    assert "hau" in second["report"]["language"]["window_counts"]

    assert main(["monitor", "report", str(run)]) == 0
    summary = json.loads((run / "monitor" / "report.json").read_text())
    assert summary["requests"] == 80 and summary["recommendation"]["retrain"]
    assert summary["languages"].get("hau", 0) >= 30 and summary["languages"].get("pcm", 0) >= 30
    html = (run / "monitor" / "report.html").read_text()
    assert "language mix moved" in html and "tunesmith monitor export-data" in html and "<img" in html


def test_a_window_too_small_is_a_clear_error(tiny_lora_run: Path, tmp_path: Path, capsys) -> None:
    from tunesmith.monitor.store import Store

    run = tmp_path / "deployed"
    shutil.copytree(tiny_lora_run, run)
    log_traffic(Store(run / "monitor.db"), ["how far"] * 5, start=1_700_000_000.0, run=run)
    assert main(["monitor", "drift", str(run), "--no-semantic"]) == 2
    assert "at least 20 texts" in " ".join(capsys.readouterr().err.split())
    assert main(["monitor", "report", str(tmp_path / "nowhere")]) == 2
