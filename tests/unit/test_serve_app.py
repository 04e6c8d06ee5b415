"""Every endpoint and error path of the OpenAI-compatible app, in process, on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serve_helpers import load_plain, make_adapter
from tunesmith.serve.adapters import AdapterPool
from tunesmith.serve.app import create_app
from tunesmith.serve.batching import BatchingEngine, EngineSettings
from tunesmith.serve.middleware import hash_key
from tunesmith.serve.requestlog import MemoryLog
from tunesmith.serve.settings import ServerSettings

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "good morning"}], "max_tokens": 8, "temperature": 0}


def engine_for(model_dir: Path, **settings) -> BatchingEngine:
    model, tokenizer = load_plain(model_dir)
    pool = AdapterPool(model, "tiny")
    return BatchingEngine(pool, tokenizer, [tokenizer.eos_token_id], EngineSettings(**settings))


@pytest.fixture
def client(tiny_model_dir: Path):
    log = MemoryLog()
    app = create_app(engine_for(tiny_model_dir), ServerSettings(max_tokens_limit=64), log)
    with TestClient(app) as c:
        c.log = log
        yield c


def events(text: str) -> list:
    out = []
    for block in text.strip().split("\n\n"):
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_chat_answers_whole_and_streamed_alike(client) -> None:
    whole = client.post("/v1/chat/completions", json=CHAT)
    assert whole.status_code == 200 and whole.headers["x-request-id"]
    body = whole.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    answer, usage = body["choices"][0]["message"]["content"], body["usage"]
    assert usage["completion_tokens"] == 8 and usage["total_tokens"] == usage["prompt_tokens"] + 8
    assert body["choices"][0]["finish_reason"] == "length"

    streamed = client.post(
        "/v1/chat/completions", json={**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    chunks = events(streamed.text)
    assert chunks[-1] == "[DONE]" and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1] if c["choices"])
    assert text == answer
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"]][-1] == "length"
    assert chunks[-2]["usage"] == usage and chunks[-2]["choices"] == []
    entries = client.log.entries
    assert [e["stream"] for e in entries] == [False, True] and entries[0]["response"] == [answer]
    assert entries[0]["request_id"] == whole.headers["x-request-id"]


def test_the_end_of_turn_token_ends_an_answer(client) -> None:
    # the tiny model happens to close its answer to "hello" with <|im_end|> after 8 tokens (as HF generate does)
    body = client.post(
        "/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
    ).json()
    assert body["choices"][0]["finish_reason"] == "stop" and body["usage"]["completion_tokens"] == 8
    assert "<|im_end|>" not in body["choices"][0]["message"]["content"]


def test_stop_strings_cut_the_answer_before_them(client) -> None:
    answer = client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 12}).json()["choices"][0]["message"]
    text = answer["content"]
    stop = text[3:6]
    assert stop and stop not in text[:3]
    cut = client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 12, "stop": [stop]}).json()
    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_completions_with_several_prompts_and_choices(client) -> None:
    body = client.post(
        "/v1/completions", json={"model": "tiny", "prompt": ["a b", "c"], "n": 2, "max_tokens": 4, "seed": 3}
    ).json()
    assert body["object"] == "text_completion" and [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert body["choices"][0]["text"] != body["choices"][1]["text"]  # seeds 3 and 4
    again = client.post(
        "/v1/completions", json={"model": "tiny", "prompt": ["a b", "c"], "n": 2, "max_tokens": 4, "seed": 3}
    ).json()
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in body["choices"]]
    streamed = client.post(
        "/v1/completions", json={"model": "tiny", "prompt": "a b", "max_tokens": 4, "temperature": 0, "stream": True}
    )
    chunks = events(streamed.text)
    assert chunks[-1] == "[DONE]" and chunks[-2]["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("change", "status", "param"),
    [
        ({"model": "nope"}, 404, "model"),
        ({"messages": []}, 400, "messages"),
        ({"max_tokens": 65}, 400, "max_tokens"),
        ({"temperature": 3}, 400, "temperature"),
        ({"logprobs": True}, 400, "logprobs"),
        ({"stream": True, "n": 2}, 400, "n"),
        ({"messages": [{"role": "robot", "content": "x"}]}, 400, "messages.0.role"),
        ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ],
)
def test_bad_requests_get_openai_errors_naming_the_field(client, change: dict, status: int, param: str) -> None:
    response = client.post("/v1/chat/completions", json={**CHAT, **change})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param and error["message"] and error["type"]


def test_prompt_over_the_context_is_refused(tiny_model_dir: Path) -> None:
    engine = engine_for(tiny_model_dir, max_context=40)  # the CHAT prompt renders to 22 tokens
    with TestClient(create_app(engine)) as c:
        long = c.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "word " * 40}]})
        assert long.status_code == 400 and long.json()["error"]["code"] == "context_length_exceeded"
        room = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 19})
        assert room.status_code == 400 and "exceeds" in room.json()["error"]["message"]


def test_models_health_and_metrics(client) -> None:
    assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["tiny"]
    assert client.get("/health").json()["status"] == "ok"
    client.post("/v1/chat/completions", json=CHAT)
    client.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
    text = client.get("/metrics").text
    assert 'tunesmith_http_requests_total{path="/v1/chat/completions",status="200"} 1' in text
    assert 'tunesmith_http_requests_total{path="/v1/chat/completions",status="404"} 1' in text
    assert "tunesmith_generated_tokens_total 8" in text and "tunesmith_queue_depth 0" in text
    assert 'tunesmith_http_request_seconds_bucket{path="/v1/chat/completions",le="+Inf"} 2' in text


def test_api_keys_are_required_when_set_and_health_stays_open(tiny_model_dir: Path) -> None:
    settings = ServerSettings(api_key_hashes=(hash_key("sesame"),))
    with TestClient(create_app(engine_for(tiny_model_dir), settings)) as c:
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 401
        wrong = c.post("/v1/chat/completions", json=CHAT, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/v1/models", headers={"Authorization": "Bearer sesame"}).status_code == 200
        assert c.get("/health").status_code == 200
        assert c.get("/metrics").status_code == 401


def test_bodies_over_the_limit_get_413(tiny_model_dir: Path) -> None:
    with TestClient(create_app(engine_for(tiny_model_dir), ServerSettings(max_body_bytes=300))) as c:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * 400}]}
        assert c.post("/v1/chat/completions", json=big).status_code == 413

        def chunks():  # no Content-Length: counted while reading
            yield json.dumps(big).encode()[:200]
            yield json.dumps(big).encode()[200:]

        response = c.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413 and "limit" in response.json()["error"]["message"]
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_a_full_queue_answers_429_with_retry_after(tiny_model_dir: Path) -> None:
    with TestClient(create_app(engine_for(tiny_model_dir, max_waiting=0))) as c:
        response = c.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert "tunesmith_rejected_total 1" in c.get("/metrics").text


def test_requests_past_the_time_limit_get_504(tiny_model_dir: Path) -> None:
    with TestClient(create_app(engine_for(tiny_model_dir), ServerSettings(request_timeout_s=1e-6))) as c:
        response = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 50})
        assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"


def test_adapters_load_switch_and_unload_at_run_time(tiny_model_dir: Path, tmp_path: Path) -> None:
    adapter = make_adapter(tiny_model_dir, tmp_path / "root" / "alpha", seed=1)
    settings = ServerSettings(adapter_roots=(tmp_path / "root",))
    with TestClient(create_app(engine_for(tiny_model_dir), settings)) as c:
        outside = c.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": str(tmp_path)})
        assert outside.status_code == 403
        bad_name = c.post("/v1/load_lora_adapter", json={"lora_name": "../x", "lora_path": str(adapter)})
        assert bad_name.status_code == 400
        nul = c.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "a\u0000b"})  # found by fuzzing
        assert nul.status_code == 400 and "not a usable path" in nul.json()["error"]["message"]
        assert (
            c.post("/v1/load_lora_adapter", json={"lora_name": "alpha", "lora_path": str(adapter)}).status_code == 200
        )
        models = c.get("/v1/models").json()["data"]
        assert [(m["id"], m["parent"]) for m in models] == [("tiny", None), ("alpha", "tiny")]
        base = c.post("/v1/chat/completions", json=CHAT).json()["choices"][0]["message"]["content"]
        tuned = c.post("/v1/chat/completions", json={**CHAT, "model": "alpha"}).json()["choices"][0]["message"]
        assert tuned["content"] != base
        assert c.post("/v1/unload_lora_adapter", json={"lora_name": "alpha"}).status_code == 200
        assert c.post("/v1/chat/completions", json={**CHAT, "model": "alpha"}).status_code == 404
        assert c.post("/v1/unload_lora_adapter", json={"lora_name": "alpha"}).status_code == 404
        assert c.post("/v1/chat/completions", json=CHAT).json()["choices"][0]["message"]["content"] == base


def test_adapter_loading_is_off_without_roots(client) -> None:
    response = client.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/tmp"})
    assert response.status_code == 403 and "--adapter-root" in response.json()["error"]["message"]


def test_a_plain_text_end_of_turn_stops_chat_answers_only(tiny_model_dir: Path) -> None:
    engine = engine_for(tiny_model_dir)
    with TestClient(create_app(engine)) as c:
        text = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 12}).json()["choices"][0]["message"][
            "content"
        ]
        engine.chat_stops = (text[4:7],)  # as if the template closed turns with this text instead of a token
        cut = c.post("/v1/chat/completions", json={**CHAT, "max_tokens": 12}).json()["choices"][0]
        assert cut["message"]["content"] == text[: text.index(text[4:7])] and cut["finish_reason"] == "stop"
        plain = c.post("/v1/completions", json={"model": "tiny", "prompt": "a b", "max_tokens": 12, "temperature": 0})
        assert plain.json()["choices"][0]["finish_reason"] == "length"


def test_a_failing_forward_fails_its_batch_with_500_and_the_server_goes_on(tiny_model_dir: Path) -> None:
    engine = engine_for(tiny_model_dir)
    original = engine._forward
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of memory (simulated)")
        return original(*args, **kwargs)

    engine._forward = flaky
    with TestClient(create_app(engine)) as c:
        failed = c.post("/v1/chat/completions", json=CHAT)
        assert failed.status_code == 500 and "out of memory (simulated)" in failed.json()["error"]["message"]
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert "tunesmith_errors_total 1" in c.get("/metrics").text


def test_seeds_at_the_edges_of_64_bits(client) -> None:
    """Found by the HTTP fuzz test: a seed past 64 bits overflowed the generator and raised out of the handler."""
    edge = {**CHAT, "temperature": 1.0, "max_tokens": 3}
    assert client.post("/v1/chat/completions", json={**edge, "seed": 2**64 - 1, "n": 2}).status_code == 200
    assert client.post("/v1/chat/completions", json={**edge, "seed": -(2**63)}).status_code == 200
    response = client.post("/v1/chat/completions", json={**edge, "seed": 2**70})
    assert response.status_code == 400 and response.json()["error"]["param"] == "seed"
