"""Load a run config from YAML, apply ``--set a.b=value`` overrides, and explain every error in one paragraph."""

from __future__ import annotations

import contextlib
import difflib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tunesmith.config.schema import FreezeMethod, FullMethod, LoraMethod, RunConfig
from tunesmith.errors import ConfigError

PRESETS_DIR = Path(__file__).parent / "presets"
_METHODS: dict[str, type[BaseModel]] = {"lora": LoraMethod, "full": FullMethod, "freeze": FreezeMethod}
DATA_PATH_FIELDS = ("train", "validation", "test")


MAX_YAML_VALUES = 100_000  # values a config may expand to, aliases counted at each use ("billion laughs")


def _expanded(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` becomes once every alias is expanded (each shared node counted once per use)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a node that contains itself (a recursive alias) counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[id(node)] = size
    return size


def safe_yaml(text: str, source: str = "config") -> Any:
    """``yaml.safe_load`` that refuses documents expanding to more than :data:`MAX_YAML_VALUES` values through
    anchors and aliases, or nested too deeply to read, with a ConfigError instead of hanging or crashing."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded(node, {})
        if size > MAX_YAML_VALUES:
            raise ConfigError(
                f"{source}: expands to {size:,} values through YAML anchors and aliases (more than "
                f"{MAX_YAML_VALUES:,}); write the values out instead of aliasing them."
            )
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read (lists or mappings inside each other).") from None
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a syntax error names the file, line and column."""
    if not path.is_file():
        raise ConfigError(
            f"Config file not found: {path}. Start from a preset ({', '.join(preset_names())}): "
            f"`tunesmith config eject {preset_names()[0]} {path}`."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8.") from None
    try:
        raw = safe_yaml(text, str(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping (key: value), got {type(raw).__name__}.")
    return raw


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``train.lr=1e-4`` into (["train", "lr"], 1e-4); the value is read as YAML (numbers, lists, null)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. --set train.lr=1e-4.")
    key, value = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: the key is empty.")
    try:
        parsed = safe_yaml(value, f"--set {key.strip()}") if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        with contextlib.suppress(ValueError):
            parsed = float(parsed)
    return parts, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted key in a copy of ``raw``; intermediate sections are created as needed."""
    out = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
    for item in overrides:
        parts, value = parse_override(item)
        node = out
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    return out


def _resolve_reward(raw: dict[str, Any], base: Path) -> None:
    """``train.ppo.reward``: a run directory or a ``file.py:function`` relative to the config file."""
    train = raw.get("train")
    ppo = train.get("ppo") if isinstance(train, dict) else None
    if not isinstance(ppo, dict) or not isinstance(ppo.get("reward"), str) or not ppo["reward"]:
        return
    value = ppo["reward"]
    target, sep, name = value.rpartition(":")
    if sep and target.endswith(".py") and not Path(target).is_absolute():
        ppo["reward"] = f"{(base / target).resolve()}:{name}"
    elif not Path(value).is_absolute() and (base / value).is_dir():
        ppo["reward"] = str((base / value).resolve())


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    _resolve_reward(raw, base)
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in DATA_PATH_FIELDS:
        value = data.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            data[key] = str((base / value).resolve())
    replay = data.get("replay")
    if isinstance(replay, dict) and isinstance(replay.get("path"), str) and not Path(replay["path"]).is_absolute():
        replay["path"] = str((base / replay["path"]).resolve())
    model = raw.get("model")
    if isinstance(model, dict):
        for key in ("base", "chat_template"):
            value = model.get(key)
            if isinstance(value, str) and (value.startswith(("./", "../")) or value.endswith((".gguf", ".jinja"))):
                candidate = (base / value).resolve()
                if candidate.exists():
                    model[key] = str(candidate)


def _section_at(loc: tuple[Any, ...], raw: dict[str, Any]) -> type[BaseModel] | None:
    """The pydantic model class that holds the last key of ``loc`` (to suggest valid keys)."""
    cls: type[BaseModel] = RunConfig
    node: Any = raw
    for part in loc[:-1]:
        if part in _METHODS:  # discriminated-union tag in the location
            cls = _METHODS[str(part)]
            continue
        field = cls.model_fields.get(str(part))
        if field is None:
            return None
        node = node.get(part, {}) if isinstance(node, dict) else {}
        ann = field.annotation
        if str(part) == "method":
            name = node.get("name", "lora") if isinstance(node, dict) else "lora"
            cls = _METHODS.get(str(name), LoraMethod)
            continue
        candidates = [a for a in typing.get_args(ann) or (ann,) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return None
        cls = candidates[0]
    return cls


def _describe(err: dict[str, Any], raw: dict[str, Any], source: str) -> str:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc if p not in _METHODS) or "(top level)"
    if err["type"] == "extra_forbidden":
        section = _section_at(loc, raw)
        valid = sorted(f.alias or name for name, f in section.model_fields.items()) if section else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        parent = ".".join(str(p) for p in loc[:-1] if p not in _METHODS) or "the top level"
        return f"{source}: unknown key '{where}' in {parent}.{hint} Valid keys there: {', '.join(valid)}."
    if err["type"] == "missing":
        return f"{source}: required key '{where}' is missing."
    return f"{source}: '{where}': {err['msg']} (got {err.get('input')!r})."


def validate_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Build a RunConfig from plain data; errors become one ConfigError with a line per problem."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(e, raw, source) for e in exc.errors()]  # type: ignore[arg-type]
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read ``path`` (YAML), apply overrides, resolve data paths relative to the file, and validate."""
    path = Path(path)
    raw = apply_overrides(read_yaml(path), overrides or [])
    _resolve_paths(raw, path.parent.resolve())
    return validate_config(raw, source=str(path))


def dump_config(config: RunConfig) -> str:
    """The resolved config as YAML, with every default filled in (what the run directory records)."""
    return yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False, allow_unicode=True)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        close = difflib.get_close_matches(name, preset_names(), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"No preset named '{name}'.{hint} Presets: {', '.join(preset_names())}.")
    return path
