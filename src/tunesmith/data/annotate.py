"""Per-row annotations that later stages group by: detected language, dominant script, code-mixing index.

Every prepared record gains ``detected = {language, confidence, script, cmi}``. Evaluation breaks scores
down by it, the data card plots it, and splits can stratify by ``language``. The identifier is the shipped
character n-gram model, a model saved by an earlier run, or one trained here from a group column that
already names each row's language (the user's own labelled data covers languages the shipped model lacks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunesmith.config.data import LanguageConfig
from tunesmith.data.records import primary_text
from tunesmith.errors import ConfigError, DataError


def identifier_for(config: LanguageConfig, train: Sequence[dict[str, Any]], kind: str, save_to: Path) -> Any:
    """The language identifier ``config`` asks for; one trained from ``train_from`` is saved to ``save_to``."""
    from tunesmith.data.langid import NgramIdentifier, load_default

    if config.train_from:
        pairs = [
            (primary_text(r, kind), r.get("groups", {}).get(config.train_from, ""))
            for r in train
            if r.get("groups", {}).get(config.train_from)
        ]
        languages = {lang for _, lang in pairs}
        if len(languages) < 2:
            raise DataError(
                f"data.language.train_from: group column '{config.train_from}' must name at least two "
                f"languages in the training split to train an identifier (found {sorted(languages) or 'none'}); "
                f"list it in data.groups too."
            )
        model = NgramIdentifier.fit(pairs)
        model.save(save_to)
        return model
    if config.identifier == "default":
        return load_default()
    path = Path(config.identifier)
    if not path.is_file():
        raise ConfigError(f"data.language.identifier: {path} is not a file (use 'default' or a saved langid.json).")
    return NgramIdentifier.load(path)


def detect(record: dict[str, Any], kind: str, identifier: Any) -> dict[str, Any]:
    """``{language, confidence, script, cmi}`` of a record's primary text."""
    from tunesmith.data.codemix import row_cmi
    from tunesmith.data.script import dominant_script

    text = primary_text(record, kind)
    if kind == "instruction" and record.get("input", "").strip():  # the instruction is often a fixed template
        text = record["input"]
    language, confidence = identifier.predict(text)
    return {
        "language": language,
        "confidence": round(confidence, 4),
        "script": dominant_script(text),
        "cmi": round(row_cmi(text, identifier), 2),
    }


def annotate(records: list[dict[str, Any]], kind: str, identifier: Any) -> list[dict[str, Any]]:
    """The records with ``detected`` set (new dicts; the inputs are not changed)."""
    return [{**r, "detected": detect(r, kind, identifier)} for r in records]
