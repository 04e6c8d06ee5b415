"""Simulated users of a served sentiment model: traffic, then feedback from people who know the answer.

Sends AfriSenti tweets to a running `tunesmith serve` (Nigerian Pidgin first, then Hausa, the language
the quickstart model never saw), each asking for two candidate answers (n=2, sampled), and judges them
with the tweet's human label (AfriSenti, CC BY 4.0, see data/ATTRIBUTION.md) the way a user of the app
would: one right answer of the two -> "choice" of it; both wrong -> a "correction" with the label; both
right -> thumbs up.

    .venv/bin/tunesmith serve runs/quickstart-pcm-sentiment &
    .venv/bin/python examples/feedback-loop/simulate.py --pidgin 200 --hausa 100
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
TEMPLATE = "Classify the sentiment of this tweet as negative, neutral or positive. Answer with one word.\nTweet: {}"


def tweets(path: Path, n: int) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return [(r["tweet"], r["label"]) for r in csv.DictReader(fh, delimiter="\t")][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", default="quickstart-pcm-sentiment")
    parser.add_argument("--pidgin", type=int, default=200)
    parser.add_argument("--hausa", type=int, default=100)
    parser.add_argument("--api-key", default="none")
    args = parser.parse_args()

    import httpx
    from openai import OpenAI

    client = OpenAI(base_url=f"{args.url}/v1", api_key=args.api_key, max_retries=5)
    headers = {"Authorization": f"Bearer {args.api_key}"}

    def user(item: tuple[int, str, str]) -> str:
        i, tweet, gold = item
        answer = client.chat.completions.create(
            model=args.model,
            n=2,
            temperature=1.0,
            max_tokens=4,
            seed=i,
            messages=[{"role": "user", "content": TEMPLATE.format(tweet)}],
        )
        texts = [c.message.content.strip().lower() for c in answer.choices]
        right = [t.startswith(gold) for t in texts]
        if sum(right) == 1:
            body = {"kind": "choice", "value": right.index(True)}
        elif not any(right):
            body = {"kind": "correction", "value": gold}
        else:
            body = {"kind": "thumbs", "value": "up"}
        httpx.post(
            f"{args.url}/v1/feedback", json={"request_id": answer.id, **body}, headers=headers, timeout=60
        ).raise_for_status()
        return body["kind"]

    root = HERE.parent / "quickstart" / "data"
    for name, rows in (
        ("Pidgin", tweets(root / "test.tsv", args.pidgin)),
        ("Hausa", tweets(HERE / "data" / "hau.tsv", args.hausa)),
    ):
        with ThreadPoolExecutor(16) as pool:
            kinds = Counter(pool.map(user, [(i, t, g) for i, (t, g) in enumerate(rows)]))
        print(f"{name}: {len(rows)} requests; feedback {dict(kinds)}")


if __name__ == "__main__":
    sys.exit(main())
