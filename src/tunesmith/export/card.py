"""``--to adapter``: the PEFT adapter alone, pointing at a base others can fetch, with a model card.

The card says what a reader needs before trusting the adapter: the base model, the method and its
settings, the data (files, rows, languages) and the evaluation table from the run's own report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from tunesmith.errors import ExportError
from tunesmith.rundir import RunDir, atomic_write_text


def public_base(base: str) -> str:
    """The hub id of an embedded model (its name otherwise): adapters must not point at a local cache path."""
    from tunesmith.models.load import registry

    entry = registry().get(base)
    return str(entry.get("hub_id", base)) if entry else base


def _languages(manifest: dict[str, Any]) -> list[str]:
    """Detected languages of at least 5% of the training rows, most frequent first."""
    counts = (manifest.get("languages") or {}).get("train") or {}
    total = sum(counts.values()) or 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return [code for code, n in ranked if code not in ("und", "") and n / total >= 0.05]


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(config: Any, run: RunDir) -> str:
    """A Hugging Face model card (YAML front matter + markdown) for the run's adapter."""
    manifest = json.loads(run.manifest.read_text(encoding="utf-8")) if run.manifest.is_file() else {}
    base = public_base(config.model.base)
    front = {
        "base_model": base,
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "tags": ["tunesmith", config.method.name, config.train.objective],
    }
    if languages := _languages(manifest):
        front["language"] = languages
    method = config.method.model_dump(exclude_defaults=False)
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {config.name}",
        "",
        f"A `{config.method.name}` adapter for `{base}`, trained by tunesmith with the `{config.train.objective}` "
        "objective.",
        "",
        "## Training",
        "",
        f"- method: `{json.dumps(method, ensure_ascii=False)}`",
        f"- objective {config.train.objective}, lr {config.train.lr}, epochs {config.train.epochs}, "
        f"max length {config.train.max_length}, seed {config.seed}",
    ]
    if run.train_summary.is_file():
        summary = json.loads(run.train_summary.read_text(encoding="utf-8"))
        keys = ("steps", "tokens_seen", "best_val_loss", "train_seconds")
        shown = ", ".join(f"{k} {_short(summary[k])}" for k in keys if summary.get(k) is not None)
        if shown:
            lines.append(f"- {shown}")
    lines += ["", "## Data", ""]
    for split, info in (manifest.get("splits") or {}).items():
        lines.append(f"- {split}: {info.get('rows')} rows")
    for name, info in (manifest.get("inputs") or {}).items():
        lines.append(f"- input `{name}`: `{Path(info.get('path', '')).name}` (sha256 {info.get('sha256', '')[:12]})")
    if manifest.get("labels"):
        lines.append(f"- labels: {', '.join(manifest['labels'])}")
    report = run.eval / "report.md"
    lines += ["", "## Evaluation", ""]
    if report.is_file():
        text = report.read_text(encoding="utf-8")
        body = text.split("\n## ", 1)[0].split("\n", 1)[-1].strip()  # the headline table, before per-model detail
        lines += [body, "", "The full report is `eval/report.md` in the run directory."]
    else:
        lines.append("Not evaluated yet (`tunesmith eval RUN_DIR`).")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from peft import AutoPeftModelForCausalLM",
        "from transformers import AutoTokenizer",
        "",
        'model = AutoPeftModelForCausalLM.from_pretrained("PATH/TO/THIS/FOLDER")',
        'tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/FOLDER")',
        "```",
        "",
    ]
    return "\n".join(lines)


def export_adapter(config: Any, run: RunDir, trained: Path, out_dir: Path) -> dict[str, Any]:
    """Copy the adapter files, point its config at the public base, and write README.md (the card)."""
    if not (trained / "adapter_config.json").is_file() and not (trained / "fewshot.json").is_file():
        raise ExportError(
            f"{trained}: no adapter_config.json; method {config.method.name} saved whole weights, use `--to hf`."
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(trained, out_dir, ignore=shutil.ignore_patterns("README.md", ".*"))
    adapter_config = out_dir / "adapter_config.json"
    if adapter_config.is_file():
        settings = json.loads(adapter_config.read_text(encoding="utf-8"))
        settings["base_model_name_or_path"] = public_base(config.model.base)
        atomic_write_text(adapter_config, json.dumps(settings, indent=2) + "\n")
    atomic_write_text(out_dir / "README.md", model_card(config, run))
    return {"files": sorted(p.name for p in out_dir.iterdir())}
