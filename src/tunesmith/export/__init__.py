"""Stage 6a: export a run as a merged Hugging Face model, a GGUF file (+ Ollama Modelfile) or an adapter."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import ExportError

FORMATS = ("hf", "gguf", "adapter")
QUANTS = ("f32", "f16", "bf16", "q8_0")


def default_out(run_dir: Path, to: str) -> Path:
    return run_dir / "export" / to


def export_run(
    run_dir: Path,
    to: str,
    out: Path | None = None,
    quants: Sequence[str] | None = None,
    ollama: bool = False,
    dtype: str = "auto",
) -> dict[str, Any]:
    """Export ``run_dir`` ``to`` one of :data:`FORMATS` under ``out`` (default ``RUN_DIR/export/<to>``).

    Writes ``export.json`` (what, from which run, the files with their sizes) beside the files.
    """
    from tunesmith.export.tuned import (
        HEAD_OBJECTIVES,
        check_exportable,
        load_scorer,
        load_tuned,
        run_config,
        trained_dir,
    )
    from tunesmith.rundir import RunDir, sha256_file, write_json

    if to not in FORMATS:
        raise ExportError(f"--to {to}: choose one of {', '.join(FORMATS)}.")
    out = out or default_out(run_dir, to)
    config = run_config(run_dir)
    result: dict[str, Any] = {"run": str(run_dir), "format": to, "method": config.method.name, "out": str(out)}
    if to == "adapter":
        from tunesmith.export.card import export_adapter

        result |= export_adapter(config, RunDir(run_dir), trained_dir(run_dir, config), out)
    elif config.train.objective in HEAD_OBJECTIVES:
        check_exportable(config, to)
        from tunesmith.export.hf import save_classifier

        result |= save_classifier(load_scorer(run_dir), out, dtype)
    else:
        check_exportable(config, to)
        tuned = load_tuned(run_dir)
        if tuned.note:
            result["note"] = tuned.note
        if to == "hf":
            from tunesmith.export.hf import save_hf

            result |= save_hf(tuned.model, tuned.tokenizer, out, dtype)
        else:
            result |= _export_gguf(tuned, out, quants or ["f16", "q8_0"], ollama)
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "export.json")
    result["files"] = [
        {"path": str(p.relative_to(out)), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in files
    ]
    write_json(out / "export.json", result)
    return result


def _export_gguf(tuned: Any, out: Path, quants: Sequence[str], ollama: bool) -> dict[str, Any]:
    """Save the merged model as a temporary HF directory (fp32) and convert it once per quant type."""
    from tunesmith.export.gguf import write_gguf
    from tunesmith.export.hf import save_hf

    unknown = [q for q in quants if q not in QUANTS]
    if unknown:
        raise ExportError(f"--quant {', '.join(unknown)}: choose from {', '.join(QUANTS)}.")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(dir=out, prefix=".merged.") as tmp:
        hf_dir = Path(tmp) / "hf"
        save_hf(tuned.model, tuned.tokenizer, hf_dir, "float32")
        for quant in quants:
            path = out / f"{tuned.config.name}.{quant}.gguf"
            written.append(write_gguf(hf_dir, path, quant, name=tuned.config.name))
        if ollama:
            from tunesmith.export.ollama import modelfile

            generation = json.loads((hf_dir / "generation_config.json").read_text(encoding="utf-8"))
            first = Path(written[0]["path"]).name
            (out / "Modelfile").write_text(modelfile(tuned.tokenizer, first, generation), encoding="utf-8")
    return {"gguf": written, "ollama": ollama}
