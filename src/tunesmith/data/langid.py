"""Language identification per row and per word with a small character n-gram naive Bayes model.

Why our own model: the off-the-shelf identifiers that ship their model inside a wheel cover the AfriSenti
languages unevenly (none has Algerian Arabic ``arq``; most lack Nigerian Pidgin ``pcm``), and the ones that
cover more (fastText lid.218, AfroLID) need a download at run time, which tunesmith never does. A multinomial
naive Bayes over character 1-4-grams (Cavnar and Trenkle 1994; Baldwin and Lui 2010 for its strength on short
texts) trains from a user's own ``(text, language)`` pairs in seconds, is pure Python + numpy, and stores as a
JSON file a run directory can keep. ``bench/langid_accuracy.py`` measures it against the installable ones.

Tokens follow the code-mixing convention of Das and Gambäck (2014): URLs, ``@mentions``, ``#hashtags``,
numbers, punctuation and emoji are tagged ``univ`` (language independent) and carry no features.

Per-word tags combine the word's own n-gram evidence with the row's language as a prior: a word keeps the
row's language unless its characters favour another language by more than the prior odds, so that words two
languages share ("the", "money", "go" in Pidgin and English) stay with the row's language. The English/Pidgin
boundary comes from the training data: the shipped model's ``pcm`` class was trained on Pidgin tweets, which
are full of English, and its ``eng`` class on conversational English. Consequences, measured by
``bench/langid_accuracy.py`` on tweets with an English span inserted: about half of the inserted English words
in Hausa, Igbo or Yorùbá tweets are tagged ``eng`` (most of the rest ``pcm``, which still counts as a switch for
the CMI), but only about one in ten inside Pidgin tweets, where English-looking words stay ``pcm``: the CMI of
a Pidgin row undercounts its English.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tunesmith.data.script import COMMON, script_of

UNIV = "univ"
FORMAT = "tunesmith-langid-ngram"
FORMAT_VERSION = 1
DEFAULT_MODEL = "langid_model.json"

_UNIV_TOKEN = re.compile(r"^(?:https?://|www\.)\S*$|^[@#]\w", re.IGNORECASE)
_REPEATS = re.compile(r"(.)\1{2,}")


class Identifier(Protocol):
    """What :func:`tunesmith.data.codemix.row_cmi` and the data card need from any language identifier."""

    def predict(self, text: str) -> tuple[str, float]:
        """The row's language code and the identifier's probability for it."""
        ...

    def predict_words(self, text: str) -> list[tuple[str, str]]:
        """Each token of ``text`` with a language code, or ``univ`` for language-independent tokens."""
        ...


def _is_wordchar(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMN"


def split_token(token: str) -> str | None:
    """The word inside a whitespace token, or None when the token is language independent (``univ``).

    Leading and trailing punctuation and emoji are stripped ("wahala!!😂" -> "wahala"); URLs, mentions,
    hashtags and tokens without a letter (numbers, punctuation, emoji) are ``univ``.
    """
    if _UNIV_TOKEN.match(token):
        return None
    start, end = 0, len(token)
    while start < end and not _is_wordchar(token[start]):
        start += 1
    while end > start and not _is_wordchar(token[end - 1]):
        end -= 1
    core = token[start:end]
    if not any(unicodedata.category(c)[0] == "L" for c in core):
        return None
    return core


def tokens(text: str) -> list[tuple[str, str | None]]:
    """Whitespace tokens as ``(surface, word)``; ``word`` is None for ``univ`` tokens.

    ``surface`` is the word without its surrounding punctuation when there is one, else the whole token.
    """
    out: list[tuple[str, str | None]] = []
    for token in text.split():
        core = split_token(token)
        out.append((core if core is not None else token, core))
    return out


def normalize_word(word: str) -> str:
    """NFC, lower case, and runs of 3+ identical characters cut to 2 ("sooooo" -> "soo", "hhhhhh" -> "hh")."""
    return _REPEATS.sub(r"\1\1", unicodedata.normalize("NFC", word).lower())


def word_features(word: str) -> list[str]:
    """Character n-grams of one normalised word: 1-grams, 2-4-grams with space boundaries, and the whole word.

    The padded whole word (" wetin ") is a feature of its own for words of 3+ letters; shorter words are
    already covered by their padded 2-4-grams, so no feature is counted twice.
    """
    padded = f" {word} "
    feats = list(word)
    for n in (2, 3, 4):
        feats.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    if len(word) >= 3:
        feats.append(padded)
    return feats


def word_script(word: str) -> str:
    """The script of a word's first letter: cheap, and words rarely mix scripts."""
    for char in word:
        if unicodedata.category(char)[0] == "L":
            return script_of(char)
    return COMMON


