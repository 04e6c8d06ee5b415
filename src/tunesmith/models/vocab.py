"""Vocabulary extension: whole-word tokens learned from the training corpus, added to a BPE tokenizer.

A base tokenizer trained mostly on English spends three or more tokens on many Hausa or Yorùbá words (and
splits ``ọ``, ``ẹ`` into bytes). Giving the most frequent of those words a token of their own shortens every
training row, leaves more of the context for text, and gives the model one symbol per word to learn. On
AfriSenti dev tweets, 500 tokens learned from the train tweets make SmolLM2's encoding 14% shorter for Hausa
and 21% for Yorùbá (``bench/vocab_extension.py``).

How the tokens are added. Each new token is one *pre-token* of the tokenizer (``Ġsannu``: the word with
its leading space, in the byte-level alphabet), put into the BPE model's own vocabulary, and the BPE model
is switched to ``ignore_merges`` (a pre-token found in the vocabulary is emitted whole, as Llama 3's
tokenizer already does). The alternative, ``tokenizer.add_tokens(AddedToken("sannu", single_word=True))``,
matches before pre-tokenization, so in a byte-level tokenizer the space in front stays a token of its own
(`` sannu`` costs ``Ġ`` + ``sannu``: two tokens, not one), and ``lstrip=True`` drops that space on
decoding; both were checked on the tiny tokenizer. Inside the BPE model, ``decode(encode(text))`` stays
exact: a new token is only ever another way to write the same bytes.

``ignore_merges`` would also change the tokenization of any old vocabulary entry that the merges do not
reproduce; :func:`extend` refuses such tokenizers (SmolLM2 has none outside its special tokens).

Each new embedding row starts as the mean of the rows of its old sub-tokens, so the model first reads
``Ġsannu`` roughly as it read the pieces it replaces (Hewitt 2021, "Initializing new word embeddings for
pretrained language models"; Gee et al. 2022, "Fast vocabulary transfer"); an untied LM head gets the same.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["MIN_PIECES", "extend", "fertility_change", "learn_tokens", "resize_to_saved", "trainable_token_targets"]

MIN_PIECES = 3
"""A word becomes a candidate only when the current tokenizer splits it into at least this many tokens:
a two-piece word saves one token per use, which rarely pays for a new row trained from scratch."""


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` of a transformers fast tokenizer (or the object itself when it is one)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "to_str"):
        raise ValueError("vocabulary extension needs a fast tokenizer (one backed by a tokenizer.json)")
    return backend


def _bpe_backend(tokenizer: Any) -> Any:
    """The backend, after checking it is a BPE model with a pre-tokenizer (new tokens are whole pre-tokens)."""
    backend = _backend(tokenizer)
    kind = json.loads(backend.to_str())["model"]["type"]
    if kind != "BPE" or backend.pre_tokenizer is None:
        what = f"a {kind} model" if kind != "BPE" else "no pre-tokenizer"
        raise ValueError(
            f"vocabulary extension works on BPE tokenizers that split text into words first (GPT-2, SmolLM2, "
            f"Llama 3, Qwen); this tokenizer has {what}"
        )
    return backend


def _pretokens(backend: Any, texts: Iterable[str]) -> Iterable[str]:
    """Every pre-token of ``texts``, in the model's alphabet (``Ġword`` for byte-level BPE)."""
    normalizer, pre = backend.normalizer, backend.pre_tokenizer
    for text in texts:
        normalized = normalizer.normalize_str(text) if normalizer is not None else text
        for piece, _ in pre.pre_tokenize_str(normalized):
            yield piece


def learn_tokens(texts: Iterable[str], tokenizer: Any, n: int, min_count: int = 5) -> list[str]:
    """The ``n`` words of ``texts`` whose own token would save the most tokens, in vocabulary form.

    Words are the tokenizer's own pre-tokens (counted with the ``tokenizers`` library), so each candidate is
    exactly the unit the BPE model sees. A candidate occurs at least ``min_count`` times, is not in the
    vocabulary, and splits into at least :data:`MIN_PIECES` tokens today; candidates are ranked by tokens
    saved on ``texts``, ``count * (pieces - 1)`` (ties by the token itself, so the result is deterministic).
    """
    backend = _bpe_backend(tokenizer)
    vocab = backend.get_vocab(with_added_tokens=True)
    scored = []
    for piece, count in Counter(_pretokens(backend, texts)).items():
        if count < min_count or piece in vocab:
            continue
        pieces = len(backend.model.tokenize(piece))
        if pieces >= MIN_PIECES:
            scored.append((count * (pieces - 1), piece))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [piece for _, piece in scored[:n]]


def _unreproduced(spec: dict[str, Any], backend: Any) -> list[str]:
    """Old vocabulary entries (not added tokens) that the merges do not produce from their own bytes."""
    added = {a["content"] for a in spec["added_tokens"]}
    model = backend.model
    return [t for t in spec["model"]["vocab"] if t not in added and [x.value for x in model.tokenize(t)] != [t]]


def _next_id(tokenizer: Any) -> int:
    """One past the highest id the tokenizer uses (added tokens included)."""
    return int(max(_backend(tokenizer).get_vocab(with_added_tokens=True).values())) + 1


