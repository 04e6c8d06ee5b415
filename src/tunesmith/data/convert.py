"""Conversions between record kinds: pure functions from validated records to new records.

Preference trainers (DPO, ORPO, reward models) consume ``{prompt, chosen, rejected}`` pairs, while the data
people have is often a ranking, scores, or a pick among N; supervised fine-tuning consumes instructions,
while translation data is parallel text. These functions bridge the gap without I/O so that they are easy
to test and to compose. Every output keeps the ``source`` (file, line) of the record it came from, so a
bad pair can be traced back to its input row; pairs made from two records also carry ``rejected_source``.

Classification -> instruction is not here: :func:`tunesmith.data.format.render_prompt` does it through a
template.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tunesmith.errors import DataError

# ISO 639-3 (and the common 639-1) codes of languages tunesmith users work with, for readable instructions.
LANGUAGE_NAMES: dict[str, str] = {
    "eng": "English",
    "en": "English",
    "fra": "French",
    "fr": "French",
    "por": "Portuguese",
    "pt": "Portuguese",
    "deu": "German",
    "spa": "Spanish",
    "ara": "Arabic",
    "arb": "Modern Standard Arabic",
    "arq": "Algerian Arabic",
    "ary": "Moroccan Arabic",
    "arz": "Egyptian Arabic",
    "hau": "Hausa",
    "ha": "Hausa",
    "ibo": "Igbo",
    "ig": "Igbo",
    "yor": "Yoruba",
    "yo": "Yoruba",
    "pcm": "Nigerian Pidgin",
    "swa": "Swahili",
    "swh": "Swahili",
    "sw": "Swahili",
    "amh": "Amharic",
    "am": "Amharic",
    "tir": "Tigrinya",
    "orm": "Oromo",
    "gaz": "Oromo",
    "som": "Somali",
    "kin": "Kinyarwanda",
    "rw": "Kinyarwanda",
    "lug": "Luganda",
    "lin": "Lingala",
    "twi": "Twi",
    "aka": "Akan",
    "ewe": "Ewe",
    "fon": "Fon",
    "wol": "Wolof",
    "ful": "Fula",
    "fuv": "Nigerian Fulfulde",
    "bam": "Bambara",
    "mos": "Mossi",
    "tso": "Xitsonga",
    "zul": "Zulu",
    "zu": "Zulu",
    "xho": "Xhosa",
    "xh": "Xhosa",
    "sna": "Shona",
    "nya": "Chichewa",
    "tsn": "Setswana",
    "sot": "Sesotho",
    "afr": "Afrikaans",
    "af": "Afrikaans",
    "mlg": "Malagasy",
    "kab": "Kabyle",
    "tzm": "Central Atlas Tamazight",
    "luo": "Dholuo",
    "kik": "Kikuyu",
}
TRANSLATE_INSTRUCTION = "Translate from {source} to {target}:"


def language_name(code: str) -> str:
    """``"hau"`` -> ``"Hausa"``; FLORES-style ``"hau_Latn"`` and BCP-47 ``"pt-BR"`` use their base code.

    Unknown codes are returned as given: a code in the instruction is better than a wrong name.
    """
    base = code.strip().replace("-", "_").split("_")[0].lower()
    return LANGUAGE_NAMES.get(base, code.strip())


def _lineage(record: dict[str, Any]) -> dict[str, Any]:
    return {"groups": dict(record.get("groups", {})), "source": record.get("source")}


def _pair(prompt: str, chosen: str, rejected: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **_lineage(record)}


def ranking_to_pairs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pair a ranking implies (lower rank = better), better response as ``chosen``; ties give no pair.

    ``n`` responses with distinct ranks give ``n * (n - 1) / 2`` pairs, best-ranked pairs first.
    """
    responses, ranks = record["responses"], record.get("ranks") or list(range(1, len(record["responses"]) + 1))
    order = sorted(range(len(responses)), key=lambda i: ranks[i])
    return [
        _pair(record["prompt"], responses[i], responses[j], record)
        for a, i in enumerate(order)
        for j in order[a + 1 :]
        if ranks[i] < ranks[j]
    ]


