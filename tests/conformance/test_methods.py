"""The conformance battery: every tuning method, on tiny models, passes the same checks.

1. after one optimizer step only the method's parameters changed; every other weight is bit-identical;
2. the planner's trainable-parameter count (computed without applying the method) matches the real one;
3. save -> load into a fresh base gives identical outputs;
4. merged output equals unmerged output (methods whose update merges into the weights);
5. with the adapter disabled the model equals its base (adapter methods);
6. tunesmith's decoder-then-head path (what the losses and scorers run) equals PEFT's own forward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import TypeAdapter

from tunesmith.adapters import for_inference, get_method
from tunesmith.adapters.plan import trainable_parameters
from tunesmith.config.schema import MethodConfig
from tunesmith.models.load import load_classifier, load_model

METHODS: dict[str, dict[str, Any]] = {
    "lora": {"name": "lora", "r": 4, "alpha": 8},
    "lora-rslora-loraplus-top1": {
        "name": "lora",
        "r": 4,
        "alpha": 8,
        "rslora": True,
        "loraplus_ratio": 16,
        "last_n_layers": 1,
    },
    "lora-qv": {"name": "lora", "r": 2, "targets": ["q_proj", "v_proj", "query", "value"]},
    "dora": {"name": "dora", "r": 4, "alpha": 8},
    "qlora-nf4": {"name": "qlora", "r": 4, "alpha": 8, "bits": 4},
    "qlora-int8": {"name": "qlora", "r": 4, "alpha": 8, "bits": 8},
    "ia3": {"name": "ia3"},
    "prompt": {"name": "prompt", "virtual_tokens": 4},
    "prompt-text-init": {"name": "prompt", "virtual_tokens": 4, "init_text": "classify the tweet"},
    "prefix": {"name": "prefix", "virtual_tokens": 4},
    "prefix-projection": {"name": "prefix", "virtual_tokens": 4, "projection": True, "projection_hidden": 16},
    "ptuning-mlp": {"name": "ptuning", "virtual_tokens": 4, "encoder_hidden": 16},
    "ptuning-lstm": {"name": "ptuning", "virtual_tokens": 4, "encoder": "lstm", "encoder_hidden": 16},
    "adapters-houlsby": {"name": "adapters", "size": 8},
    "adapters-pfeiffer": {"name": "adapters", "placement": "pfeiffer", "size": 8, "activation": "gelu"},
    "freeze": {"name": "freeze", "last_n_layers": 1},
    "freeze-head": {"name": "freeze", "last_n_layers": 1, "train_head": True},
    "freeze-named-modules": {"name": "freeze", "last_n_layers": 0, "modules": ["layers.0.mlp"]},
    "full": {"name": "full"},
}
MERGEABLE = {"lora", "dora", "ia3"}
ADAPTERS = {"lora", "dora", "ia3", "qlora", "prompt", "prefix", "ptuning", "adapters"}
KINDS = ["causal", "classifier"]


def _config(key: str) -> Any:
    return TypeAdapter(MethodConfig).validate_python(METHODS[key])


def _load(kind: str, causal_dir: Path, encoder_dir: Path) -> tuple[Any, Any]:
    torch.manual_seed(0)
    if kind == "causal":
        model, tok = load_model(str(causal_dir))
    else:
        model, tok = load_classifier(str(encoder_dir), ["negative", "neutral", "positive"])
    return model, tok


def _inputs(tok: Any, device: torch.device) -> dict[str, torch.Tensor]:
    enc = tok(["how far, my guy", "this food sweet well well", "wahala"], return_tensors="pt", padding=True)
    return {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}


def _logits(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits.float()


def _perturb(model: Any) -> None:
    """Adapters start as the identity (LoRA's B = 0, IA3's vectors = 1); move them so the checks bite."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=list(METHODS))