def _mean_rows(weight: torch.Tensor, new_ids: Sequence[int], old_ids: Sequence[Sequence[int]]) -> None:
    """Set ``weight[new]`` to the mean of ``weight[old pieces]`` for each new token, in place."""
    with torch.no_grad():
        for new, old in zip(new_ids, old_ids, strict=True):
            weight[new] = weight[list(old)].float().mean(0).to(weight.dtype)


def extend(model: Any, tokenizer: Any, tokens: Sequence[str]) -> list[int]:
    """Add ``tokens`` (vocabulary form, as :func:`learn_tokens` gives them) to ``tokenizer`` and ``model``.

    Both change in place. The embedding matrix grows to hold the new ids (never shrinks: a matrix padded
    beyond the tokenizer keeps its size), and each new row of the input embedding, and of the LM head when
    it is not tied to it, becomes the mean of the rows of the token's old sub-tokens. Returns the new ids.
    """
    backend = _bpe_backend(tokenizer)
    spec = json.loads(backend.to_str())
    vocab = spec["model"]["vocab"]
    known = [t for t in tokens if t in vocab]
    if known or len(set(tokens)) != len(tokens):
        raise ValueError(f"tokens already in the vocabulary or repeated: {known or list(tokens)}")
    if not spec["model"].get("ignore_merges"):
        changed = _unreproduced(spec, backend)
        if changed:
            raise ValueError(
                f"this tokenizer's merges do not reproduce {len(changed)} of its own tokens ({changed[:5]}); "
                "adding whole-word tokens (ignore_merges) would change how it splits them"
            )
    old_ids = [[x.id for x in backend.model.tokenize(t)] for t in tokens]
    start = _next_id(tokenizer)
    ids = list(range(start, start + len(tokens)))
    vocab.update(zip(tokens, ids, strict=True))
    spec["model"]["ignore_merges"] = True
    from tokenizers import Tokenizer

    tokenizer._tokenizer = Tokenizer.from_str(json.dumps(spec))
    rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(rows, start + len(tokens)), mean_resizing=False)
    embedding = model.get_input_embeddings().weight
    _mean_rows(embedding, ids, old_ids)
    head = model.get_output_embeddings()
    if head is not None and head.weight is not embedding:
        _mean_rows(head.weight, ids, old_ids)
    return ids


def trainable_token_targets(model: Any, ids: list[int]) -> list[int] | dict[str, list[int]]:
    """PEFT's ``trainable_token_indices`` for training the rows ``ids`` alongside LoRA.

    With tied embeddings PEFT trains the input rows and has the tied LM head follow them, so the plain list
    is right. An untied head has rows of its own for the new tokens (mean-initialised too); naming both
    modules trains both, where a list would leave the head's new rows at their initial mean.
    """
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or head.weight is embedding.weight:
        return list(ids)
    names = {module: name for name, module in model.named_modules()}
    return {names[embedding]: list(ids), names[head]: list(ids)}


def resize_to_saved(model: Any, trained_dir: Path) -> Any:
    """Grow ``model``'s embeddings to the extended tokenizer saved with a tuned model; returns that tokenizer.

    An adapter trained with new tokens holds only their rows; PEFT writes them into a base whose matrix
    already has room, so the base must be resized the way training resized it before the adapter loads.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(trained_dir)
    rows = model.get_input_embeddings().weight.shape[0]
    needed = _next_id(tokenizer)
    if needed > rows:
        model.resize_token_embeddings(needed, mean_resizing=False)
    return tokenizer


_NOTHING = {"words": 0, "tokens": 0, "tokens_per_word": None, "byte_fallback_rate": None}


def _change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    tokens_before, tokens_after = before["tokens"], after["tokens"]
    return {
        "words": before["words"],
        "tokens_before": tokens_before,
        "tokens_after": tokens_after,
        "tokens_per_word_before": before["tokens_per_word"],
        "tokens_per_word_after": after["tokens_per_word"],
        "byte_fallback_before": before["byte_fallback_rate"],
        "byte_fallback_after": after["byte_fallback_rate"],
        "reduction_pct": round(100 * (tokens_before - tokens_after) / tokens_before, 2) if tokens_before else None,
    }


def fertility_change(
    texts: Sequence[str], tokenizer_before: Any, tokenizer_after: Any, languages: Sequence[str] | None = None
) -> dict[str, Any]:
    """Tokens per word (and byte-fallback rate) of ``texts`` under both tokenizers, and the token reduction.

    Measured with :mod:`tunesmith.data.fertility`, the same definitions as the data card. With
    ``languages`` (one per text), the same numbers per language go under ``"languages"``.
    """
    from tunesmith.data.fertility import fertility_counts, token_lengths

    if not texts:
        return _change(_NOTHING, _NOTHING)
    fields = [{"text": t} for t in texts]
    counts = [token_lengths(tok, fields) for tok in (tokenizer_before, tokenizer_after)]

    def per(groups: list[list[str]]) -> dict[str, dict[str, Any]]:
        before, after = (fertility_counts(c, fields, groups, parallel=False)["languages"] for c in counts)
        return {lang: _change(before[lang], after[lang]) for lang in before}

    overall = per([["all"]] * len(texts))["all"]
    if languages is None:
        return overall
    return {**overall, "languages": per([[lang or "unknown"] for lang in languages])}
