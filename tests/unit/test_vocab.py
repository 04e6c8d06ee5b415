"""Vocabulary extension: learned tokens, consistent encoding, mean-initialised rows, training and reloading them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tunesmith.models import vocab

# " ọmọ" is 8 byte-level pieces in the tiny tokenizer, " gaskiya" 6, " wahala" 5, " sannu" 4, " abeg" 2.
CORPUS = ["na ọmọ gaskiya wahala abeg abeg"] * 5 + ["na gaskiya sannu sannu sannu sannu"]
ROUND_TRIP = [
    "na ọmọ gaskiya wahala abeg",
    "wahala\nwahala wahalas gaskiya! gaskiya,ọmọ",
    "  two  spaces ọmọọmọ\t gaskiya ",
    "the fan wants",
    "Gaskiya GASKIYA",
    "",
]


@pytest.fixture(scope="module")
def untied_model_dir(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    from tunesmith.models.tiny import build_tiny_causal_lm

    return build_tiny_causal_lm(
        assets / "tiny-tokenizer", tmp_path_factory.mktemp("tiny-untied"), tie_word_embeddings=False
    )


@pytest.fixture(params=["tied", "untied"])
def model_dir(request: pytest.FixtureRequest, tiny_model_dir: Path, untied_model_dir: Path) -> Path:
    return tiny_model_dir if request.param == "tied" else untied_model_dir


def _load(model_dir: Path) -> tuple[object, object]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)


def _form(tokenizer, word: str) -> str:
    """``word`` as the vocabulary writes it (``Ġgaskiya``)."""
    return tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str(word)[0][0]


def _copy(tokenizer):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())


def test_learned_tokens_are_frequent_long_words_ranked_by_tokens_saved(tiny_model) -> None:
    _, tok = tiny_model
    learned = vocab.learn_tokens(CORPUS, tok, n=10, min_count=5)
    # savings: ọmọ 5 x 7 = 35, gaskiya 6 x 5 = 30, wahala 5 x 4 = 20; sannu is too rare, abeg too short
    assert learned == [_form(tok, w) for w in (" ọmọ", " gaskiya", " wahala")]
    assert vocab.learn_tokens(CORPUS, tok, n=2) == learned[:2]
    assert _form(tok, " sannu") in vocab.learn_tokens(CORPUS, tok, n=10, min_count=4)


def test_extend_round_trips_and_shortens_only_the_new_words(tiny_model_dir: Path) -> None:
    model, tok = _load(tiny_model_dir)
    before = _copy(tok)
    ids = vocab.extend(model, tok, vocab.learn_tokens(CORPUS, tok, n=10))
    assert ids == [400, 401, 402] and len(tok) == 403
    for text in ROUND_TRIP:
        assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    with_words = ROUND_TRIP[0]
    assert len(tok.encode(with_words)) == len(before.encode(with_words).ids) - (7 + 5 + 4)
    assert tok.encode(" wahala gaskiya", add_special_tokens=False) == [402, 401]
    assert tok.encode("the fan wants wahalas") == before.encode("the fan wants wahalas").ids  # no whole new word


def test_new_rows_are_the_mean_of_the_old_pieces(model_dir: Path) -> None:
    model, tok = _load(model_dir)
    emb0 = model.get_input_embeddings().weight.detach().clone()
    head0 = model.get_output_embeddings().weight.detach().clone()
    pieces = [_copy(tok).encode(w, add_special_tokens=False).ids for w in (" ọmọ", " gaskiya", " wahala")]
    ids = vocab.extend(model, tok, vocab.learn_tokens(CORPUS, tok, n=3))
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape[0] == head.shape[0] == 403 and model.config.vocab_size == 403
    for new, old in zip(ids, pieces, strict=True):
        torch.testing.assert_close(emb[new], emb0[old].mean(0))
        torch.testing.assert_close(head[new], head0[old].mean(0))
    torch.testing.assert_close(emb[:400], emb0)
    assert (emb is head) == (model_dir.name.startswith("tiny-llama"))


def test_extend_refuses_what_it_cannot_add(tiny_model) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    model, tok = tiny_model
    with pytest.raises(ValueError, match="already in the vocabulary"):
        vocab.extend(model, tok, [_form(tok, " the")])
    word_level = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(ValueError, match="BPE"):
        vocab.learn_tokens(["a a a"], word_level, n=1)


def test_fertility_change_overall_and_per_language(tiny_model_dir: Path) -> None:
    model, tok = _load(tiny_model_dir)
    before = _copy(tok)
    vocab.extend(model, tok, vocab.learn_tokens(CORPUS, tok, n=10))
    change = vocab.fertility_change(CORPUS, before, tok, ["hau"] * 5 + ["yor"])
    assert change["words"] == 36 and change["tokens_after"] < change["tokens_before"]
    assert change["tokens_per_word_after"] < change["tokens_per_word_before"]
    assert change["reduction_pct"] == round(100 * (1 - change["tokens_after"] / change["tokens_before"]), 2)
    assert set(change["languages"]) == {"hau", "yor"}
    assert change["languages"]["hau"]["reduction_pct"] > change["languages"]["yor"]["reduction_pct"] > 0
    assert vocab.fertility_change([], before, tok)["reduction_pct"] is None


def _one_lora_step(model_dir: Path, method: str = "lora"):
    """Extend, wrap with LoRA training the new rows, take one optimizer step; the weights before, too."""
    from tunesmith.adapters import get_method
    from tunesmith.config.schema import DoraMethod, LoraMethod
    from tunesmith.data.format import tokenize_example
    from tunesmith.train.batching import collate
    from tunesmith.train.sft.loss import CausalLMLoss

    model, tok = _load(model_dir)
    ids = vocab.extend(model, tok, vocab.learn_tokens(CORPUS, tok, n=3))
    before = {
        "emb": model.get_input_embeddings().weight.detach().clone(),
        "head": model.get_output_embeddings().weight.detach().clone(),
    }
    config = (DoraMethod if method == "dora" else LoraMethod)(r=4, alpha=8)
    torch.manual_seed(0)
    tuned = get_method(method).apply(model, config, trainable_token_indices=vocab.trainable_token_targets(model, ids))
    batch = collate([tokenize_example({"text": t}, tok, "all") for t in CORPUS], tok.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = CausalLMLoss(tuned)(batch)
    loss.backward()
    optimizer.step()
    return tuned.eval(), tok, ids, before, batch


@pytest.mark.parametrize("method", ["lora", "dora"])
def test_a_lora_step_trains_the_new_rows_and_leaves_the_old_ones(model_dir: Path, method: str) -> None:
    tuned, _, ids, before, _ = _one_lora_step(model_dir, method)
    merged = tuned.merge_and_unload()
    emb, head = merged.get_input_embeddings().weight, merged.get_output_embeddings().weight
    torch.testing.assert_close(emb[:400], before["emb"][:400], rtol=0, atol=0)
    torch.testing.assert_close(head[:400], before["head"][:400], rtol=0, atol=0)
    for rows, start in ((emb, before["emb"]), (head, before["head"])):
        assert all(not torch.equal(rows[i], start[i]) for i in ids)


def test_saved_adapter_loads_back_with_the_same_logits(model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from tunesmith.adapters import for_inference, lora

    tuned, tok, _, _, batch = _one_lora_step(model_dir)
    with torch.no_grad():
        expected = tuned(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    lora.save(tuned, tmp_path)
    tok.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert not any(k.endswith(("embed_tokens.weight", "lm_head.weight")) for k in saved)  # the new rows only
    assert any("trainable_tokens_delta" in k for k in saved)

    base = AutoModelForCausalLM.from_pretrained(model_dir)
    saved_tok = vocab.resize_to_saved(base, tmp_path)
    assert len(saved_tok) == 403 and base.get_input_embeddings().weight.shape[0] == 403
    assert saved_tok.encode(CORPUS[0]) == tok.encode(CORPUS[0])
    loaded = for_inference(lora.load(base, tmp_path))
    with torch.no_grad():
        got = loaded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_config_allows_new_tokens_only_where_new_rows_can_train() -> None:
    from tunesmith.config.load import validate_config
    from tunesmith.errors import ConfigError

    def config(**sections: dict) -> object:
        return validate_config({"name": "x", "data": {"train": "t.tsv"}, "model": {"new_tokens": 20}, **sections})

    for name in ("lora", "dora", "full"):
        assert config(method={"name": name}).model.new_tokens == 20
    with pytest.raises(ConfigError, match="method lora, dora, full .*method ia3"):
        config(method={"name": "ia3"})
    with pytest.raises(ConfigError, match="objective classify"):
        config(train={"objective": "classify"})
