from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.config.load import (
    apply_overrides,
    dump_config,
    load_config,
    parse_override,
    preset_path,
    validate_config,
)
from tunesmith.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "src" / "tunesmith" / "config" / "presets").rglob("*.yaml")) + sorted(
    (ROOT / "examples").rglob("*.yaml")
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_preset_and_example_loads(path: Path) -> None:
    config = load_config(path)
    assert config.name
    assert config.data.train.endswith((".tsv", ".csv", ".jsonl", ".json", ".txt", ".parquet"))


def test_shipped_configs_were_found() -> None:
    assert len(SHIPPED) >= 3


def _raw(**extra) -> dict:
    return {"name": "x", "data": {"train": "t.tsv"}, **extra}


def test_unknown_key_names_location_and_closest_key() -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(_raw(train={"lrr": 1e-3}))
    msg = str(err.value)
    assert "train.lrr" in msg and "Did you mean 'lr'" in msg


def test_unknown_key_inside_method_variant_suggests_from_that_variant() -> None:
    with pytest.raises(ConfigError) as err:
        validate_config(_raw(method={"name": "lora", "rank": 8}))
    assert "method.rank" in str(err.value)
    assert "alpha" in str(err.value)  # lists LoRA's keys, not freeze's


def test_unknown_top_level_key() -> None:
    with pytest.raises(ConfigError, match="unknown key 'modle'.*Did you mean 'model'"):
        validate_config(_raw(modle={}))


def test_wrong_type_and_missing_key() -> None:
    with pytest.raises(ConfigError, match="train.lr"):
        validate_config(_raw(train={"lr": "fast"}))
    with pytest.raises(ConfigError, match="required key 'data' is missing"):
        validate_config({"name": "x"})


def test_overrides_parse_yaml_values_and_create_sections() -> None:
    assert parse_override("train.lr=1e-4") == (["train", "lr"], 1e-4)
    assert parse_override("eval.groups=[language]") == (["eval", "groups"], ["language"])
    out = apply_overrides({"a": {"b": 1}}, ["a.b=2", "c.d=null"])
    assert out == {"a": {"b": 2}, "c": {"d": None}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.lr")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: {train: a.tsv\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(bad)


def test_paths_resolve_relative_to_config_and_dump_roundtrips(tmp_path: Path) -> None:
    cfg = tmp_path / "sub" / "c.yaml"
    cfg.parent.mkdir()
    cfg.write_text("name: x\ndata: {train: d/train.tsv}\n")
    config = load_config(cfg, ["method.r=4"])
    assert config.data.train == str((cfg.parent / "d" / "train.tsv").resolve())
    assert config.method.r == 4  # type: ignore[union-attr]
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(config))
    assert load_config(again) == config


def test_unknown_preset_suggests() -> None:
    with pytest.raises(ConfigError, match="sentiment-lora"):
        preset_path("sentiment-lor")


def test_missing_config_file_suggests_a_real_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert "not found" in str(err.value) and "sentiment-lora" in str(err.value)


def test_prompt_learning_methods_refuse_packing_and_l2sp_needs_base_weights() -> None:
    for name in ("prompt", "prefix", "ptuning"):
        with pytest.raises(ConfigError, match="packing: false"):
            validate_config(_raw(method={"name": name}, train={"packing": True}))
        validate_config(_raw(method={"name": name}, train={"packing": False}))
    with pytest.raises(ConfigError, match="with dora use train.weight_decay"):
        validate_config(_raw(method={"name": "dora"}, train={"l2sp": 0.1}))


def test_every_method_name_validates() -> None:
    from tunesmith.adapters import METHODS

    for name in METHODS:
        assert validate_config(_raw(method={"name": name})).method.name == name


def test_shot_baselines_are_refused_for_raw_text() -> None:
    import pytest

    from tunesmith.config.schema import RunConfig

    with pytest.raises(ValueError, match="put solved training examples in front of each query"):
        RunConfig.model_validate(
            {
                "name": "x",
                "data": {"train": "t.txt", "format": "text"},
                "eval": {"baselines": ["zero-shot", "few-shot"]},
            }
        )
    ok = RunConfig.model_validate({"name": "x", "data": {"train": "t.tsv"}, "eval": {"baselines": ["few-shot"]}})
    assert ok.eval.baselines == ["few-shot"]
