"""The Ollama Modelfile: a Jinja chat template decomposed into Go template branches, stops and sampling."""

from __future__ import annotations

import copy
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from tunesmith.export.ollama import chat_turns, go_template, modelfile
from tunesmith.models.tiny import CHATML

CHATML_TEMPLATE = (
    "{{ range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    '{{- if eq .Role "system" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n'
    '{{ else if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n'
    '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}{{ if not $last }}<|im_end|>\n{{ end }}'
    "{{ end }}\n"
    '{{- if and $last (ne .Role "assistant") }}<|im_start|>assistant\n{{ end }}\n'
    "{{- end }}"
)
# SmolLM2's template: a default system prompt when the chat has none
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{{ message['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
# Gemma's: no system role at all
NO_SYSTEM = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<start_of_turn>{{ message['role'] }}\n{{ message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
CHATS = [
    [("system", "Be brief."), ("user", "Hi there")],
    [("user", "Hi there")],
    [("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!\nHow can I help?"), ("user", "Ẹ kú àárọ̀")],
    [("user", "Hi"), ("assistant", "Hello"), ("user", "Again {{ .Content }}")],
]


@pytest.fixture
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _with_template(tokenizer: Any, template: str, bos: str | None = None) -> Any:
    changed = copy.deepcopy(tokenizer)
    changed.chat_template = template
    if bos:
        changed.bos_token = bos
    return changed


def _template_of(text: str) -> str:
    return text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]


def test_chatml_becomes_one_branch_per_role_with_stops_and_sampling(tokenizer: Any) -> None:
    assert tokenizer.chat_template == CHATML
    text = modelfile(tokenizer, "tiny.q8_0.gguf", {"temperature": 0.7, "top_p": 0.9, "eos_token_id": [2, 0]})
    assert text.splitlines()[1] == "FROM ./tiny.q8_0.gguf"
    assert _template_of(text) == CHATML_TEMPLATE
    stops = [line for line in text.splitlines() if line.startswith("PARAMETER stop")]
    assert stops == ['PARAMETER stop "<|im_end|>"', 'PARAMETER stop "<|endoftext|>"']
    assert "PARAMETER temperature 0.7" in text and "PARAMETER top_p 0.9" in text
    assert "SYSTEM" not in text


def test_pieces_rebuild_the_chatml_turns(tokenizer: Any) -> None:
    turns = chat_turns(lambda m, add: tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=add))
    assert turns.prefix == {r: f"<|im_start|>{r}\n" for r in ("system", "user", "assistant")}
    assert set(turns.suffix.values()) == {"<|im_end|>\n"} and turns.generation == "<|im_start|>assistant\n"
    assert turns.document == "" and turns.default_system is None


def test_a_default_system_prompt_becomes_the_modelfile_system(tokenizer: Any) -> None:
    text = modelfile(_with_template(tokenizer, SMOLLM2), "m.gguf", {"do_sample": False})
    assert 'SYSTEM """You are a helpful AI assistant"""' in text
    assert _template_of(text) == CHATML_TEMPLATE  # the default prompt lives in SYSTEM, not in the template
    assert "PARAMETER temperature 0" in text


def test_a_bos_written_once_stays_before_the_messages(tokenizer: Any) -> None:
    text = modelfile(_with_template(tokenizer, LLAMA3, bos="<|endoftext|>"), "m.gguf")
    template = _template_of(text)
    assert template.startswith("<|endoftext|>{{ range") and template.count("<|endoftext|>") == 1
    assert (
        '{{ else if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|>' in template
    )


def test_a_template_without_separable_turns_falls_back_to_no_template(
    tokenizer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        text = modelfile(_with_template(tokenizer, NO_SYSTEM), "m.gguf")
    assert "TEMPLATE" not in text.replace("# No TEMPLATE", "")
    assert "# No TEMPLATE: the chat template does not render" in text and "System role not supported" in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "without TEMPLATE" in caplog.text


GO_RENDERER = """package main

import ("encoding/json"; "os"; "text/template")

type Message struct { Role string; Content string }

func main() {
	var c struct { Template string; Messages []Message }
	if err := json.NewDecoder(os.Stdin).Decode(&c); err != nil { panic(err) }
	t := template.Must(template.New("t").Parse(c.Template))
	if err := t.Execute(os.Stdout, map[string]any{"Messages": c.Messages}); err != nil { panic(err) }
}
"""


@pytest.mark.skipif(shutil.which("go") is None, reason="needs a Go toolchain to run text/template as Ollama does")
@pytest.mark.parametrize(("template", "bos"), [(CHATML, None), (SMOLLM2, None), (LLAMA3, "<|endoftext|>")])
def test_go_renders_what_jinja_renders(tokenizer: Any, tmp_path: Path, template: str, bos: str | None) -> None:
    (tmp_path / "main.go").write_text(GO_RENDERER)
    (tmp_path / "go.mod").write_text("module render\n\ngo 1.18\n")
    subprocess.run(["go", "build", "-o", "render", "."], cwd=tmp_path, check=True, capture_output=True)
    tok = _with_template(tokenizer, template, bos)
    turns = chat_turns(
        lambda m, add: tok.apply_chat_template(m, tokenize=False, add_generation_prompt=add), tok.bos_token
    )
    go = go_template(turns)
    for chat in CHATS:
        # Ollama puts the Modelfile's SYSTEM first when a chat has no system message
        sent = (
            chat
            if chat[0][0] == "system" or turns.default_system is None
            else [("system", turns.default_system), *chat]
        )
        data = json.dumps({"Template": go, "Messages": [{"Role": r, "Content": c} for r, c in sent]})
        got = subprocess.run([str(tmp_path / "render")], input=data.encode(), capture_output=True, check=True).stdout
        messages = [{"role": r, "content": c} for r, c in chat]
        assert got.decode() == tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
