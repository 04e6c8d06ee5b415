"""Recreate the AfriSenti slices shipped in examples/ and tests/assets/ from ../shared/data (seeded).

AfriSenti (Muhammad et al., EMNLP 2023; SemEval-2023 Task 12; NaijaSenti, LREC 2022), CC BY 4.0.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "afrisenti"


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return rows[1:]


def write(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["tweet", "label"])
        w.writerows(rows)


def sample(rows: list[list[str]], n: int, seed: int) -> list[list[str]]:
    return random.Random(seed).sample(rows, min(n, len(rows)))


def main() -> None:
    train, test = read(SHARED / "pcm" / "train.tsv"), read(SHARED / "pcm" / "test.tsv")
    write(ROOT / "examples" / "quickstart" / "data" / "train.tsv", sample(train, 3000, 1))
    write(ROOT / "examples" / "quickstart" / "data" / "test.tsv", sample(test, 1000, 2))
    # the test slice keeps a few `neutral` rows so that every label occurs in its train file
    neutral = [r for r in train if r[1] == "neutral"]
    others = [r for r in train if r[1] != "neutral"]
    tiny = sample(others, 54, 3) + sample(neutral, 6, 3)
    random.Random(5).shuffle(tiny)
    write(ROOT / "tests" / "assets" / "pcm_train.tsv", tiny)
    write(ROOT / "tests" / "assets" / "pcm_test.tsv", sample(test, 30, 4))
    language_slices()


def language_slices() -> None:
    """40 train and 20 test rows of each AfriSenti language for the data integration test; the pcm test
    slice keeps 5 of upstream's test tweets that also occur in train (with their train rows), so the
    known leak is in the fixture."""
    for lang in ("hau", "ibo", "pcm", "yor", "arq", "ary"):
        train, test = read(SHARED / lang / "train.tsv"), read(SHARED / lang / "test.tsv")
        train_part, test_part = sample(train, 40, 11), sample(test, 20, 12)
        if lang == "pcm":
            texts = {r[0]: r for r in train}
            leaks = sample([r for r in test if r[0] in texts], 5, 13)
            train_part = sample(train, 35, 11) + [texts[r[0]] for r in leaks]
            test_part = sample([r for r in test if r[0] not in texts], 15, 12) + leaks
            random.Random(14).shuffle(test_part)
        write(ROOT / "tests" / "assets" / "afrisenti" / lang / "train.tsv", train_part)
        write(ROOT / "tests" / "assets" / "afrisenti" / lang / "test.tsv", test_part)


if __name__ == "__main__":
    main()
