"""GGUF export of the tiny Llama: what transformers' GGUF loader reads back must match the original model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunesmith.errors import ExportError
from tunesmith.export.gguf import architecture, write_gguf
from tunesmith.export.gguf_vocab import pre_tokenizer_name

TEXTS = ["hello world", "<|im_start|>user\nẸ kú àárọ̀<|im_end|>\n", "Wetin dey happen 333?  \n\t x<|endoftext|>"]
CHATS = [
    [{"role": "user", "content": "Hello, how are you?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Ẹ kú àárọ̀"}],
    [{"role": "user", "content": "What is 2 + 2?"}],
]


@pytest.fixture(scope="module")
def exported(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gguf")
    return {quant: write_gguf(tiny_model_dir, out / f"tiny.{quant}.gguf", quant) for quant in ("f16", "q8_0")}


@pytest.fixture(scope="module")
def original(tiny_model_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


def _load(info: dict[str, Any]) -> tuple[Any, Any]:
    path = Path(info["path"])
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def _prompt_ids(tokenizer: Any, chat: list[dict[str, str]]) -> torch.Tensor:
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


def _fields(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    reader = gguf.GGUFReader(path)
    values = {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    return values, {t.name: t.tensor_type.name for t in reader.tensors}


def test_gguf_tokenizer_encodes_like_the_original(exported: dict, original: tuple) -> None:
    _, tokenizer = original
    _, loaded = _load(exported["f16"])
    for text in TEXTS:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"], text
    assert loaded.eos_token == "<|im_end|>" and loaded.eos_token_id == tokenizer.eos_token_id == 2


def test_f16_generates_like_the_original(exported: dict, original: tuple) -> None:
    model, tokenizer = original
    loaded, _ = _load(exported["f16"])
    assert loaded.config.tie_word_embeddings and loaded.generation_config.eos_token_id == 2
    for chat in CHATS:
        ids = _prompt_ids(tokenizer, chat)
        with torch.no_grad():
            want, got = model(ids).logits, loaded(ids).logits
            assert (want - got).abs().max() < 0.01 * want.abs().max()
            greedy = {"max_new_tokens": 10, "do_sample": False, "pad_token_id": 0}
            assert torch.equal(model.generate(ids, **greedy), loaded.generate(ids, **greedy))


@pytest.mark.parametrize(("quant", "tolerance"), [("f32", 1e-5), ("bf16", 0.05)])
def test_f32_is_exact_and_bf16_close(
    quant: str, tolerance: float, original: tuple, tiny_model_dir: Path, tmp_path: Path
) -> None:
    model, tokenizer = original
    loaded, _ = _load(write_gguf(tiny_model_dir, tmp_path / f"tiny.{quant}.gguf", quant))
    ids = _prompt_ids(tokenizer, CHATS[1])
    with torch.no_grad():
        want, got = model(ids).logits, loaded(ids).logits
    assert (want - got).abs().max() <= tolerance * want.abs().max()


def test_q8_0_is_the_original_with_q8_0_rounded_weights(exported: dict, original: tuple, tiny_model_dir: Path) -> None:
    """Rows are quantised independently, so rounding the HF weights equals rounding llama.cpp's permuted rows."""
    model, tokenizer = original
    loaded, _ = _load(exported["q8_0"])
    rounded = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        for param in rounded.parameters():
            if param.ndim == 2:
                q8 = gguf.quants.quantize(param.numpy(), gguf.GGMLQuantizationType.Q8_0)
                param.copy_(torch.from_numpy(gguf.quants.dequantize(q8, gguf.GGMLQuantizationType.Q8_0)))
        for chat in CHATS:
            ids = _prompt_ids(tokenizer, chat)
            want, got = model(ids).logits, loaded(ids).logits
            assert (rounded(ids).logits - got).abs().max() < 1e-4
            assert (want - got).abs().max() < 0.2 * want.abs().max()


