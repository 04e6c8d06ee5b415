from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tunesmith.errors import RunDirError
from tunesmith.eval import plots
from tunesmith.eval.html import render_report_html, write_report_html

EVIL = "<script>alert(1)</script>"
LABELS = ["neg", "pos" + EVIL]


def _model(acc: float, few_acc: float) -> dict[str, Any]:
    return {
        "n": 60,
        "accuracy": acc,
        "macro_f1": acc - 0.1,
        "weighted_f1": acc - 0.05,
        "ci": {"accuracy": [acc - 0.1, acc + 0.1], "macro_f1": [acc - 0.2, acc], "weighted_f1": [acc - 0.15, acc]},
        "per_label": {lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 30} for lab in LABELS},
        "confusion": {"labels": LABELS, "matrix": [[20, 10], [10, 20]]},
        "predicted_counts": dict.fromkeys(LABELS, 30),
        "groups": {
            "language": {
                "pcm": {
                    "n": 50,
                    "accuracy": acc,
                    "macro_f1": acc - 0.1,
                    "few_rows": False,
                    "ci": {"accuracy": [acc - 0.1, acc + 0.1]},
                },
                EVIL: {
                    "n": 10,
                    "accuracy": few_acc,
                    "macro_f1": 0.3,
                    "few_rows": True,
                    "ci": {"accuracy": [0.2, 0.9]},
                },
            }
        },
        "group_gap": {
            "language": {
                "best": "pcm",
                "worst": "hau",
                "best_value": acc - 0.1,
                "worst_value": 0.2,
                "gap": acc - 0.3,
                "compared": 2,
                "ignored": [EVIL],
            }
        },
        "calibration": "none",
        "other_rule": {"accuracy": acc - 0.02, "macro_f1": acc - 0.05},
    }


def full_report() -> dict[str, Any]:
    tuned = _model(0.7, 0.6)
    tuned["generation"] = {
        "n": 60,
        "chrf": 41.23,
        "chrf_pp": 39.0,
        "bleu": 12.5,
        "exact_match": 0.1,
        "length_ratio": 0.97,
        "signatures": {"chrf": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.4.0"},
    }
    return {
        "run": "demo" + EVIL,
        "task": "labels",
        "split": "test",
        "rows": 60,
        "base_model": "tiny",
        "method": "lora",
        "labels": LABELS,
        "gold_counts": dict.fromkeys(LABELS, 30),
        "scoring": "label log-likelihood",
        "models": {"base zero-shot": _model(0.5, 0.4), "tuned (lora)": tuned},
        "paired": {"tuned vs base": {"metric": "accuracy", "delta": 0.2, "low": 0.1, "high": 0.3, "p_value": 0.002}},
        "forgetting": {
            "suite": "default",
            "base": {"perplexity": 20.0, "loss": 3.0, "accuracy": 0.6, "questions": 40},
            "tuned": {"perplexity": 24.0, "loss": 3.18, "accuracy": 0.55, "questions": 40},
            "delta": {"perplexity": 4.0, "perplexity_pct": 20.0, "accuracy": -0.05},
            "summary": "general-text perplexity 20.00 -> 24.00 (+20.0%)",
        },
        "training": {"method": "lora", "base": "tiny", "steps": 40, "best_val_loss": 1.0, "best_step": 20},
    }


def rising_curves() -> dict[str, Any]:
    return {
        "train": [(s, 2.0 - s / 50) for s in range(5, 45, 5)],
        "val": [(10, 1.5), (20, 1.0), (30, 1.1), (40, 1.2), (50, 1.3)],
        "events": [],
    }


CARD = {"splits": ["train", "test"], "counts": {"train": 100, "test": 60}, "languages": {"train": {"pcm": 100}}}


def test_every_section_present_and_linked() -> None:
    page = render_report_html(full_report(), rising_curves(), CARD)
    for section in ("headline", "training", "confusion", "groups", "forgetting", "generation", "data"):
        assert f'<section id="{section}">' in page and f'href="#{section}"' in page
    assert page.index('id="headline"') < page.index('id="training"') < page.index('id="confusion"')
    assert "Paired comparisons" in page and "better" in page
    assert "rose for the last 3 evaluations" in page  # the overfitting warning
    assert "chrF++" in page and "nrefs:1" in page  # generation metrics and their signature
    assert "default" in page and "+4.00" in page  # forgetting: suite and the perplexity change
    assert "a gap of <b>0.400</b> in macro-F1" in page  # the best-worst group gap, its metric inferred


def test_headline_bolds_the_best_value_and_shows_intervals() -> None:
    page = render_report_html(full_report(), None, None)
    assert "<b>0.700</b>" in page and "<b>0.500</b>" not in page
    assert '<span class="ci">0.600–0.800</span>' in page


def test_text_from_the_run_is_escaped_and_the_page_is_self_contained() -> None:
    page = render_report_html(full_report(), rising_curves(), CARD)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # group value, label and run name shown as text
    assert 'class="tag">few rows' in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched
    assert page.count("<img") >= 5 and "data:image/svg+xml;base64," in page


def test_sections_without_data_are_left_out() -> None:
    report = {
        "run": "cpt",
        "task": "perplexity",
        "split": "test",
        "rows": 10,
        "base_model": "tiny",
        "method": "lora",
        "scoring": "mean loss per token",
        "models": {
            "base": {"loss": 6.6, "perplexity": 738.6, "tokens": 100},
            "tuned (lora)": {"loss": 5.5, "perplexity": 242.2, "tokens": 100},
        },
    }
    page = render_report_html(report, None, None)
    assert 'id="headline"' in page and "<b>242.20</b>" in page  # lower perplexity is better
    for section in ("training", "confusion", "groups", "forgetting", "generation", "data"):
        assert f'id="{section}"' not in page


def test_without_matplotlib_the_page_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "available", lambda: False)
    page = render_report_html(full_report(), rising_curves(), None)
    assert "<img" not in page and "charts need matplotlib" in page


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "data").mkdir()
    report = full_report()
    training = report.pop("training")
    (run / "eval" / "report.json").write_text(json.dumps(report))
    (run / "train.json").write_text(json.dumps(training))
    (run / "data" / "card.json").write_text(json.dumps(CARD))
    lines = [{"step": s, "epoch": 0, "loss": v} for s, v in rising_curves()["train"]]
    lines += [{"step": s, "epoch": 0, "val_loss": v} for s, v in rising_curves()["val"]]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