def method_key(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def pair(kind: str, method_key: str, tiny_model_64_dir: Path, tiny_encoder_64_dir: Path):
    """(base loader, tuned model, tokenizer, method module, config) for one (method, model kind)."""
    config = _config(method_key)
    if kind == "classifier" and method_key == "freeze-named-modules":  # BERT names its blocks differently
        config = config.model_copy(update={"modules": ["layer.0.output"]})
    if kind == "classifier" and config.name == "freeze" and config.train_head:
        pytest.skip("train_head is the LM head of a causal LM")
    if kind == "classifier" and config.name == "prefix":
        pytest.skip("prefix trains causal LMs only (test_prefix_on_a_classifier_says_what_to_use)")

    def load() -> tuple[Any, Any]:
        return _load(kind, tiny_model_64_dir, tiny_encoder_64_dir)

    model, tok = load()
    expected = trainable_parameters(model, config)
    method = get_method(config.name)
    tuned = method.apply(model, config)
    return load, tuned, tok, method, config, expected


def test_one_step_changes_only_the_methods_parameters(pair) -> None:
    _, model, tok, _, _, _ = pair
    device = next(model.parameters()).device
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.5)
    model.train()
    out = model(**_inputs(tok, device))
    out.logits.float().pow(2).mean().backward()
    optimizer.step()
    changed = 0
    for n, p in model.named_parameters():
        if p.requires_grad:
            changed += int(not torch.equal(p, before[n]))
        else:
            assert torch.equal(p, before[n]), f"frozen {n} changed"
    assert changed > 0


def test_planner_counts_the_trainable_parameters(pair) -> None:
    _, model, _, _, _, expected = pair
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


def test_save_and_load_round_trip(pair, tmp_path: Path) -> None:
    load, model, tok, method, _, _ = pair
    _perturb(model)
    device = next(model.parameters()).device
    inputs = _inputs(tok, device)
    expected = _logits(model, inputs)
    method.save(model, tmp_path)
    base, _ = load()
    loaded = method.load(base, tmp_path)
    torch.testing.assert_close(_logits(loaded.to(device), inputs), expected, rtol=1e-5, atol=1e-5)


def test_merged_equals_unmerged(pair) -> None:
    _, model, tok, _, config, _ = pair
    if config.name not in MERGEABLE:
        pytest.skip(f"{config.name} does not merge into the weights")
    _perturb(model)
    inputs = _inputs(tok, next(model.parameters()).device)
    unmerged = _logits(model, inputs)
    merged = for_inference(model)
    assert not hasattr(merged, "merge_and_unload")
    torch.testing.assert_close(_logits(merged, inputs), unmerged, rtol=1e-4, atol=1e-4)


def test_disabled_adapter_equals_base(pair, kind: str) -> None:
    load, model, tok, _, config, _ = pair
    if config.name not in ADAPTERS:
        pytest.skip(f"{config.name} has no adapter to disable")
    if config.name == "qlora":
        pytest.skip("the base under a qlora adapter is the quantized base (see test_quantized.py)")
    if config.name in ("prompt", "ptuning") and kind == "classifier":
        pytest.skip("PEFT 0.21's disable_adapter fails on prompt-learning classifiers (no generation hook)")
    _perturb(model)
    inputs = _inputs(tok, next(model.parameters()).device)
    base, _ = load()
    with model.disable_adapter():
        disabled = _logits(model, inputs)
    torch.testing.assert_close(disabled, _logits(base, inputs))


def test_decoder_path_equals_the_peft_forward(pair) -> None:
    from tunesmith.adapters.prompting import decoder_hidden
    from tunesmith.train.sft.loss import causal_parts

    _, model, tok, _, _, _ = pair
    if type(model).__name__.endswith("ForSequenceClassification") or "SequenceClassification" in type(model).__name__:
        pytest.skip("classifiers score through their own forward")
    _perturb(model)
    inputs = _inputs(tok, next(model.parameters()).device)
    expected = _logits(model, inputs)[:, -inputs["input_ids"].shape[1] :]
    decoder, head = causal_parts(model)
    with torch.no_grad():
        got = head(decoder_hidden(model, decoder, inputs["input_ids"], inputs["attention_mask"])).float()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("which", ["encoder", "causal"])
def test_prefix_on_a_classifier_says_what_to_use(tiny_encoder_64_dir: Path, tiny_model_64_dir: Path, which) -> None:
    model, _ = load_classifier(str(tiny_encoder_64_dir if which == "encoder" else tiny_model_64_dir), ["a", "b"])
    with pytest.raises(ValueError, match="use method prompt or ptuning"):
        get_method("prefix").apply(model, _config("prefix"))
