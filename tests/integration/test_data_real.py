"""`tunesmith data prepare` on slices of the real datasets: the known defects of each must be found.

The slices (tests/assets/afrisenti/<lang>/, tests/assets/ntrex_yor_homoglyphs.txt; see ATTRIBUTION.md)
come from scripts/make_example_slices.py. The pcm test slice holds 5 tweets that upstream's test file
repeats from train; NTREX Yorùbá has Greek look-alike letters in place of dotted vowels.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration
ASSETS = Path(__file__).resolve().parents[1] / "assets"


def _prepare(tmp_path: Path, name: str, data: dict) -> Path:
    config = {"name": name, "output_dir": str(tmp_path / "runs"), "data": data}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["data", "prepare", str(path)]) == 0
    return tmp_path / "runs" / name / "data"


@pytest.mark.parametrize("lang", ["hau", "ibo", "pcm", "yor", "arq", "ary"])
def test_afrisenti_slice_languages_and_leaks(tmp_path: Path, lang: str) -> None:
    folder = ASSETS / "afrisenti" / lang
    data = _prepare(
        tmp_path,
        lang,
        {
            "train": str(folder / "train.tsv"),
            "test": str(folder / "test.tsv"),
            "format": "auto",
            "split": {"validation": 0.1, "stratify": []},
        },
    )
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["format"] == "classification"  # detected from the tweet/label columns
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    detected = Counter(r["detected"]["language"] for r in rows)
    top = detected.most_common(1)[0][0]
    assert top in ({"arq", "ary"} if lang in ("arq", "ary") else {lang}), detected
    script = Counter(r["detected"]["script"] for r in rows).most_common(1)[0][0]
    assert script == ("Arabic" if lang in ("arq", "ary") else "Latin")
    rejects = [json.loads(line) for line in (data / "rejects.jsonl").read_text().splitlines()]
    leaks = [r for r in rejects if r["reason"].startswith("test row also in")]  # train, or validation carved from it
    assert len(leaks) == (5 if lang == "pcm" else 0), [r["reason"] for r in leaks]
    assert all("train.tsv:" in r["reason"] for r in leaks)  # each names the train row it repeats
    card = json.loads((data / "card.json").read_text())
    assert card["kind"] == "classification" and set(card["splits"]) >= {"train", "test"}
    html = (data / "card.html").read_text()
    assert "<svg" in html and "<script>" not in html


def test_ntrex_yoruba_homoglyphs_are_repaired_and_listed(tmp_path: Path) -> None:
    data = _prepare(
        tmp_path,
        "ntrex-yor",
        {"train": str(ASSETS / "ntrex_yor_homoglyphs.txt"), "format": "text", "split": {"validation": 0, "test": 0}},
    )
    changes = [json.loads(line) for line in (data / "changes.jsonl").read_text().splitlines()]
    assert changes and all("repaired look-alike letters" in c["note"] for c in changes)
    text = (data / "train.jsonl").read_text()
    assert "ϙ" not in text and "ὺ" not in text and "ọmọ" in text
    assert json.loads((data / "manifest.json").read_text())["changes"] == len(changes)
