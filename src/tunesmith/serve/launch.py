"""``tunesmith serve``: build the engine for a run directory or a model, then run uvicorn.

What gets served:
- a LoRA/QLoRA run directory: its base model (named after the base) with the run's adapter (named after
  the run), so one server answers both and ``--adapter`` adds more on the same base;
- a DoRA, IA3, full or freeze run: the tuned model merged into one (named after the run);
- a model (embedded name, HF folder such as an ``export --to hf`` result, ``.gguf`` file): that model.

Two backends serve it behind the same HTTP layer: the in-process batching engine (``--backend tunesmith``),
and vLLM (``--backend vllm``; ``auto``, the default, takes vLLM where CUDA and vLLM are both present).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.errors import ExportError, ServeError
from tunesmith.serve.batching import BatchingEngine, EngineSettings

log = logging.getLogger(__name__)
DTYPES = ("auto", "float32", "bfloat16", "float16")
BACKENDS = ("auto", "tunesmith", "vllm")


@dataclass
class Loaded:
    model: Any
    tokenizer: Any
    base_name: str
    adapter: tuple[str, Path] | None = None
    source_dir: Path | None = None  # a Hugging Face folder holding exactly these weights, when there is one


def hf_folder(source: Any) -> Path | None:
    """``source``'s directory when it is a safetensors Hugging Face folder (not a GGUF file)."""
    folder = source.directory
    if source.gguf_file is None and (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return Path(folder)
    return None


def served_name(text: str) -> str:
    """A name usable as the ``model`` field from a model path or id (``org/name`` keeps its last part)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(text.rstrip("/")).name).strip("-.") or "model"
    return name[:64]


def _load_run(run_dir: Path) -> Loaded:
    from tunesmith.export.tuned import (
        CAUSAL_OBJECTIVES,
        load_base,
        load_tokenizer_for,
        load_tuned,
        run_config,
        trained_dir,
    )
    from tunesmith.models.load import configured_source

    config = run_config(run_dir)
    if config.method.name in ("lora", "qlora") and config.train.objective in CAUSAL_OBJECTIVES:
        trained = trained_dir(run_dir, config)
        model, tokenizer = load_base(config, trained), load_tokenizer_for(config, trained)
        source = None if config.model.new_tokens else hf_folder(configured_source(config.model))
        adapter = (served_name(config.name), trained)
        return Loaded(model, tokenizer, served_name(config.model.base), adapter, source)
    try:
        tuned = load_tuned(run_dir)
    except ExportError as exc:
        raise ServeError(f"cannot serve {run_dir}: {exc}") from None
    return Loaded(tuned.model, tuned.tokenizer, served_name(config.name))


def load_target(target: str, trust_pickle: bool = False, trust_remote_code: bool = False) -> Loaded:
    """The model (and adapter) to serve for a run directory or a model reference."""
    from tunesmith.models.load import load_causal_lm, load_tokenizer, resolve

    path = Path(target)
    if (path / "config.yaml").is_file():
        return _load_run(path)
    source = resolve(target, trust_pickle=trust_pickle, trust_remote_code=trust_remote_code)
    if source.kind != "causal-lm":
        raise ServeError(f"'{target}' is an {source.kind} model; the server generates text with a causal LM.")
    return Loaded(load_causal_lm(source), load_tokenizer(source), served_name(source.name), None, hf_folder(source))


def choose_backend(backend: str) -> str:
    """``auto``: vLLM where CUDA and vLLM are both present, the in-process engine elsewhere."""
    from tunesmith.serve import vllm_engine

    if backend not in BACKENDS:
        raise ServeError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}.")
    if backend != "auto":
        return backend
    import torch

    return "vllm" if torch.cuda.is_available() and vllm_engine.available() else "tunesmith"


def build_engine(
    target: str,
    adapters: list[tuple[str, str]] | None = None,
    dtype: str = "auto",
    settings: EngineSettings | None = None,
    trust_pickle: bool = False,
    trust_remote_code: bool = False,
    backend: str = "tunesmith",
    max_lora_rank: int | None = None,
    engine_args: dict[str, Any] | None = None,
) -> Any:
    """Load ``target`` and the extra LoRA ``adapters`` (name, path) into one engine of ``backend``."""
    import torch

    from tunesmith.eval.generate import stop_ids_and_strings
    from tunesmith.serve.adapters import AdapterPool
    from tunesmith.train import env

    if dtype not in DTYPES:
        raise ServeError(f"--dtype {dtype}: choose one of {', '.join(DTYPES)}.")
    chosen_backend = choose_backend(backend)
    if engine_args and chosen_backend != "vllm":
        raise ServeError(f"--vllm-arg applies to the vLLM backend; this server uses --backend {chosen_backend}.")
    if chosen_backend == "vllm":
        from tunesmith.serve.vllm_engine import require

        require()  # before minutes of loading
    loaded = load_target(target, trust_pickle, trust_remote_code)
    chosen = dtype if dtype != "auto" else ("bfloat16" if env.resolve_precision("auto") == "bf16" else "float32")
    named = [*([(loaded.adapter[0], str(loaded.adapter[1]))] if loaded.adapter else []), *(adapters or [])]
    stop_ids, turn_texts = stop_ids_and_strings(loaded.tokenizer, loaded.model, None)
    if not stop_ids:
        raise ServeError(
            "the tokenizer has no EOS token and the chat template no end-of-turn token: answers "
            "would never stop; set eos_token in the tokenizer."
        )
    if chosen_backend == "vllm":
        from tunesmith.serve.vllm_engine import build_vllm_engine

        log.info("serving %s with vLLM in %s", loaded.base_name, chosen)
        settings = settings or EngineSettings()
        return build_vllm_engine(
            loaded, named, chosen, settings, stop_ids, tuple(turn_texts), max_lora_rank, trust_remote_code, engine_args
        )
    model = loaded.model.to(env.device_name(), getattr(torch, chosen)).eval()
    pool = AdapterPool(model, loaded.base_name)
    for name, path in named:
        pool.load(name, Path(path))
    log.info("serving %s in %s", pool.names(), chosen)
    return BatchingEngine(pool, loaded.tokenizer, stop_ids, settings, tuple(turn_texts))


def read_key_hashes(key_file: Path | None) -> tuple[str, ...]:
    """API key hashes from ``key_file`` (one key per line, or ``sha256:HEX``) and ``TUNESMITH_API_KEYS``."""
    from tunesmith.serve.middleware import hash_key

    lines: list[str] = []
    if key_file is not None:
        if not key_file.is_file():
            raise ServeError(f"--api-key-file {key_file}: no such file.")
        lines += key_file.read_text(encoding="utf-8").splitlines()
    lines += [k for k in os.environ.get("TUNESMITH_API_KEYS", "").split(",")]
    hashes = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("sha256:"):
            digest = line[7:].strip().lower()
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ServeError(f"{key_file}:{number}: sha256: must be followed by 64 hex digits.")
            hashes.append(digest)
        else:
            hashes.append(hash_key(line))
    return tuple(hashes)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, hashes: tuple[str, ...], no_auth: bool) -> None:
    """A server reachable from other machines needs API keys unless the user says otherwise explicitly."""
    if not hashes and not is_loopback(host) and not no_auth:
        raise ServeError(
            f"--host {host} is reachable from other machines and no API key is set: give --api-key-file FILE "
            "(or TUNESMITH_API_KEYS), or pass --insecure-no-auth if this network is trusted."
        )


def request_log(target: str, store: str | None, privacy: str, disabled: bool) -> Any:
    """The request log for ``tunesmith serve``: a monitor store writer, or None (nothing logged).

    A run directory logs to ``RUN_DIR/monitor.db`` unless ``--store`` names another database or
    ``--no-store`` turns logging off; a bare model logs only when ``--store`` is given.
    """
    if disabled:
        return None
    if store is None and (Path(target) / "config.yaml").is_file():
        store = str(Path(target) / "monitor.db")
    if store is None:
        return None
    if privacy not in ("full", "redact", "hashes"):
        raise ServeError(f"--privacy {privacy}: choose full, redact or hashes.")
    from tunesmith.monitor.drift_run import training_template
    from tunesmith.monitor.store import Store
    from tunesmith.monitor.writer import StoreWriter, WriterSettings, default_annotator

    template = training_template(Path(target)) if (Path(target) / "config.yaml").is_file() else None
    return StoreWriter(Store(store), WriterSettings(privacy=privacy), default_annotator(template))  # type: ignore[arg-type]
