"""Vocabulary extension on SmolLM2 with real tweets: how much shorter Hausa and Yorùbá get.

Run: ``.venv/bin/python bench/vocab_extension.py [--data /work/shared/data/afrisenti] [--langs hau yor]
[--tokens 200 500] [--min-count 5]``.

For each language and token budget: learn the tokens from AfriSenti ``train.tsv`` tweets
(:func:`tunesmith.models.vocab.learn_tokens`), add them to SmolLM2-135M-Instruct (the embedded model; the
first load dequantises its GGUF into ``~/.cache/tunesmith``, about a minute) with
:func:`~tunesmith.models.vocab.extend`, and measure tokens per word and byte-fallback rate before and after on
the ``dev.tsv`` tweets, which the tokens were not learned from (the train numbers show how much of the gain
is specific to the training tweets). Also checks that every dev tweet decodes back to itself, that the new
embedding rows are the mean of their old pieces' rows, and prints the most useful tokens of each language.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer

from tunesmith.models import vocab
from tunesmith.models.load import load_model


def read_tweets(path: Path) -> list[str]:
    """The ``tweet`` column of an AfriSenti TSV (header ``tweet\tlabel``)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)
        return [r[0] for r in rows]


def check_rows(model: object, before: Tokenizer, tokens: list[str], ids: list[int]) -> bool:
    """Each new input-embedding row equals the mean of its old pieces' rows (tied head: same tensor)."""
    weight = model.get_input_embeddings().weight  # type: ignore[attr-defined]
    for token, new in zip(tokens, ids, strict=True):
        old = [p.id for p in before.model.tokenize(token)]
        if not torch.allclose(weight[new], weight[old].mean(0), atol=1e-6):
            return False
    return True


def measure(base: str, train: list[str], dev: list[str], n: int, min_count: int) -> dict[str, object]:
    model, tokenizer = load_model(base)
    before = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    start = time.perf_counter()
    tokens = vocab.learn_tokens(train, tokenizer, n, min_count)
    learned = time.perf_counter() - start
    start = time.perf_counter()
    ids = vocab.extend(model, tokenizer, tokens)
    extended = time.perf_counter() - start
    round_trip = sum(tokenizer.decode(tokenizer.encode(t, add_special_tokens=False)) == t for t in dev)
    return {
        "tokens": tokens,
        "texts": [tokenizer.decode([i]) for i in ids],
        "dev": vocab.fertility_change(dev, before, tokenizer),
        "train": vocab.fertility_change(train, before, tokenizer),
        "learn_s": learned,
        "extend_s": extended,
        "round_trip": f"{round_trip}/{len(dev)}",
        "mean_rows": check_rows(model, before, tokens, ids),
        "tied": model.get_output_embeddings().weight is model.get_input_embeddings().weight,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/afrisenti"))
    parser.add_argument("--langs", nargs="+", default=["hau", "yor"])
    parser.add_argument("--tokens", nargs="+", type=int, default=[200, 500])
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--base", default="smollm2-135m-instruct")
    args = parser.parse_args()

    header = (
        f"{'lang':5} {'new':>4} {'added':>5} | {'dev tok/word':>18} {'dev cut':>8} {'dev bytes':>15} | "
        f"{'train tok/word':>18} {'train cut':>9} | {'learn s':>7} {'extend s':>8} {'round trip':>11} {'mean rows':>9}"
    )
    print(f"base {args.base}, min_count {args.min_count}; dev = tweets the tokens were not learned from\n")
    print(header)
    print("-" * len(header))
    examples = {}
    for lang in args.langs:
        train = read_tweets(args.data / lang / "train.tsv")
        dev = read_tweets(args.data / lang / "dev.tsv")
        for n in args.tokens:
            r = measure(args.base, train, dev, n, args.min_count)
            d, t = r["dev"], r["train"]
            print(
                f"{lang:5} {n:>4} {len(r['tokens']):>5} | "  # type: ignore[arg-type]
                f"{d['tokens_per_word_before']:>8.3f} -> {d['tokens_per_word_after']:<6.3f} "  # type: ignore[index]
                f"{d['reduction_pct']:>7.1f}% "  # type: ignore[index]
                f"{d['byte_fallback_before']:>6.4f}->{d['byte_fallback_after']:<6.4f} | "  # type: ignore[index]
                f"{t['tokens_per_word_before']:>8.3f} -> {t['tokens_per_word_after']:<6.3f} "  # type: ignore[index]
                f"{t['reduction_pct']:>8.1f}% | "  # type: ignore[index]
                f"{r['learn_s']:>7.2f} {r['extend_s']:>8.2f} {r['round_trip']:>11} {r['mean_rows']!s:>9}"
            )
            examples[lang] = r["texts"]
    for lang, texts in examples.items():
        print(f"\n{lang}: first 25 of {len(texts)} learned tokens (most tokens saved first):")  # type: ignore[arg-type]
        print(" ".join(repr(t) for t in texts[:25]))  # type: ignore[index]


if __name__ == "__main__":
    main()
