from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunesmith.cli.main import main
from tunesmith.errors import RunDirError
from tunesmith.eval.compare import compare_runs, render_compare_html

EVIL = "<script>alert(1)</script>"


def _write(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def _run(root: Path, name: str, task: str, models: dict[str, Any], val: list[float]) -> Path:
    """A minimal evaluated run dir: eval/report.json, train.json, metrics.jsonl, data/manifest.json."""
    run = root / name
    report = {"run": name, "task": task, "split": "test", "rows": 50, "base_model": "tiny", "method": "lora"}
    _write(run / "eval" / "report.json", {**report, "models": models})
    _write(run / "train.json", {"method": "lora", "steps": 40, "tokens_per_s": 1234.5, "best_val_loss": min(val)})
    _write(
        run / "data" / "manifest.json",
        {"inputs": {"train": {"path": "/data/train.tsv"}}, "splits": {"train": {"rows": 900, "sha256": "ab" * 32}}},
    )
    lines = [{"step": 10 * (i + 1), "epoch": 0, "loss": 1.0} for i in range(len(val))]
    lines += [{"step": 10 * (i + 1), "epoch": 0, "val_loss": v} for i, v in enumerate(val)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return run


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    labels = _run(
        tmp_path,
        "sentiment" + EVIL,
        "labels",
        {
            "base zero-shot": {"n": 50, "accuracy": 0.5, "macro_f1": 0.4},
            "tuned (lora)": {"n": 50, "accuracy": 0.7, "macro_f1": 0.6, "ci": {"accuracy": [0.6, 0.8]}},
        },
        val=[1.0, 0.8, 0.9, 1.0, 1.1],  # rose for the last 3 evaluations
    )
    text = _run(
        tmp_path,
        "cpt",
        "perplexity",
        {
            "base": {"loss": 6.6, "perplexity": 735.1, "tokens": 100},
            "tuned (lora)": {"loss": 5.5, "perplexity": 244.7, "tokens": 100},
        },
        val=[6.0, 5.5],
    )
    return labels, text


def test_compare_aligns_columns_across_tasks(two_runs: tuple[Path, Path]) -> None:
    result = compare_runs(two_runs)
    assert result["columns"] == ["accuracy", "macro_f1", "loss", "perplexity"]
    assert [(r["run"], r["model"]) for r in result["rows"]] == [
        ("sentiment" + EVIL, "base zero-shot"),
        ("sentiment" + EVIL, "tuned (lora)"),
        ("cpt", "base"),
        ("cpt", "tuned (lora)"),
    ]
    for row in result["rows"]:
        assert list(row["metrics"]) == result["columns"] and list(row["ci"]) == result["columns"]
    tuned, base, cpt = result["rows"][1], result["rows"][0], result["rows"][3]
    assert tuned["ci"]["accuracy"] == [0.6, 0.8] and tuned["metrics"]["perplexity"] is None
    assert tuned["steps"] == 40 and tuned["tokens_per_s"] == 1234.5 and tuned["best_val_loss"] == 0.8
    assert base["steps"] is None and base["method"] is None  # a prompting baseline did not train
    assert cpt["metrics"]["perplexity"] == 244.7 and cpt["metrics"]["accuracy"] is None
    assert tuned["data"] == "train.tsv (900 rows)"
    runs = {r["task"]: r for r in result["runs"]}
    assert "rose for the last 3 evaluations" in runs["labels"]["overfitting_warning"]
    assert runs["perplexity"]["overfitting_warning"] is None
    assert runs["labels"]["val_curve"][0] == [10, 1.0]
    json.dumps(result)  # the --json output


def test_compare_page_escapes_and_marks_the_best(two_runs: tuple[Path, Path]) -> None:
    page = render_compare_html(compare_runs(two_runs))
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "<b>0.700</b>" in page and "<b>244.70</b>" in page
    assert '<span class="ci">0.600–0.800</span>' in page
    assert page.count("<img") == 3  # label metrics, perplexity, validation curves


def test_cli_compare_writes_json_and_html(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = (str(p) for p in two_runs)
    assert main(["compare", a, b]) == 0
    out_html, out_json = tmp_path / "cmp.html", tmp_path / "cmp.json"
    assert main(["compare", a, b, "--html", str(out_html), "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["columns"][0] == "accuracy"
    assert out_html.read_text().startswith("<!doctype html>")


def test_a_run_without_a_report_is_named_with_the_command_that_makes_it(
    two_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    bare = tmp_path / "not-evaluated"
    bare.mkdir()
    with pytest.raises(RunDirError, match=r"not-evaluated has no eval/report.json.*`tunesmith eval"):
        compare_runs([two_runs[0], bare])
    with pytest.raises(RunDirError, match="not a directory"):
        compare_runs([tmp_path / "missing"])
    assert main(["compare", str(two_runs[0]), str(bare)]) == 2


def test_runs_that_share_a_name_are_told_apart_by_directory(tmp_path: Path) -> None:
    models = {"tuned (lora)": {"accuracy": 0.5}}
    one = _run(tmp_path / "a", "same", "labels", models, [1.0])
    two = _run(tmp_path / "b", "same", "labels", models, [1.0])
    assert [r["run"] for r in compare_runs([one, two])["runs"]] == [str(one), str(two)]
