"""``tunesmith monitor drift``: the served prompts of a recent window against the run's training prompts.

Both sides are the text a user writes: the training split's prompts as the model saw them (the rendered
instruction, or a chat's last user turn) and the logged requests' last user message. A fixed instruction
template around the user's text (the quickstart's "Classify the sentiment of this tweet ... Tweet: ...")
would otherwise dominate the language and length statistics on both sides alike, so a prefix and a suffix
shared by most texts of a side are cut off first: what remains is what users actually vary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunesmith.errors import DataError
from tunesmith.monitor.writer import user_text
from tunesmith.rundir import RunDir

SHARED = 0.6  # a prefix/suffix counts as template when at least this share of texts carries it
MIN_TEMPLATE = 8  # characters


def _affix(texts: Sequence[str], suffix: bool) -> str:
    """The longest prefix (or suffix) shared by at least :data:`SHARED` of ``texts``, cut at a word edge."""
    if len(texts) < 5:
        return ""
    flip = (lambda t: t[::-1]) if suffix else (lambda t: t)
    ordered = sorted(flip(t) for t in texts)
    need = max(2, int(SHARED * len(ordered)))
    best = ""
    for i in range(len(ordered) - need + 1):
        common = _common_prefix(ordered[i], ordered[i + need - 1])
        if len(common) > len(best):
            best = common
    # cut back to a whitespace so that a word users happen to share is not taken for template
    edges = [i for i, c in enumerate(best) if c.isspace()]
    best = best[: edges[-1] + 1] if edges and not best[-1].isspace() else best
    best = flip(best)
    return best if len(best) >= MIN_TEMPLATE else ""


def _common_prefix(a: str, b: str) -> str:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[:n]


def strip_template(texts: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``texts`` without the prefix and suffix most of them share; and what was cut."""
    prefix = _affix(texts, suffix=False)
    suffix = _affix([t[len(prefix) :] if t.startswith(prefix) else t for t in texts], suffix=True)
    out = []
    for text in texts:
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        if suffix and text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
        out.append(text.strip() or text)
    return out, {"prefix": prefix, "suffix": suffix}


def reference_texts(run: RunDir, limit: int = 2000) -> list[str]:
    """The training split's prompts as users would type them (evenly spaced sample of at most ``limit``)."""
    from tunesmith.data.records import primary_text
    from tunesmith.rundir import read_jsonl

    if not run.split("train").is_file():
        raise DataError(f"{run.root}: no prepared training split (data/train.jsonl) to compare traffic with.")
    kind = json.loads(run.manifest.read_text(encoding="utf-8"))["format"] if run.manifest.is_file() else "text"
    rows = read_jsonl(run.split("train"))
    step = max(1, len(rows) // limit)
    texts = []
    for row in rows[::step][:limit]:
        prompt = row.get("prompt")
        texts.append(user_text(prompt) if prompt else primary_text(row, kind))
    return [t for t in texts if t.strip()]


def training_template(run_dir: Path) -> dict[str, str]:
    """The instruction template around the user's text in a run's training prompts (empty strings if none)."""
    try:
        return strip_template(reference_texts(RunDir(run_dir), limit=500))[1]
    except (DataError, OSError, ValueError):
        return {"prefix": "", "suffix": ""}


def check_drift(
    run_dir: Path, store: Any, last: int, thresholds: Any, semantic: bool = True, model: str | None = None
) -> dict[str, Any]:
    """Drift of the ``last`` logged requests (of ``model``) against ``run_dir``'s training prompts; stored too."""
    from tunesmith.export.tuned import load_tokenizer_for, run_config, trained_dir
    from tunesmith.monitor.drift import drift

    rows = [r for r in store.requests(model=model, limit=last) if r.get("prompt") is not None]
    window, cut_window = strip_template([user_text(r["prompt"]) for r in rows])
    reference, cut_reference = strip_template(reference_texts(RunDir(run_dir)))
    config = run_config(run_dir)
    try:
        tokenizer = load_tokenizer_for(config, trained_dir(run_dir, config))
    except Exception:  # a classifier run's tokenizer, or none: fertility is then skipped with the reason
        tokenizer = None
    report = drift(reference, window, tokenizer=tokenizer, thresholds=thresholds, seed=config.seed, semantic=semantic)
    report["template_cut"] = {"reference": cut_reference, "window": cut_window}
    report["window_span"] = [rows[0]["time"], rows[-1]["time"]] if rows else None
    store.add_drift(report, (rows[0]["time"], rows[-1]["time"]) if rows else (None, None))
    return report
