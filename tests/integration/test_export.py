"""`tunesmith export`: the merged model answers and stops like the tuned one; the adapter travels with a card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tunesmith.cli.main import main

pytestmark = pytest.mark.integration
PROMPTS = ["how is the market today", "I no like am at all", "good morning"]


def chat_ids(tokenizer, prompt: str) -> torch.Tensor:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]


def unmerged(run: Path, base_dir: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    return PeftModel.from_pretrained(base, run / "adapter").eval(), AutoTokenizer.from_pretrained(run / "adapter")


def test_merged_hf_export_stops_and_answers_like_the_adapter(tiny_lora_run: Path, tiny_model_dir: Path, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.eval.generate import stop_ids_and_strings

    out = tmp_path / "merged"
    assert main(["export", str(tiny_lora_run), "--to", "hf", "--out", str(out), "--dtype", "float32"]) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["format"] == "hf" and {f["path"] for f in manifest["files"]} >= {
        "model.safetensors",
        "config.json",
    }
    assert not list(out.glob("*.bin")) and (out / "generation_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == AutoTokenizer.from_pretrained(tiny_lora_run / "adapter").chat_template
    tuned, tuned_tok = unmerged(tiny_lora_run, tiny_model_dir)
    stop_ids, _ = stop_ids_and_strings(tuned_tok, tuned, None)
    stopped = 0
    for prompt in PROMPTS:
        ids = chat_ids(tokenizer, prompt)
        # the merged model stops by its own generation config only; the adapter with tunesmith's stop ids
        plain = merged.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1] :].tolist()
        with torch.no_grad():
            reference = tuned.generate(
                input_ids=ids,
                max_new_tokens=24,
                do_sample=False,
                eos_token_id=stop_ids,
                pad_token_id=tuned_tok.pad_token_id,
            )[0, ids.shape[1] :].tolist()
        assert plain == reference, prompt
        stopped += plain[-1] in stop_ids
    assert stopped, "no answer ended with a stop token within 24 tokens: the stopping comparison was not exercised"


def test_generation_config_lists_the_end_of_turn_token_when_eos_differs(tiny_model_dir: Path, tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.export.hf import generation_config

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.eos_token = "<|endoftext|>"  # a base model's EOS while the ChatML template ends turns with <|im_end|>
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    eos = generation_config(model, tokenizer).eos_token_id
    assert eos == [tokenizer.convert_tokens_to_ids("<|endoftext|>"), tokenizer.convert_tokens_to_ids("<|im_end|>")]


def test_adapter_export_has_a_card_and_loads_with_peft(tiny_lora_run: Path, tiny_model_dir: Path, tmp_path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    assert main(["export", str(tiny_lora_run), "--to", "adapter", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert card.startswith("---\nbase_model: ") and "library_name: peft" in card and "# tiny-lora" in card
    assert "rows" in card and "Not evaluated yet" in card  # the fixture run was trained, not evaluated
    settings = json.loads((out / "adapter_config.json").read_text())
    assert settings["base_model_name_or_path"] == str(tiny_model_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out)
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_gguf_export_loads_back_with_the_same_greedy_answers(tiny_lora_run: Path, tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "gguf"
    args = ["export", str(tiny_lora_run), "--to", "gguf", "--out", str(out), "--quant", "f16", "--quant", "q8_0"]
    assert main([*args, "--ollama"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["Modelfile", "export.json", "tiny-lora.f16.gguf", "tiny-lora.q8_0.gguf"]
    modelfile = (out / "Modelfile").read_text()
    assert "FROM ./tiny-lora.f16.gguf" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    hf = tmp_path / "hf"
    assert main(["export", str(tiny_lora_run), "--to", "hf", "--out", str(hf), "--dtype", "float32"]) == 0
    merged = AutoModelForCausalLM.from_pretrained(hf).eval()
    tokenizer = AutoTokenizer.from_pretrained(hf)
    loaded = AutoModelForCausalLM.from_pretrained(out, gguf_file="tiny-lora.f16.gguf").eval()
    loaded_tok = AutoTokenizer.from_pretrained(out, gguf_file="tiny-lora.f16.gguf")
    for prompt in PROMPTS:
        ids = chat_ids(tokenizer, prompt)
        assert chat_ids(loaded_tok, prompt).tolist() == ids.tolist()
        want = merged.generate(ids, max_new_tokens=12, do_sample=False)[0].tolist()
        got = loaded.generate(
            ids, max_new_tokens=12, do_sample=False, eos_token_id=merged.generation_config.eos_token_id
        )
        assert got[0].tolist() == want, prompt


def test_methods_that_cannot_merge_are_refused_with_what_to_do(tiny_lora_run: Path, tmp_path, capsys) -> None:
    import yaml

    run = tmp_path / "prompt-run"
    shutil.copytree(tiny_lora_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["method"] = {"name": "prompt", "virtual_tokens": 4}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["export", str(run), "--to", "hf"]) == 2
    assert "--to adapter" in " ".join(capsys.readouterr().err.split())
    assert main(["export", str(tmp_path), "--to", "hf"]) == 2
    assert "not a run directory" in " ".join(capsys.readouterr().err.split())
    assert main(["export", str(tiny_lora_run), "--to", "onnx"]) == 2


def test_run_exports_after_evaluation_when_asked(make_config) -> None:
    import yaml

    config = make_config(
        name="tiny-export",
        train={"epochs": 1},
        eval={"baselines": []},
        export={"to": ["adapter", "gguf"], "quant": ["q8_0"]},
    )
    assert main(["run", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / "tiny-export"
    assert (run / "export" / "adapter" / "README.md").is_file()
    card = (run / "export" / "adapter" / "README.md").read_text()
    assert "| tuned (lora) |" in card  # the evaluation table made it into the card
    assert [p.name for p in (run / "export" / "gguf").glob("*.gguf")] == ["tiny-export.q8_0.gguf"]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_classifier_exports_as_a_sequence_classification_folder(make_config, tiny_model_dir: Path, method, tmp_path):
    import yaml
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunesmith.models.load import load_classifier

    config = make_config(
        name=f"cls-{method}",
        method={"name": method, **({"r": 4} if method == "lora" else {})},
        train={"objective": "classify", "epochs": 1},
    )
    assert main(["train", str(config)]) == 0
    run = Path(yaml.safe_load(config.read_text())["output_dir"]) / f"cls-{method}"
    out = tmp_path / "hf"
    assert main(["export", str(run), "--to", "hf", "--out", str(out), "--dtype", "float32"]) == 0
    exported = AutoModelForSequenceClassification.from_pretrained(out).eval()
    labels = json.loads((run / "data" / "manifest.json").read_text())["labels"]
    assert [exported.config.id2label[i] for i in range(len(labels))] == labels
    if method == "lora":
        base, _ = load_classifier(str(tiny_model_dir), labels)
        trained = PeftModel.from_pretrained(base, run / "adapter").eval()
    else:
        trained = AutoModelForSequenceClassification.from_pretrained(run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer(["how far my guy", "this thing no good at all"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.allclose(exported(**batch).logits, trained(**batch).logits, atol=1e-5)
    assert main(["export", str(run), "--to", "gguf"]) == 2  # no GGUF architecture holds a classifier head
