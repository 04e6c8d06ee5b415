"""Tokenizer fertility per language: tokens per word and byte-fallback rate, for the data card.

A base model's tokenizer was trained mostly on English: on Hausa or Yorùbá it may spend two or three tokens
on a word, and on letters it never saw (``ọ``, ``ẹ``, ``ṣ``) it falls back to raw UTF-8 bytes. Both shorten
the context a row can use and lengthen training, and byte pieces are symbols a model learns poorly; the
card reports them per language so that the cost of a language is visible before training (Rust et al. 2021,
"How Good is Your Tokenizer?", use the same two measures: fertility and continued-word share).

Definitions (pooled over rows, not averaged per row, so long rows weigh by their length):

- ``tokens_per_word``: tokens / whitespace-separated words of the same texts (special tokens not added).
- ``byte_fallback_rate``: the share of tokens that do not decode to whole characters: a token whose
  ``decode([id])`` contains U+FFFD (REPLACEMENT CHARACTER). With byte-level BPE (GPT-2, SmolLM2, Llama 3) that
  is a token holding only part of a multi-byte character (``ọ`` = 3 bytes split over two tokens); with
  SentencePiece byte fallback (Llama 2, Gemma) it is a ``<0xE1>`` byte token. Text that itself contains
  U+FFFD counts too: it usually marks an earlier decoding error, which is worth seeing anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFINITION", "TokenCounts", "encode_all", "fertility_counts", "pool_fertility", "token_lengths"]

DEFINITION = (
    "tokens_per_word = tokens / whitespace words; byte_fallback_rate = share of tokens whose decode([id]) "
    "contains U+FFFD (part of a multi-byte character or a byte-fallback token)"
)


@dataclass
class TokenCounts:
    """Per text field, the token count and the partial-character token count of every row."""

    lengths: dict[str, list[int]]
    partial: dict[str, list[int]]


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` inside a transformers fast tokenizer: batch encoding, no length warnings."""
    inner = getattr(tokenizer, "backend_tokenizer", None)
    return inner if inner is not None and hasattr(inner, "encode_batch") else tokenizer


def encode_all(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text without special tokens, from a ``tokenizers.Tokenizer`` or a transformers one."""
    tok = _backend(tokenizer)
    if hasattr(tok, "encode_batch"):
        return [list(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]
    return [list(tok.encode(t, add_special_tokens=False)) for t in texts]


class _PartialIds:
    """Whether a token id decodes to something other than whole characters; each id is decoded once."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = _backend(tokenizer)
        self.cache: dict[int, bool] = {}

    def count(self, ids: Sequence[int]) -> int:
        cache, n = self.cache, 0
        for i in ids:
            hit = cache.get(i)
            if hit is None:
                hit = cache[i] = "\ufffd" in self.tok.decode([i])
            n += hit
        return n


def token_lengths(tokenizer: Any, texts: Sequence[Mapping[str, str]]) -> TokenCounts:
    """Tokenize every field of every row once (batched per field): lengths and partial-character tokens."""
    partial = _PartialIds(tokenizer)
    lengths: dict[str, list[int]] = {}
    partials: dict[str, list[int]] = {}
    for name in dict.fromkeys(k for t in texts for k in t):
        ids = encode_all(tokenizer, [t.get(name, "") for t in texts])
        lengths[name] = [len(x) for x in ids]
        partials[name] = [partial.count(x) for x in ids]
    return TokenCounts(lengths, partials)


def _ratios(raw: Mapping[str, int]) -> dict[str, Any]:
    words, tokens = raw["words"], raw["tokens"]
    return {
        **raw,
        "tokens_per_word": round(tokens / words, 3) if words else None,
        "byte_fallback_rate": round(raw["partial_tokens"] / tokens, 4) if tokens else None,
    }


def fertility_counts(
    tokens: TokenCounts,
    texts: Sequence[Mapping[str, str]],
    languages: Sequence[Sequence[str]],
    parallel: bool,
) -> dict[str, Any]:
    """Words, tokens and partial tokens per language for one split, with the two ratios.

    Every field of a row counts for the row's language, except in parallel rows, where ``source_text``
    counts for the source language and ``target_text`` for the target language.
    """
    raw: dict[str, dict[str, int]] = {}
    for i, fields in enumerate(texts):
        for name, text in fields.items():
            lang = languages[i][1 if parallel and name == "target_text" else 0]
            entry = raw.setdefault(lang, {"rows": 0, "words": 0, "tokens": 0, "partial_tokens": 0})
            entry["words"] += len(text.split())
            entry["tokens"] += tokens.lengths[name][i]
            entry["partial_tokens"] += tokens.partial[name][i]
        for lang in dict.fromkeys(languages[i]):
            raw.setdefault(lang, {"rows": 0, "words": 0, "tokens": 0, "partial_tokens": 0})["rows"] += 1
    ordered = sorted(raw, key=lambda lang: (-raw[lang]["rows"], lang))
    return {"languages": {lang: _ratios(raw[lang]) for lang in ordered}}


def pool_fertility(per_split: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Fertility over all splits: the raw counts summed per language, ratios recomputed from the sums."""
    raw: dict[str, dict[str, int]] = {}
    for split in per_split:
        for lang, entry in split.get("languages", {}).items():
            total = raw.setdefault(lang, {"rows": 0, "words": 0, "tokens": 0, "partial_tokens": 0})
            for key in total:
                total[key] += entry[key]
    ordered = sorted(raw, key=lambda lang: (-raw[lang]["rows"], lang))
    return {"definition": DEFINITION, "languages": {lang: _ratios(raw[lang]) for lang in ordered}}