def test_metadata_matches_llama_cpp_conventions(exported: dict, tiny_model_dir: Path) -> None:
    values, tensors = _fields(exported["q8_0"]["path"])
    expected = {
        "general.architecture": "llama",
        "general.type": "model",
        "general.file_type": gguf.LlamaFileType.MOSTLY_Q8_0,
        "llama.block_count": 2,
        "llama.context_length": 512,
        "llama.embedding_length": 32,
        "llama.feed_forward_length": 64,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2,
        "llama.rope.dimension_count": 8,
        "llama.vocab_size": 400,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt-2",  # llama.cpp's spelling; it refuses "gpt2" as a pre-tokenizer
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.padding_token_id": 0,
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": (tiny_model_dir / "chat_template.jinja").read_text(encoding="utf-8"),
    }
    assert {key: values.get(key) for key in expected} == expected
    assert values["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert "tokenizer.ggml.bos_token_id" not in values and "tokenizer.ggml.eot_token_id" not in values
    assert len(values["tokenizer.ggml.tokens"]) == 400 and values["tokenizer.ggml.token_type"][:3] == [3, 3, 3]
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd.weight
    assert tensors["token_embd.weight"] == tensors["blk.0.attn_q.weight"] == "Q8_0"
    assert tensors["blk.0.attn_norm.weight"] == tensors["output_norm.weight"] == "F32"
    assert exported["q8_0"]["bytes"] < exported["f16"]["bytes"] and exported["q8_0"]["tensors"] == len(tensors)


def test_generation_config_eos_comes_first_and_end_of_turn_becomes_eot(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "generation_config.json").write_text(json.dumps({"eos_token_id": [0, 2]}), encoding="utf-8")
    values, _ = _fields(write_gguf(model_dir, tmp_path / "m.gguf", "f32")["path"])
    assert values["tokenizer.ggml.eos_token_id"] == 0  # <|endoftext|>
    assert values["tokenizer.ggml.eot_token_id"] == 2  # <|im_end|>, which closes each turn of the template
    assert values["general.file_type"] == gguf.LlamaFileType.ALL_F32


def _tiny_variant(kind: str, tokenizer_dir: Path, out: Path) -> Path:
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config_class, model_class = {
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM),
    }[kind]
    settings = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = config_class(
        **settings, num_key_value_heads=2, vocab_size=len(tokenizer), tie_word_embeddings=True, initializer_range=0.25
    )
    torch.manual_seed(0)
    model_class(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.parametrize(("kind", "arch"), [("qwen2", "qwen2"), ("mistral", "llama")])
def test_other_supported_architectures_round_trip(kind: str, arch: str, assets: Path, tmp_path: Path) -> None:
    model_dir = _tiny_variant(kind, assets / "tiny-tokenizer", tmp_path / f"tiny-{kind}")
    info = write_gguf(model_dir, tmp_path / f"{kind}.gguf", "f16")
    assert info["architecture"] == arch
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=f"{kind}.gguf", dtype=torch.float32).eval()
    ids = torch.tensor([[1, 40, 50, 60, 70, 2]])
    with torch.no_grad():
        want, got = model(ids).logits, loaded(ids).logits
    assert (want - got).abs().max() < 0.01 * want.abs().max()


def test_other_architectures_are_refused_by_name(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="BertModel.*LlamaForCausalLM"):
        write_gguf(tiny_encoder_dir, tmp_path / "bert.gguf")
    with pytest.raises(ExportError, match="GPT2LMHeadModel"):
        architecture({"architectures": ["GPT2LMHeadModel"]})
    assert not list(tmp_path.iterdir())


def test_sentencepiece_and_unknown_quant_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    with pytest.raises(ExportError, match="SentencePiece"):
        write_gguf(tmp_path, tmp_path / "m.gguf")
    with pytest.raises(ExportError, match="q4_k.*f16"):
        write_gguf(tiny_model_dir, tmp_path / "m.gguf", "q4_k")


def test_a_failed_write_leaves_no_file(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, **_: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", broken)
    with pytest.raises(OSError, match="disk full"):
        write_gguf(tiny_model_dir, tmp_path / "m.gguf")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("pre", "name"),
    [
        ({"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}, "gpt-2"),
        (
            {
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": True}, {"type": "ByteLevel"}],
            },
            "smollm",
        ),
    ],
)
def test_pre_tokenizer_names(pre: dict, name: str) -> None:
    assert pre_tokenizer_name(pre) == name


def test_unknown_pre_tokenizer_is_refused() -> None:
    with pytest.raises(ExportError, match="Whitespace"):
        pre_tokenizer_name({"type": "Whitespace"})
    with pytest.raises(ExportError):
        pre_tokenizer_name({"type": "ByteLevel", "add_prefix_space": True})


def test_permute_moves_rotary_halves_to_pairs() -> None:
    from tunesmith.export.gguf import permute

    rows = np.arange(8.0)[:, None]  # one head of 8: halves (0 1 2 3 | 4 5 6 7) -> pairs (0 4 1 5 2 6 3 7)
    assert permute(rows, 1)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