def choice_to_pairs(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The chosen candidate against each other candidate, in candidate order."""
    candidates, chosen = record["candidates"], record["chosen"]
    return [
        _pair(record["prompt"], candidates[chosen], other, record) for j, other in enumerate(candidates) if j != chosen
    ]


def rating_to_pairs(records: Iterable[dict[str, Any]], margin: float) -> list[dict[str, Any]]:
    """Pairs of responses to the same prompt whose scores differ by at least ``margin`` (higher = chosen).

    Prompts are grouped by exact text (after trimming outer whitespace), in order of first appearance.
    Two responses with the same text are never paired: a pair of identical answers teaches nothing.
    Each pair keeps its score gap as ``margin`` (a reward model can ask for a larger gap on clear pairs).

    Raises:
        DataError: ``margin`` is not positive (a zero margin would pair tied scores).
    """
    if not margin > 0:
        raise DataError(f"rating_to_pairs: margin must be positive, got {margin}.")
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_prompt.setdefault(record["prompt"].strip(), []).append(record)
    pairs: list[dict[str, Any]] = []
    for group in by_prompt.values():
        ranked = sorted(group, key=lambda r: -float(r["score"]))
        for a, better in enumerate(ranked):
            for worse in ranked[a + 1 :]:
                if float(better["score"]) - float(worse["score"]) < margin:
                    continue
                if better["response"].strip() == worse["response"].strip():
                    continue
                pair = _pair(better["prompt"], better["response"], worse["response"], better)
                gap = float(better["score"]) - float(worse["score"])
                pairs.append({**pair, "margin": gap, "rejected_source": worse.get("source")})
    return pairs


def parallel_to_instructions(
    record: dict[str, Any],
    both_directions: bool = True,
    source_lang: str | None = None,
    target_lang: str | None = None,
    template: str = TRANSLATE_INSTRUCTION,
) -> list[dict[str, Any]]:
    """Translation instructions (``instruction``, ``input``, ``output``) from a parallel record.

    Args:
        record: A ``parallel`` record.
        both_directions: Also emit target -> source, which doubles the data for a low-resource pair.
        source_lang: Language code used when the record has no ``source_lang`` (files often hold one pair).
        target_lang: Likewise for ``target_lang``.
        template: The instruction, with ``{source}`` and ``{target}`` language names.

    Raises:
        DataError: neither the record nor the arguments give both languages (names the record's origin).
    """
    src = record.get("source_lang") or source_lang
    tgt = record.get("target_lang") or target_lang
    if not src or not tgt:
        origin = record.get("source") or {}
        raise DataError(
            f"{origin.get('file')}:{origin.get('line')}: a parallel record needs source_lang and target_lang "
            "(columns, or languages given to the conversion) to become translation instructions."
        )
    directions = [(src, tgt, record["source_text"], record["target_text"])]
    if both_directions:
        directions.append((tgt, src, record["target_text"], record["source_text"]))
    return [
        {
            "instruction": template.format(source=language_name(a), target=language_name(b)),
            "input": text_in,
            "output": text_out,
            **_lineage(record),
        }
        for a, b, text_in, text_out in directions
    ]


def to_pairs(records: Iterable[dict[str, Any]], kind: str, margin: float = 1.0) -> list[dict[str, Any]]:
    """Preference pairs from records of any kind that implies them (``preference`` passes through).

    Raises:
        DataError: ``kind`` implies no pairs.
    """
    if kind == "preference":
        return list(records)
    if kind == "ranking":
        return [pair for r in records for pair in ranking_to_pairs(r)]
    if kind == "choice":
        return [pair for r in records for pair in choice_to_pairs(r)]
    if kind == "rating":
        return rating_to_pairs(records, margin)
    raise DataError(f"Records of kind '{kind}' do not imply preference pairs (use ranking, rating or choice).")
