"""The real embedded models load offline from their PyPI packages and run a forward pass."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.embedded


def test_smollm2_gguf_loads_offline_and_predicts(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from tunesmith.models.load import load_model

    model, tok = load_model("smollm2-135m-instruct")
    assert model.config.vocab_size == 49152 and model.config.num_hidden_layers == 30
    assert not hasattr(model.config, "quantization_config")
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])


def test_minilm_encoder_loads_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    from tunesmith.models.load import resolve

    source = resolve("all-minilm-l6-v2")
    assert source.kind == "encoder"
    tok = AutoTokenizer.from_pretrained(source.directory)
    model = AutoModel.from_pretrained(source.directory).eval()
    batch = tok(["na so e be", "the weather is lovely"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[-1] == 384 and torch.isfinite(hidden).all()
