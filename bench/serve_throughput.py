"""Benchmark: serving SmolLM2-135M-Instruct over HTTP at 1, 4 and 16 concurrent clients vs sequential
``model.generate`` in the same run, same model weights, dtype, prompts and greedy settings.

Prompts: "Reply to this tweet" chats over Nigerian Pidgin tweets from the quickstart slice of AfriSenti
(``examples/quickstart/data/test.tsv``, CC BY 4.0). Every request asks for at most ``--max-tokens`` tokens
greedily, so both sides generate the same answers (up to bf16 batch-shape rounding; the match rate is
printed). The server is tunesmith's app on uvicorn in this process (a background thread), driven by
``httpx`` client threads; each concurrency level sends ``clients x --rounds`` requests. The baseline is
one ``model.generate`` call after another, each request alone, as a plain script would serve.

``--vllm`` (run it with ``.venv-vllm/bin/python``, which ``make test-vllm`` builds) then serves the same
requests through ``--backend vllm`` on the same machine: vLLM's CPU build as the peer to beat.

Prints: generated tokens/s (sum of completion tokens / wall time), p50/p95 request latency, and the
speed-up over the sequential baseline. ``--json`` writes the figures.

    python bench/serve_throughput.py --dtype bfloat16 --max-tokens 64
"""

from __future__ import annotations

import argparse
import csv
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWEETS = ROOT / "examples" / "quickstart" / "data" / "test.tsv"
MODEL = "smollm2-135m-instruct"


def prompts(n: int) -> list[str]:
    with TWEETS.open(encoding="utf-8") as fh:
        rows = [r["tweet"] for r in csv.DictReader(fh, delimiter="\t")]
    return [f"Reply to this tweet in Nigerian Pidgin: {t}" for t in rows[:n]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(latencies: list[float], tokens: int, wall: float, answers: list[str]) -> dict:
    return {
        "requests": len(latencies),
        "tokens": tokens,
        "wall_s": wall,
        "tokens_per_s": tokens / wall,
        "p50_s": percentile(latencies, 0.5),
        "p95_s": percentile(latencies, 0.95),
        "answers": answers,
    }


def sequential(engine, texts: list[str], max_tokens: int) -> dict:
    """One plain ``generate`` per request with the same stop tokens (the baseline)."""
    import torch

    model, tokenizer = engine.pool.model, engine.tokenizer
    latencies, tokens, answers = [], 0, []
    start = time.perf_counter()
    for text in texts:
        began = time.perf_counter()
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(rendered, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = model.generate(
                ids,
                max_new_tokens=max_tokens,
                do_sample=False,
                eos_token_id=sorted(engine.stop_ids),
                pad_token_id=tokenizer.pad_token_id,
            )
        new = out[0, ids.shape[1] :].tolist()
        tokens += len(new)
        answers.append(tokenizer.decode([t for t in new if t not in engine.stop_ids], skip_special_tokens=True))
        latencies.append(time.perf_counter() - began)
    return figures(latencies, tokens, time.perf_counter() - start, answers)


def served(url: str, texts: list[str], clients: int, max_tokens: int) -> dict:
    import httpx

    def one(text: str) -> tuple[float, int, str]:
        began = time.perf_counter()
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": text}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=600)
        response.raise_for_status()
        data = response.json()
        return (
            time.perf_counter() - began,
            data["usage"]["completion_tokens"],
            data["choices"][0]["message"]["content"],
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, texts))
    wall = time.perf_counter() - start
    return figures([r[0] for r in results], sum(r[1] for r in results), wall, [r[2] for r in results])


def start_server(engine, log=None) -> tuple[str, object]:
    import uvicorn

    from tunesmith.serve.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, log=log), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    server.thread = thread  # type: ignore[attr-defined]  # join it after should_exit to know it has stopped
    while not server.started:
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}", server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client at each concurrency level")
    parser.add_argument("--baseline-requests", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--vllm", action="store_true", help="also serve through the vLLM backend (needs vLLM)")
    args = parser.parse_args()

    import torch

    from tunesmith.serve.batching import EngineSettings
    from tunesmith.serve.launch import build_engine

    engine = build_engine(MODEL, dtype=args.dtype, settings=EngineSettings(max_batch=16, max_waiting=256))
    url, server = start_server(engine)
    texts = prompts(16 * args.rounds)
    served(url, texts[:2], 2, 8)  # warm-up: first forward passes, allocator, HTTP stack
    sequential(engine, texts[:1], 8)
    rows = {}
    rows["sequential generate"] = sequential(engine, texts[: args.baseline_requests], args.max_tokens)
    for clients in (1, 4, 16):
        count = max(4, clients * args.rounds)  # at least 4 requests for the latency percentiles
        rows[f"server, {clients} clients"] = served(url, texts[:count], clients, args.max_tokens)
    server.should_exit = True
    server.thread.join()  # type: ignore[attr-defined]
    stats = engine.stats()
    if args.vllm:
        engine.shutdown()
        peer = build_engine(
            MODEL, dtype=args.dtype, settings=EngineSettings(max_batch=16, max_waiting=256), backend="vllm"
        )
        url, server = start_server(peer)
        served(url, texts[:2], 2, 8)  # warm-up
        for clients in (1, 4, 16):
            count = max(4, clients * args.rounds)
            rows[f"vLLM server, {clients} clients"] = served(url, texts[:count], clients, args.max_tokens)
        server.should_exit = True
        server.thread.join()  # type: ignore[attr-defined]
        peer.close()
    base = rows["sequential generate"]
    reference = dict(zip(texts[: args.baseline_requests], base["answers"], strict=True))
    print(
        f"\nSmolLM2-135M-Instruct, {args.dtype}, greedy, max_tokens {args.max_tokens}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads\n"
    )
    print(
        "| setting | requests | generated tokens | wall s | tokens/s | x sequential | p50 s | p95 s | same answers |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        pairs = [(t, a) for t, a in zip(texts, r["answers"], strict=False) if t in reference]
        same = f"{sum(reference[t] == a for t, a in pairs)}/{len(pairs)}" if pairs else "-"
        print(
            f"| {name} | {r['requests']} | {r['tokens']} | {r['wall_s']:.1f} | {r['tokens_per_s']:.1f} | "
            f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {r['p50_s']:.2f} | {r['p95_s']:.2f} | {same} |"
        )
    mean_rows = stats["decoded_rows"] / max(1, stats["decode_steps"])
    print(f"\nengine: {stats['decode_steps']} decode steps, mean {mean_rows:.1f} rows per step")
    if args.json:
        from engine_run import write_json

        figures_only = {k: {x: y for x, y in v.items() if x != "answers"} for k, v in rows.items()}
        title = f"Serving SmolLM2-135M-Instruct, {args.dtype}, greedy, max_tokens {args.max_tokens}"
        write_json(args.json, "serve", title, vars(args), figures_only)


if __name__ == "__main__":
    sys.exit(main())
