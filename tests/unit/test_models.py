from __future__ import annotations

from pathlib import Path

import pytest

from tunesmith.errors import ModelError
from tunesmith.models.load import describe_embedded, load_model, registry, resolve


def test_unknown_model_names_offline_alternatives() -> None:
    with pytest.raises(ModelError) as err:
        resolve("smollm-135m")
    msg = str(err.value)
    assert "Did you mean 'smollm2-135m-instruct'" in msg and "all-minilm-l6-v2" in msg


def test_directory_without_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a model directory"):
        resolve(str(tmp_path))


def test_hub_id_without_network_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline"):
        load_model("nobody-here/no-such-model-xyz")


def test_local_dir_loads_with_chat_template(tiny_model_dir: Path) -> None:
    model, tok = load_model(str(tiny_model_dir))
    assert tok.pad_token_id is not None and tok.chat_template
    assert model.config.num_hidden_layers == 2


def test_fallback_chat_template_when_tokenizer_has_none(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(tiny_model_dir, copy)
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    _, tok = load_model(str(copy))
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert "### Instruction:" in text and text.endswith("### Response:\n")


def test_registry_lists_both_embedded_models() -> None:
    assert set(registry()) == {"smollm2-135m-instruct", "all-minilm-l6-v2"}
    assert {r["name"] for r in describe_embedded()} == set(registry())


def test_gguf_file_and_directory_resolution(tmp_path: Path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    (one / "m.Q4_0.gguf").write_bytes(b"GGUF")
    src = resolve(str(one / "m.Q4_0.gguf"))
    assert src.directory == one and src.gguf_file == "m.Q4_0.gguf"
    assert resolve(str(one)).gguf_file == "m.Q4_0.gguf"  # the only .gguf in a folder
    (one / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="several .gguf files"):
        resolve(str(one))
    assert resolve(str(one), gguf_file="other.gguf").gguf_file == "other.gguf"


def test_a_new_gguf_cache_copy_drops_the_stale_ones(tmp_path: Path) -> None:
    from tunesmith.models.load import drop_stale_copies

    for key in ("aaa", "bbb", "ccc"):
        (tmp_path / f"smollm2-135m-instruct-{key}").mkdir()
    (tmp_path / "other-model-ddd").mkdir()
    (tmp_path / ".smollm2-135m-instruct-ccc.tmp").mkdir()  # an unfinished write of another process
    removed = drop_stale_copies(tmp_path / "smollm2-135m-instruct-ccc", "smollm2-135m-instruct")
    assert sorted(p.name for p in removed) == ["smollm2-135m-instruct-aaa", "smollm2-135m-instruct-bbb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".smollm2-135m-instruct-ccc.tmp",
        "other-model-ddd",
        "smollm2-135m-instruct-ccc",
    ]


def test_pickle_weights_are_refused_unless_trusted(tiny_model_dir, tmp_path) -> None:
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.errors import ModelError
    from tunesmith.models.load import load_classifier, load_model

    folder = tmp_path / "pickled"  # a model folder as older tools wrote them: config and a pickled state dict
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder / "config.json")
    torch.save(AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict(), folder / "pytorch_model.bin")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    assert (folder / "pytorch_model.bin").is_file() and not list(folder.glob("*.safetensors"))
    with pytest.raises(ModelError, match="pickle files .*pytorch_model.bin.*model.trust_pickle"):
        load_model(str(folder))
    with pytest.raises(ModelError, match="pickle files"):
        load_classifier(str(folder), ["a", "b"])
    model, _ = load_model(str(folder), trust_pickle=True)
    assert sum(p.numel() for p in model.parameters()) > 0
    load_model(str(tiny_model_dir))  # safetensors load as before


def folder_with_code(tiny_model_dir: Path, tmp_path: Path, module: str, cls: str, source: str) -> Path:
    """A copy of the tiny model whose config names ``module.cls`` (its own modelling code) in ``auto_map``."""
    import json
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": f"{module}.{cls}"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / f"{module}.py").write_text(source)
    return folder


def test_a_model_folder_that_ships_its_own_code_is_refused(tiny_model_dir, tmp_path) -> None:
    """``auto_map`` in config.json is what transformers' trust_remote_code would import and run."""
    source = "raise SystemExit('this code must never run')\n"
    folder = folder_with_code(tiny_model_dir, tmp_path, "modeling_evil", "EvilForCausalLM", source)
    with pytest.raises(ModelError, match="modeling_evil.*does not run code from model files"):
        load_model(str(folder))
    with pytest.raises(ModelError, match="trust_remote_code"):
        resolve(str(folder))


def test_trust_remote_code_is_an_explicit_opt_in(tiny_model_dir, tmp_path) -> None:
    """With ``trust_remote_code`` the folder's own class is imported and used; the refusal names the option."""
    source = (
        "from transformers import LlamaForCausalLM\n\n\nclass CustomForCausalLM(LlamaForCausalLM):\n"
        "    ran_the_folders_code = True\n"
    )
    folder = folder_with_code(tiny_model_dir, tmp_path, "modeling_custom", "CustomForCausalLM", source)
    with pytest.raises(ModelError, match="model.trust_remote_code: true"):
        load_model(str(folder))
    model, _ = load_model(str(folder), trust_remote_code=True)
    assert type(model).__name__ == "CustomForCausalLM" and model.ran_the_folders_code
    assert resolve(str(folder), trust_remote_code=True).trust_remote_code
