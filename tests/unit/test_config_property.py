"""The config loader under generated input: any YAML document and any --set override either loads or is refused
with a ConfigError naming what is wrong; no other exception reaches the user."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunesmith.config.load import load_config
from tunesmith.config.schema import RunConfig
from tunesmith.errors import ConfigError

SECTIONS = ["name", "seed", "output_dir", "data", "model", "method", "train", "eval", "export", "monitor", "x"]
FIELDS = ["train", "format", "columns", "split", "name", "r", "lr", "epochs", "base", "to", "baselines", "labels"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(SECTIONS), values, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents)
def test_any_document_loads_or_is_refused_with_a_config_error(document: dict, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert str(exc).strip()
    else:
        assert isinstance(config, RunConfig)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(max_size=30), value=st.text(max_size=40))
def test_any_override_loads_or_is_refused_with_a_config_error(key: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "run", "data": {"train": "x.tsv"}}))
    try:
        load_config(path, [f"{key}={value}"])
    except ConfigError as exc:
        assert str(exc).strip()
