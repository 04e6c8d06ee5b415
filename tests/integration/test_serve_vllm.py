"""vLLM behind tunesmith's server (issue 8): the same HTTP layer, keys and limits over vLLM's engine.

Runs where vLLM imports: its CPU build in `make test-vllm` (a separate virtual environment, .venv-vllm, since
vLLM pins its own transformers), its CUDA build on a GPU. Greedy answers equal the in-process engine's for the
base and for adapters (one given at start, one loaded through the admin endpoint); the real server answers the
official `openai` client, streams, switches adapters, refuses bad keys, and under a burst every request gets
the right answer or a 429 and none is lost.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pytest

from serve_helpers import burst, free_port, greedy, make_adapter, run_all, running

pytestmark = [pytest.mark.integration, pytest.mark.vllm]
pytest.importorskip("vllm")

ASSETS = Path(__file__).resolve().parents[1] / "assets"
KEY = "vllm-key-456"
PROMPTS = ["good morning", "how far my guy", "wetin dey happen"]
# vLLM's CPU build pins its OpenMP threads to cores unless told not to, and sizes its KV cache at 4 GiB
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


@pytest.fixture(scope="module")
def model_and_adapters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny random Llama whose head size vLLM's attention kernels take (64), and two random LoRA adapters of
    ranks 8 and 16 (B not zero, so each changes the answers)."""
    from tunesmith.models.tiny import build_tiny_causal_lm

    root = tmp_path_factory.mktemp("vllm")
    model = build_tiny_causal_lm(
        ASSETS / "tiny-tokenizer",
        root / "tiny-llama",
        hidden_size=128,
        intermediate_size=256,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    return model, make_adapter(model, root / "a1", seed=1, rank=8), make_adapter(model, root / "a2", seed=2, rank=16)


def generate(engine, model: str, text: str, max_tokens: int = 12) -> tuple[str, str, int]:
    """One greedy request alone: (text, finish_reason, completion_tokens)."""
    rid = f"{model}: {text}"
    answer, reason, tokens = run_all(engine, [greedy(engine.tokenizer, text, model, max_tokens, rid)], 120)[rid]
    # a random model emits byte tokens; a character cut at the end is U+FFFD in one engine and dropped in vLLM
    return answer.rstrip("\ufffd"), reason, tokens


def test_vllm_answers_as_the_in_process_engine_does(model_and_adapters) -> None:
    from tunesmith.serve.batching import EngineSettings
    from tunesmith.serve.launch import build_engine

    model, a1, a2 = model_and_adapters
    answers = {}
    for backend in ("tunesmith", "vllm"):
        engine = build_engine(str(model), [("a1", str(a1))], "float32", EngineSettings(4, 8), backend=backend)
        engine.start()
        try:
            assert engine.model_names() == ["tiny-llama", "a1"]
            engine.load_adapter("a2", str(a2))  # after start: through the engine thread
            got = {(m, p): generate(engine, m, p) for m in ("tiny-llama", "a1", "a2") for p in PROMPTS}
            engine.unload_adapter("a2")
            assert engine.model_names() == ["tiny-llama", "a1"]
        finally:
            engine.shutdown()
            getattr(engine, "close", lambda: None)()
        answers[backend] = got
    assert answers["vllm"] == answers["tunesmith"]
    texts = {m: [answers["vllm"][m, p][0] for p in PROMPTS] for m in ("tiny-llama", "a1", "a2")}
    assert texts["tiny-llama"] != texts["a1"] != texts["a2"]  # each adapter changes the answers
    assert all(reason == "length" and n == 12 for _, reason, n in answers["vllm"].values())


def test_an_adapter_above_the_rank_bound_is_refused_with_the_fix(model_and_adapters) -> None:
    from tunesmith.errors import ServeError
    from tunesmith.serve.vllm_engine import VLLMEngine

    _, _, a2 = model_and_adapters
    engine = VLLMEngine(None, None, "base", [2], None, 512, max_lora_rank=8)  # type: ignore[arg-type]
    with pytest.raises(ServeError, match="rank 16 is above this server's 8; restart it with --max-lora-rank 64"):
        engine.load_adapter("a2", str(a2))


@pytest.fixture(scope="module")
def server(model_and_adapters, tmp_path_factory: pytest.TempPathFactory):
    model, a1, _ = model_and_adapters
    keys = tmp_path_factory.mktemp("vllm-keys") / "keys.txt"
    keys.write_text(f"{KEY}\n")
    port = free_port()
    command = [
        *(sys.executable, "-m", "tunesmith.cli.main", "serve", str(model), "--backend", "vllm"),
        *("--adapter", f"a1={a1}", "--adapter-root", str(model.parent), "--port", str(port)),
        *("--api-key-file", str(keys), "--dtype", "float32", "--max-batch", "4", "--max-waiting", "6"),
    ]
    with running(command, f"http://127.0.0.1:{port}", wait_s=300) as url:
        yield url


def api(url: str, key: str = KEY):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def chat(client, model: str, prompt: str, **kw):
    messages = [{"role": "user", "content": prompt}]
    return client.chat.completions.create(model=model, messages=messages, max_tokens=8, temperature=0, **kw)


def test_the_openai_client_against_the_vllm_backend(server: str, model_and_adapters) -> None:
    import openai

    _, _, a2 = model_and_adapters
    client = api(server)
    assert [m.id for m in client.models.list().data] == ["tiny-llama", "a1"]
    tuned = chat(client, "a1", "good morning")
    base = chat(client, "tiny-llama", "good morning")
    assert tuned.choices[0].message.content != base.choices[0].message.content
    assert tuned.usage.completion_tokens <= 8 and tuned.choices[0].finish_reason in ("stop", "length")
    streamed = [c.choices[0].delta.content or "" for c in chat(client, "a1", "good morning", stream=True) if c.choices]
    assert "".join(streamed) == tuned.choices[0].message.content
    completion = client.completions.create(model="a1", prompt="good", max_tokens=5, temperature=0)
    assert completion.usage.completion_tokens <= 5

    auth = {"Authorization": f"Bearer {KEY}"}
    loaded = httpx.post(f"{server}/v1/load_lora_adapter", json={"lora_name": "a2", "lora_path": str(a2)}, headers=auth)
    assert loaded.status_code == 200, loaded.text
    assert chat(client, "a2", "good morning").choices[0].message.content != tuned.choices[0].message.content
    unloaded = httpx.post(f"{server}/v1/unload_lora_adapter", json={"lora_name": "a2"}, headers=auth)
    assert unloaded.status_code == 200, unloaded.text
    with pytest.raises(openai.NotFoundError):
        chat(client, "a2", "hi")
    with pytest.raises(openai.AuthenticationError):
        chat(api(server, "wrong"), "a1", "hi")


def test_a_burst_gets_answers_or_429_and_none_is_lost(server: str) -> None:
    client = api(server)

    def ask(prompt: str) -> str:
        return chat(client, "a1", prompt).choices[0].message.content

    outcomes = burst(ask, {p: ask(p) for p in PROMPTS}, total=48)
    assert outcomes.count("ok") + outcomes.count("429") == 48 and outcomes.count("ok") >= 10
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["active"] == 0
    metrics = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    finished = sum(float(x.split()[-1]) for x in metrics.splitlines() if x.startswith("tunesmith_finished_"))
    assert finished >= outcomes.count("ok")
    print("outcomes:", json.dumps({k: outcomes.count(k) for k in set(outcomes)}))
