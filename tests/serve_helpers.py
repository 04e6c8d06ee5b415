"""Helpers shared by the serving tests: a plain tiny model, random LoRA adapters for it, and a real server
started on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith.serve.engine import GenerationRequest, SamplingParams


def load_plain(model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa").eval()
    return model, AutoTokenizer.from_pretrained(model_dir)


def make_adapter(model_dir: Path, out: Path, seed: int, rank: int = 4) -> Path:
    from peft import LoraConfig, get_peft_model

    model, _ = load_plain(model_dir)
    peft = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear"))
    torch.manual_seed(seed)
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.3)
    peft.save_pretrained(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(command: list[str], url: str, wait_s: float = 120) -> Iterator[str]:
    """Start ``command`` (a server), wait until ``url``/health answers 200, yield ``url``; stop it after."""
    import httpx

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"server did not come up in {wait_s:.0f} s")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def burst(ask: Callable[[str], str], expected: dict[str, str], total: int, clients: int = 16) -> list[str]:
    """``total`` requests from ``clients`` threads cycling through ``expected``'s prompts: each answer must be that
    prompt's answer asked alone, or a 429 with a Retry-After. Returns "ok" or "429" per request."""
    import openai

    prompts = list(expected)

    def one(i: int) -> str:
        prompt = prompts[i % len(prompts)]
        try:
            answer = ask(prompt)
        except openai.RateLimitError as exc:
            assert int(exc.response.headers["retry-after"]) >= 1
            return "429"
        assert answer == expected[prompt]
        return "ok"

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(total)))


def run_all(engine: Any, requests: list[GenerationRequest], timeout: float = 60) -> dict[str, tuple]:
    """Submit everything, wait for every final delta; (text, finish_reason, completion_tokens) per request id."""
    done, results, lock = threading.Event(), {}, threading.Lock()

    def sink_for(rid: str):
        pieces: list[str] = []

        def sink(delta) -> None:
            pieces.append(delta.text)
            if delta.finish_reason:
                with lock:
                    results[rid] = ("".join(pieces), delta.finish_reason, delta.completion_tokens)
                    if len(results) == len(requests):
                        done.set()

        return sink

    for request in requests:
        engine.submit(request, sink_for(request.request_id))
    assert done.wait(timeout), f"only {len(results)} of {len(requests)} finished"
    return results


def greedy(tokenizer, prompt: str, model: str, max_tokens: int, rid: str) -> GenerationRequest:
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return GenerationRequest(rid, model, ids, SamplingParams(max_tokens=max_tokens, temperature=0))
