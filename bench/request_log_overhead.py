"""Benchmark: what logging every request to the monitor store costs the server, measured in the same run.

SmolLM2-135M-Instruct served by tunesmith's app on uvicorn in this process; 16 client threads send
``--requests`` chat requests (Pidgin tweets from ``examples/quickstart/data/test.tsv``, CC BY 4.0, in the
quickstart's instruction template; greedy, at most ``--max-tokens`` tokens). Two servers alternate
``--reps`` times: without a request log, and with the SQLite store writer (PII redaction, language, script
and code-mixing annotation in its background thread). Prints p50/p95 request latency, throughput, the
p95 latency the log adds, and the time ``record()`` takes on the event loop.

    python bench/request_log_overhead.py --requests 64 --max-tokens 16 --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from serve_throughput import MODEL, percentile, prompts, start_server

TEMPLATE = "Classify the sentiment of this tweet as negative, neutral or positive. Answer with one word.\nTweet: "


def drive(url: str, texts: list[str], clients: int, max_tokens: int) -> dict:
    import httpx

    def one(text: str) -> float:
        began = time.perf_counter()
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": TEMPLATE + text}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        httpx.post(f"{url}/v1/chat/completions", json=body, timeout=600).raise_for_status()
        return time.perf_counter() - began

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, texts))
    wall = time.perf_counter() - start
    return {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95), "rps": len(texts) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from tunesmith.monitor.store import Store
    from tunesmith.monitor.writer import StoreWriter, WriterSettings, default_annotator
    from tunesmith.serve.batching import EngineSettings
    from tunesmith.serve.launch import build_engine

    engine = build_engine(MODEL, dtype="bfloat16", settings=EngineSettings(max_batch=16, max_waiting=256))
    texts = (prompts(args.requests) * 2)[: args.requests]
    template = {"prefix": TEMPLATE, "suffix": ""}
    results: dict[str, list[dict]] = {"no request log": [], "SQLite request log": []}
    writers = []
    for rep in range(args.reps + 1):  # rep 0 warms both up and is not counted
        for name in results:
            log = None
            if name != "no request log":
                store = Store(Path(tempfile.mkdtemp()) / "monitor.db")
                log = StoreWriter(store, WriterSettings(privacy="redact"), default_annotator(template))
                writers.append(log)
            url, server = start_server(engine, log)
            figures = drive(url, texts, 16, args.max_tokens)
            server.should_exit = True
            server.thread.join(timeout=60)  # the lifespan stops the engine and flushes the log
            if rep:
                results[name].append(figures)
    written = sum(w.counters["written"] for w in writers)
    dropped = sum(w.counters["dropped"] for w in writers)
    probe = StoreWriter(Store(Path(tempfile.mkdtemp()) / "probe.db"), WriterSettings(), default_annotator(template))
    entry = {
        "request_id": "x",
        "time": 0.0,
        "endpoint": "chat",
        "model": MODEL,
        "response": ["positive"],
        "prompt": [{"role": "user", "content": TEMPLATE + texts[0]}],
        "prompt_tokens": 40,
        "completion_tokens": 2,
        "latency_s": 0.1,
        "finish_reason": "stop",
        "stream": False,
    }
    began = time.perf_counter()
    for i in range(2000):
        probe.record({**entry, "request_id": str(i)})
    record_us = (time.perf_counter() - began) / 2000 * 1e6
    probe.close()

    print(
        f"\nSmolLM2-135M-Instruct bf16, {args.requests} requests from 16 clients, max_tokens {args.max_tokens}, "
        f"{args.reps} alternating repetitions (median, min-max)\n"
    )
    print("| server | p50 latency s | p95 latency s | requests/s |")
    print("|---|---|---|---|")
    for name, runs in results.items():
        cells = []
        for key in ("p50", "p95", "rps"):
            values = [r[key] for r in runs]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        print(f"| {name} | {' | '.join(cells)} |")
    added = statistics.median(r["p95"] for r in results["SQLite request log"]) - statistics.median(
        r["p95"] for r in results["no request log"]
    )
    print(
        f"\np95 latency added by the request log: {added * 1000:+.0f} ms; {written} requests written, "
        f"{dropped} dropped; record() on the event loop: {record_us:.1f} µs per request"
    )


if __name__ == "__main__":
    sys.exit(main())
