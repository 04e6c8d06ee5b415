"""The tokenizer half of a GGUF file: a byte-level BPE vocabulary under llama.cpp's ``tokenizer.ggml.*`` keys.

llama.cpp's ``gpt2`` tokenizer model re-implements Hugging Face's byte-level BPE: it needs the tokens as
the HF vocabulary spells them (``Ġthe``), their types (normal, or control for special added tokens such as
``<|im_end|>``, which are then matched whole), the merges in rank order, and a *pre-tokenizer name* that
selects the regex splitting text into words before merging. ``convert_hf_to_gguf.py`` recognises the
pre-tokenizer by hashing the token ids of a test string, which only knows published vocabularies; here it
is read from the structure of ``tokenizer.json``, so a vocabulary trained from scratch converts too.

Stop tokens: ``eos`` is the first EOS id of ``generation_config.json`` (the ids ``generate`` stops on),
and when the chat template closes a turn with another token (``<|eot_id|>``, ``<|im_end|>`` under an
``<|endoftext|>`` EOS) that token is written as ``tokenizer.ggml.eot_token_id``; llama.cpp stops on both.
SentencePiece vocabularies (llama.cpp's ``llama`` model: Llama 2, Mistral v0.1) are refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf

from tunesmith.errors import ExportError

# The Llama 3 and Qwen2 ``Split`` pre-tokenizer regexes (as tokenizer.json spells them): they differ in digits.
_SPLIT_HEAD = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_SPLIT_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPLIT_REGEXES = {_SPLIT_HEAD + r"\p{N}{1,3}" + _SPLIT_TAIL: "llama-bpe", _SPLIT_HEAD + r"\p{N}" + _SPLIT_TAIL: "qwen2"}
SPECIAL_KINDS = ("bos", "eos", "unk", "pad")


def add_tokenizer(writer: gguf.GGUFWriter, hf_dir: Path, config: dict[str, Any]) -> int:
    """Write the tokenizer, its special ids and chat template of ``hf_dir``; returns the vocabulary size.

    Raises:
        ExportError: no ``tokenizer.json``, a tokenizer that is not byte-level BPE, or a pre-tokenizer
            llama.cpp has no counterpart for.
    """
    from transformers import AutoTokenizer

    spec = _tokenizer_json(hf_dir)
    pre = pre_tokenizer_name(spec.get("pre_tokenizer"))
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    vocab_size = int(config.get("vocab_size") or len(tokenizer))
    tokens, types = vocab_tokens(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    merges = gguf.SpecialVocab(hf_dir, load_merges=True, special_token_types=()).merges
    if not merges:
        raise ExportError(f"{hf_dir}/tokenizer.json lists no BPE merges; llama.cpp could not tokenize with it.")
    writer.add_token_merges(merges)
    for kind, token_id in special_ids(tokenizer, hf_dir, config, vocab_size).items():
        getattr(writer, f"add_{kind}_token_id")(token_id)
    add_bos, add_eos = adds_special_tokens(tokenizer)
    writer.add_add_bos_token(add_bos)
    if add_eos:
        writer.add_add_eos_token(True)
    tokenizer_config = hf_dir / "tokenizer_config.json"
    if tokenizer_config.is_file():
        settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        if "add_prefix_space" in settings:  # as llama.cpp's Llama converter does
            writer.add_add_space_prefix(bool(settings["add_prefix_space"]))
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: llama.cpp's list form
        writer.add_chat_template([{"name": name, "template": text} for name, text in template.items()])
    elif template:
        writer.add_chat_template(template)
    return vocab_size


def _tokenizer_json(hf_dir: Path) -> dict[str, Any]:
    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        raise ExportError(
            f"{hf_dir}: no tokenizer.json. GGUF export handles byte-level BPE tokenizers (GPT-2 style, as in "
            "SmolLM2, Llama 3, Qwen2); SentencePiece tokenizers (tokenizer.model) are not supported yet."
        )
    spec = dict(json.loads(path.read_text(encoding="utf-8")))
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        kind = "SentencePiece-style BPE (byte fallback)" if model.get("byte_fallback") else model.get("type")
        raise ExportError(
            f"{path}: a {kind} tokenizer; GGUF export handles byte-level BPE tokenizers only (GPT-2 style, as in "
            "SmolLM2, Llama 3, Qwen2). Export with --to hf and use llama.cpp's convert_hf_to_gguf.py."
        )
    return spec


def pre_tokenizer_name(pre: dict[str, Any] | None) -> str:
    """llama.cpp's name (``tokenizer.ggml.pre``) for the ``pre_tokenizer`` section of a tokenizer.json.

    ``gpt-2`` (so spelled: llama.cpp refuses ``gpt2`` here, although the tokenizer *model* is ``gpt2``): plain
    byte-level splitting. ``smollm``: single digits first (SmolLM, StarCoder).
    ``llama-bpe``/``qwen2``: the Llama 3 and Qwen2 split regexes.
    """
    parts = list(pre.get("pretokenizers") or []) if pre and pre.get("type") == "Sequence" else [pre] if pre else []
    kinds = [part.get("type") for part in parts]
    if kinds and kinds[-1] == "ByteLevel" and not parts[-1].get("add_prefix_space", False):
        byte_regex = parts[-1].get("use_regex", True)
        if kinds == ["ByteLevel"] and byte_regex:
            return "gpt-2"
        if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and byte_regex:
            return "smollm"
        if kinds == ["Split", "ByteLevel"] and not byte_regex:
            regex = (parts[0].get("pattern") or {}).get("Regex")
            if regex in SPLIT_REGEXES:
                return SPLIT_REGEXES[regex]
    raise ExportError(
        f"GGUF export does not know llama.cpp's counterpart of this pre-tokenizer ({' + '.join(map(str, kinds))}); "
        "known: ByteLevel (gpt-2), Digits + ByteLevel (smollm), the Llama 3 and Qwen2 split regexes."
    )


def _looks_special(token: str) -> bool:
    """Added tokens some models forget to mark special (llama.cpp's ``does_token_look_special``)."""
    return (
        token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
        or (token.startswith("<|") and token.endswith("|>"))
        or (token.startswith("<｜") and token.endswith("｜>"))
        or (token.startswith("<unused") and token.endswith(">"))
    )


def vocab_tokens(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    """The token strings by id and their ``gguf.TokenType`` (``vocab_size`` long, gaps as ``[PAD<id>]``)."""
    reverse = {index: token for token, index in tokenizer.get_vocab().items()}
    if max(reverse) >= vocab_size:
        raise ExportError(f"the tokenizer has ids up to {max(reverse)}, beyond the model's vocab_size {vocab_size}.")
    added = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    for index in range(vocab_size):
        if index not in reverse:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        token = reverse[index]
        if index in added:
            if not added[index].normalized:  # llama.cpp assumes added tokens are stored normalised
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            special = added[index].special or _looks_special(token)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    return tokens, types


def _generation_eos(hf_dir: Path) -> list[int]:
    path = hf_dir / "generation_config.json"
    if not path.is_file():
        return []
    eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
    return [int(i) for i in (eos if isinstance(eos, list) else [eos]) if i is not None]


def special_ids(tokenizer: Any, hf_dir: Path, config: dict[str, Any], vocab_size: int) -> dict[str, int]:
    """``{kind: id}`` for bos/eos/unk/pad and, when the chat template ends turns with another token, eot.

    The tokenizer's ids come first, then config.json's (as ``gguf.SpecialVocab`` does); eos is overridden
    by the first EOS of the generation config.
    """
    from tunesmith.eval.generate import end_of_turn

    ids = {kind: getattr(tokenizer, f"{kind}_token_id", None) for kind in SPECIAL_KINDS}
    for kind in SPECIAL_KINDS:
        if ids[kind] is None:
            ids[kind] = config.get(f"{kind}_token_id")
    generation_eos = _generation_eos(hf_dir)
    if generation_eos:
        ids["eos"] = generation_eos[0]
    turn_id, _ = end_of_turn(tokenizer)
    if turn_id is None and tokenizer.eos_token_id in generation_eos[1:]:
        turn_id = tokenizer.eos_token_id
    if turn_id is not None and turn_id != ids["eos"]:
        ids["eot"] = turn_id
    return {kind: int(i) for kind, i in ids.items() if isinstance(i, int) and 0 <= i < vocab_size}


def adds_special_tokens(tokenizer: Any) -> tuple[bool, bool]:
    """Whether the tokenizer puts BOS before, and EOS after, the text it encodes."""
    with_special = list(tokenizer("a")["input_ids"])
    plain = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    extra = len(with_special) > len(plain)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return (
        extra and bos is not None and with_special[0] == bos,
        extra and eos is not None and with_special[-1] == eos,
    )