def text_words(text: str) -> list[str]:
    """The normalised non-``univ`` words of ``text``."""
    return [normalize_word(w) for _, w in tokens(text) if w is not None]


@dataclass
class NgramIdentifier:
    """Multinomial naive Bayes over character n-grams, stored as raw counts so it can be saved and re-smoothed.

    The likelihood is factored by script: each word first picks its script (``P(script | language)``, once per
    word), then its n-grams are drawn from the language's distribution *within that script*. Without this a
    language written in two scripts (Moroccan Darija: Arabic script and Latin Arabizi) is penalised on every
    single n-gram of an Arabic-script tweet against a one-script neighbour (Algerian ``arq``), because half of
    its probability mass sits on Latin n-grams; measured on AfriSenti dev, ary accuracy went from 0.52 to
    the figure in ``docs/benchmarks.md``.

    Attributes:
        languages: Language codes, one per column of ``counts``.
        features: N-gram strings, one per row of ``counts``.
        counts: ``(F, C)`` int array, how often feature f occurred in the training text of language c.
        script_words: Per language, how many training words were written in each script (by first letter).
        alpha: Additive (Lidstone) smoothing of the per-language feature distributions.
        switch_prior: Per-word tagging's prior weight on languages other than the row's (0 = every word takes
            the row's language, 1 = words are tagged on their own characters alone).
        word_temperature: Divides a word's log-likelihood before the prior is added. A word's overlapping
            n-grams are far from independent, so its raw naive-Bayes evidence is counted several times over;
            4 (one per n-gram order) with ``switch_prior=0.3`` gave the smallest CMI error on synthetic
            code-mixed AfriSenti dev rows (``bench/langid_accuracy.py``).
        meta: Free-form provenance stored with the model (sources, row counts, build command).
    """

    languages: list[str]
    features: list[str]
    counts: np.ndarray
    script_words: dict[str, dict[str, int]]
    alpha: float = 0.1
    switch_prior: float = 0.3
    word_temperature: float = 4.0
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.counts.shape != (len(self.features), len(self.languages)):
            raise ValueError(
                f"counts has shape {self.counts.shape}, expected ({len(self.features)}, {len(self.languages)})"
            )
        if len(self.languages) < 2:
            raise ValueError("a language identifier needs at least two languages")
        self._index = {f: i for i, f in enumerate(self.features)}
        self._log_prob = _log_prob_by_script(self.features, self.counts, self.alpha)
        scripts = sorted({s for by_script in self.script_words.values() for s in by_script})
        table = np.array([[self.script_words.get(lang, {}).get(s, 0) for lang in self.languages] for s in scripts])
        table = table.reshape(len(scripts), len(self.languages)) + 1.0
        self._script_log_prob = dict(zip(scripts, np.log(table / table.sum(axis=0)), strict=True))

    @classmethod
    def fit(
        cls,
        pairs: Iterable[tuple[str, str]],
        max_features: int = 60_000,
        min_count: int = 2,
        alpha: float = 0.1,
        meta: dict[str, object] | None = None,
    ) -> NgramIdentifier:
        """Train from ``(text, language)`` pairs.

        Feature selection keeps each language's most frequent n-grams (``max_features`` shared out equally
        over languages, then pooled), so that a language with 1,600 training rows is not crowded out by one
        with 14,000, as a global frequency cut would do.

        Args:
            pairs: Training texts with their language codes (any strings, e.g. ISO 639-3).
            max_features: Upper bound on the vocabulary; also bounds the saved file (about 20 bytes a feature).
            min_count: Drop n-grams seen fewer times than this in a language (typos, one-off names).
            alpha: Smoothing, see the class attributes.
            meta: Provenance to store in the saved model.
        """
        per_lang: dict[str, Counter[str]] = {}
        scripts: dict[str, Counter[str]] = {}
        for text, lang in pairs:
            words = text_words(text)
            feats = per_lang.setdefault(lang, Counter())
            for word in words:
                feats.update(word_features(word))
            scripts.setdefault(lang, Counter()).update(map(word_script, words))
        languages = sorted(per_lang)
        quota = max(1, max_features // max(1, len(languages)))
        chosen: set[str] = set()
        for lang in languages:
            chosen.update(f for f, n in per_lang[lang].most_common(quota) if n >= min_count)
        features = sorted(chosen)
        counts = np.array([[per_lang[lang][f] for lang in languages] for f in features], dtype=np.int64)
        script_words = {lang: dict(sorted(scripts[lang].items())) for lang in languages}
        return cls(
            languages,
            features,
            counts.reshape(len(features), len(languages)),
            script_words,
            alpha=alpha,
            meta=dict(meta or {}),
        )

    def _loglik(self, words: Sequence[str]) -> np.ndarray:
        """log P(words | language) for each language, shape ``(C,)``; unknown n-grams and scripts are skipped."""
        index = self._index
        idx = [i for w in words for i in map(index.get, word_features(w)) if i is not None]
        total = self._log_prob[idx].sum(axis=0, dtype=np.float64) if idx else np.zeros(len(self.languages))
        for script, n in Counter(map(word_script, words)).items():
            if script in self._script_log_prob:
                total += n * self._script_log_prob[script]
        return total

    def predict_proba(self, text: str) -> dict[str, float]:
        """Posterior over languages with a uniform prior; uniform when the text has no known feature.

        Naive Bayes posteriors are overconfident (overlapping n-grams are not independent): use them to rank
        and to compare rows, not as calibrated probabilities.
        """
        return dict(zip(self.languages, _softmax(self._loglik(text_words(text))).tolist(), strict=True))

    def predict(self, text: str) -> tuple[str, float]:
        """The most probable language and its posterior."""
        post = _softmax(self._loglik(text_words(text)))
        best = int(post.argmax())
        return self.languages[best], float(post[best])

    def predict_words(self, text: str) -> list[tuple[str, str]]:
        """Tag every token with a language code or ``univ``; ambiguous words take the row's language.

        Each word's posterior is its own tempered likelihood times a prior that mixes the row posterior
        (weight ``1 - switch_prior``) with a uniform distribution (weight ``switch_prior``): a word moves to
        another language only when its characters favour it by more than the prior odds.
        """
        toks = tokens(text)
        per_word = [self._loglik([normalize_word(w)]) for _, w in toks if w is not None]
        if not per_word:
            return [(surface, UNIV) for surface, _ in toks]
        row_post = _softmax(np.sum(per_word, axis=0))
        prior = np.log((1.0 - self.switch_prior) * row_post + self.switch_prior / len(self.languages))
        tags = iter([self.languages[int(np.argmax(ll / self.word_temperature + prior))] for ll in per_word])
        return [(surface, UNIV if w is None else next(tags)) for surface, w in toks]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: counts per language as integer lists aligned with ``features``."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "alpha": self.alpha,
            "switch_prior": self.switch_prior,
            "word_temperature": self.word_temperature,
            "meta": self.meta,
            "languages": self.languages,
            "script_words": self.script_words,
            "features": self.features,
            "counts": {lang: self.counts[:, j].tolist() for j, lang in enumerate(self.languages)},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NgramIdentifier:
        """Inverse of :meth:`to_json`; refuses files of another format or a newer version."""
        if data.get("format") != FORMAT or not isinstance(data.get("version"), int):
            raise ValueError(f"not a {FORMAT} model (format={data.get('format')!r})")
        if data["version"] > FORMAT_VERSION:
            raise ValueError(f"model version {data['version']} is newer than this tunesmith reads ({FORMAT_VERSION})")
        languages = list(data["languages"])
        features = list(data["features"])
        counts = np.array([data["counts"][lang] for lang in languages], dtype=np.int64).T
        return cls(
            languages,
            features,
            counts.reshape(len(features), len(languages)),
            {lang: dict(data["script_words"][lang]) for lang in languages},
            alpha=float(data["alpha"]),
            switch_prior=float(data["switch_prior"]),
            word_temperature=float(data["word_temperature"]),
            meta=dict(data.get("meta") or {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write the model as compact UTF-8 JSON (readable, diffable, no pickle)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NgramIdentifier:
        """Read a model written by :meth:`save`."""
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def _log_prob_by_script(features: Sequence[str], counts: np.ndarray, alpha: float) -> np.ndarray:
    """log P(feature | language, script of the feature), shape ``(F, C)``, smoothed within each script."""
    groups: dict[str, list[int]] = {}
    for i, feat in enumerate(features):
        groups.setdefault(word_script(feat), []).append(i)
    log_prob = np.zeros(counts.shape, dtype=np.float32)
    for rows in groups.values():
        block = counts[rows] + alpha
        log_prob[rows] = np.log(block / block.sum(axis=0))
    return log_prob


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def default_model_path() -> Path:
    """Where the shipped model lives inside the installed package (see ``LANGID_ATTRIBUTION.md``)."""
    return Path(str(resources.files("tunesmith.data").joinpath(DEFAULT_MODEL)))


@lru_cache(maxsize=1)
def load_default() -> NgramIdentifier:
    """The shipped identifier: hau, ibo, pcm, yor, arq, ary (AfriSenti train) and eng; loaded once, on demand.

    Built by ``scripts/build_langid_model.py``; sources and licenses are in ``LANGID_ATTRIBUTION.md``.
    """
    path = default_model_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"the default language-ID model is missing at {path}; build it with scripts/build_langid_model.py"
        )
    return NgramIdentifier.load(path)