def test_write_report_html_reads_the_run_dir(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    path = write_report_html(run)
    assert path == run / "eval" / "report.html"
    page = path.read_text()
    assert "Training summary" in page and "rose for the last 3 evaluations" in page and 'id="data"' in page
    assert sorted(p.name for p in (run / "eval").iterdir()) == ["report.html", "report.json"]  # no temp left
    other = write_report_html(run, tmp_path / "elsewhere.html")
    assert other.read_text() == page


def test_write_report_html_without_a_report_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="tunesmith eval"):
        write_report_html(tmp_path)


def test_a_generation_task_headlines_its_generation_metrics() -> None:
    report = {
        "run": "mt",
        "task": "generation",
        "models": {"base zero-shot": {}, "tuned (lora)": {}},
        "generation": {
            "base zero-shot": {"n": 20, "chrf": 20.0, "bleu": 3.0, "ci": {"chrf": [18.0, 22.0]}},
            "tuned (lora)": {"n": 20, "chrf": 35.5, "bleu": 9.0, "ci": {"chrf": [33.0, 38.0]}},
        },
    }
    page = render_report_html(report, None, None)
    headline = page[page.index('id="headline"') : page.index('id="generation"')]
    assert "chrF" in headline and "<b>35.5</b>" in headline and "33.0–38.0" in headline


def test_nested_paired_tests_render_with_verdicts() -> None:
    from tunesmith.eval.html import _paired

    report = {
        "paired": {
            "tuned vs base": {
                "macro_f1": {"metric": "macro_f1", "delta": 0.07, "low": 0.04, "high": 0.11, "p_value": 0.002},
                "accuracy": {"b": 156, "c": 72, "statistic": 30.2, "p_value": 3.9e-8, "method": "chi2"},
                "loss": {"metric": "loss per token, per example", "delta": -0.2, "p_value": 0.5},
            }
        }
    }
    html = _paired(report)
    assert html.count("better") == 2 and "no clear difference" in html and "156 vs 72" in html
