"""The real server on loopback, driven by the official `openai` client: chat, streaming, adapters, keys, limits,
and a burst of concurrent clients where every request gets the right answer or a 429 and none is lost."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from serve_helpers import burst, free_port, running

pytestmark = pytest.mark.integration
KEY = "test-key-123"


@pytest.fixture(scope="module")
def server(tiny_lora_run: Path, tmp_path_factory: pytest.TempPathFactory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"# one key per line\n{KEY}\n")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tunesmith.cli.main",
        "serve",
        str(tiny_lora_run),
        "--port",
        str(port),
        "--api-key-file",
        str(keys),
        "--dtype",
        "float32",
        "--max-batch",
        "4",
        "--max-waiting",
        "6",
        "--max-body-bytes",
        "100000",
    ]
    with running(command, f"http://127.0.0.1:{port}") as url:
        yield url


def client(url: str, key: str = KEY):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def ask(api, model: str, prompt: str, **kw):
    return api.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=8, temperature=0, **kw
    )


def test_chat_stream_and_adapter_switch(server: str) -> None:
    api = client(server)
    models = [m.id for m in api.models.list().data]
    assert len(models) == 2 and models[1] == "tiny-lora"  # the base (named after its folder), then the run
    tuned = ask(api, "tiny-lora", "good morning")
    assert tuned.choices[0].finish_reason in ("stop", "length") and tuned.usage.completion_tokens <= 8
    base = ask(api, models[0], "good morning")
    assert base.choices[0].message.content != tuned.choices[0].message.content
    pieces = [
        c.choices[0].delta.content or "" for c in ask(api, "tiny-lora", "good morning", stream=True) if c.choices
    ]
    assert "".join(pieces) == tuned.choices[0].message.content
    completion = api.completions.create(model="tiny-lora", prompt="good", max_tokens=5, temperature=0)
    assert completion.usage.completion_tokens <= 5


def test_bad_key_oversize_and_unknown_model_are_clean_errors(server: str) -> None:
    import openai

    with pytest.raises(openai.AuthenticationError):
        ask(client(server, "wrong"), "tiny-lora", "hi")
    with pytest.raises(openai.APIStatusError) as big:
        ask(client(server), "tiny-lora", "x" * 200_000)
    assert big.value.status_code == 413
    with pytest.raises(openai.NotFoundError):
        ask(client(server), "no-such-model", "hi")
    assert httpx.get(f"{server}/health").json()["status"] == "ok"


def test_sixty_four_requests_from_sixteen_clients_get_an_answer_or_429(server: str) -> None:
    api = client(server)

    def tuned(prompt: str) -> str:
        return ask(api, "tiny-lora", prompt).choices[0].message.content

    expected = {p: tuned(p) for p in ["good morning", "how far", "I dey", "wetin happen"]}
    before = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    outcomes = burst(tuned, expected, total=64)
    print("outcomes:", {k: outcomes.count(k) for k in set(outcomes)})
    assert len(outcomes) == 64 and outcomes.count("ok") + outcomes.count("429") == 64
    assert outcomes.count("ok") >= 10  # 4 rows decode and 6 wait at a time: many get through
    metrics = httpx.get(f"{server}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text

    def count(text: str, status: str) -> int:
        line = f'tunesmith_http_requests_total{{path="/v1/chat/completions",status="{status}"}} '
        return next((int(x.split()[-1]) for x in text.splitlines() if x.startswith(line)), 0)

    assert count(metrics, "200") - count(before, "200") == outcomes.count("ok")
    assert count(metrics, "429") - count(before, "429") == outcomes.count("429")
    assert httpx.get(f"{server}/health").json()["active"] == 0


def test_a_client_that_disconnects_mid_stream_frees_its_row(server: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}

    def cancelled() -> int:
        lines = httpx.get(f"{server}/metrics", headers=auth).text.splitlines()
        return next(
            (int(float(x.split()[-1])) for x in lines if x.startswith("tunesmith_finished_cancelled_total")), 0
        )

    before = cancelled()
    body = {
        "model": "tiny-lora",
        "messages": [{"role": "user", "content": "good morning"}],
        "max_tokens": 400,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, headers=auth, timeout=60) as response:
        for line in response.iter_lines():
            if '"content": "' in line and '"content": ""' not in line:
                break  # the first piece of text arrived: hang up
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (cancelled() == before or httpx.get(f"{server}/health").json()["active"]):
        time.sleep(0.2)
    assert cancelled() == before + 1 and httpx.get(f"{server}/health").json()["active"] == 0
