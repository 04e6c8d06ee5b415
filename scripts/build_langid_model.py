"""Build the default language-ID model shipped as ``src/tunesmith/data/langid_model.json``.

Training data (see ``src/tunesmith/data/LANGID_ATTRIBUTION.md`` for sources, licenses and commits):

- AfriSenti train splits, one language per folder: hau, ibo, pcm, yor, arq, ary (CC BY 4.0).
- English (``eng``): every turn of the ``chosen`` dialogues of Anthropic HH-RLHF harmless-base test (MIT),
  conversational English, so that English words in Pidgin or Hausa tweets can be told apart per word.
  NTREX-128's English is kept for evaluation only: it is CC BY-SA 4.0, and its share-alike would attach to a
  model file shipped inside this Apache-2.0 package.

Deterministic: the same inputs give a byte-identical file.

    python scripts/build_langid_model.py                      # reads ../shared/data
    python scripts/build_langid_model.py --data /path/to/data --out /tmp/model.json
    python scripts/build_langid_model.py --fixture tests/assets/langid_afrisenti.tsv   # the unit tests' sample
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from pathlib import Path

from tunesmith.data.langid import NgramIdentifier

ROOT = Path(__file__).resolve().parent.parent
AFRISENTI_LANGS = ("hau", "ibo", "pcm", "yor", "arq", "ary")
_TURN = re.compile(r"\n\n(?:Human|Assistant): ")


def afrisenti_train(data: Path, lang: str, split: str = "train") -> list[str]:
    """Tweets of one AfriSenti split (header ``tweet<TAB>label``)."""
    with (data / "afrisenti" / lang / f"{split}.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return [row[0] for row in rows[1:]]


def write_fixture(data: Path, out: Path, n_train: int = 40, n_test: int = 10) -> None:
    """A seeded sample for tests: ``n_train`` train and ``n_test`` test tweets per language, 3 columns."""
    rows: list[tuple[str, str, str]] = []
    for i, lang in enumerate(AFRISENTI_LANGS):
        for split, n in (("train", n_train), ("test", n_test)):
            tweets = [t for t in afrisenti_train(data, lang, split) if len(t.split()) >= 4]
            rows += [(split, lang, t) for t in random.Random(i).sample(tweets, n)]
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["split", "lang", "text"])
        writer.writerows(rows)
    print(f"wrote {out} ({len(rows)} rows)")


def hh_rlhf_turns(data: Path) -> list[str]:
    """Distinct dialogue turns (human and assistant) of the HH-RLHF ``chosen`` dialogues, in file order."""
    seen: dict[str, None] = {}
    with (data / "hh_rlhf_harmless_test" / "test.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            for turn in _TURN.split(json.loads(line)["chosen"]):
                if turn.strip():
                    seen.setdefault(turn.strip(), None)
    return list(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "tunesmith" / "data" / "langid_model.json")
    parser.add_argument("--max-features", type=int, default=60_000)
    parser.add_argument("--fixture", type=Path, help="write the unit tests' AfriSenti sample here instead")
    args = parser.parse_args()
    if args.fixture:
        write_fixture(args.data, args.fixture)
        return

    pairs = [(text, lang) for lang in AFRISENTI_LANGS for text in afrisenti_train(args.data, lang)]
    english = hh_rlhf_turns(args.data)
    pairs += [(text, "eng") for text in english]
    rows = {lang: sum(1 for _, code in pairs if code == lang) for lang in (*AFRISENTI_LANGS, "eng")}
    meta = {
        "built_by": "scripts/build_langid_model.py",
        "max_features": args.max_features,
        "training_rows": rows,
        "sources": {
            "afrisenti": "afrisenti-semeval/afrisent-semeval-2023@5aec3cfcf87b59f885e98641f72e52182776429d "
            "data/<lang>/train.tsv, CC BY 4.0",
            "eng": "anthropics/hh-rlhf@354e5c3cb8960630860dd5774a6ac2a58313bf4d harmless-base/test.jsonl.gz "
            "(chosen dialogues, every turn), MIT",
        },
        "attribution": "LANGID_ATTRIBUTION.md",
    }
    model = NgramIdentifier.fit(pairs, max_features=args.max_features, meta=meta)
    model.save(args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.2f} MB, {len(model.features)} features, rows {rows})")


if __name__ == "__main__":
    main()
