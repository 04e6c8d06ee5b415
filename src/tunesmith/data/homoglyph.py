"""Mixed-script words (homoglyphs): Greek or Cyrillic look-alike letters inside Latin-script words.

Text typed on a keyboard without the right layout, or converted by a broken font mapping, ends up with
letters that look right and are wrong: NTREX-128's Yorùbá has ``ϙmϙ`` (GREEK SMALL LETTER ARCHAIC KOPPA)
for ``ọmọ`` and ``òmὺgò`` (GREEK UPSILON WITH VARIA) for ``òmùgò``. A tokenizer sees different symbols,
so the word is split into rare pieces, and a model trained on it learns to emit Greek. Such words are easy
to find — a word should be written in one script — and, for the common look-alikes, easy to repair.

The script of a letter is the first word of the Unicode name of its compatibility base (``NFKD``), so
styled letters such as ``𝑐ℎ`` or ``º`` count as Latin and only real script mixes are reported. Modifier
letters (``ʼ`` in Hausa) have no script of their own here.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import NamedTuple

# Combining marks are part of a word (Yorùbá tone marks on dotted vowels are often decomposed).
_WORD = re.compile(r"(?:[^\W\d_]|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+")
_LETTER_CATEGORIES = {"Lu", "Ll", "Lt", "Lo"}
# Scripts that share words by design, named by the Unicode name's first word.
_SCRIPT_ALIASES = {"CJK": "HAN", "HIRAGANA": "HAN", "KATAKANA": "HAN", "KATAKANA-HIRAGANA": "HAN"}
LATIN = "LATIN"
# Breathings, perispomeni and iota subscript exist only in Greek: a letter carrying one is really Greek.
_GREEK_MARKS = frozenset("\u0313\u0314\u0342\u0343\u0344\u0345")

# Look-alike base letters -> Latin. Accented forms are handled by decomposition: Greek tonos/oxia
# (ά έ ί ό ύ) and varia (ὰ ὲ ὶ ὸ ὺ) decompose to a base letter plus the same combining acute/grave that
# Latin á é í ó ú / à è ì ò ù use, so mapping the base and recomposing repairs every accented variant.
CONFUSABLES: dict[str, str] = {
    # Greek lowercase
    "α": "a",
    "ε": "e",  # or Latin open e (ɛ) in texts that use open vowels: see _OPEN_E
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "υ": "u",
    "χ": "x",
    "γ": "y",
    "ϲ": "c",
    "ϳ": "j",
    "ϙ": "ọ",  # archaic koppa: the round letter with a tail stands in for Yorùbá o-dot-below (NTREX)
    # Greek uppercase
    "Α": "A",
    "Β": "B",
    "Ε": "E",  # capital epsilon looks like E, never like Ɛ
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
    "Ϲ": "C",
    "Ϳ": "J",
    "Ϙ": "Ọ",
    "Ԑ": "Ɛ",
    # Cyrillic lowercase
    "а": "a",
    "е": "e",
    "о": "o",
    "р": "p",
    "с": "c",
    "у": "y",
    "х": "x",
    "і": "i",
    "ј": "j",
    "ѕ": "s",
    "һ": "h",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "ӏ": "l",
    "ԑ": "e",  # reversed ze, the Cyrillic twin of ɛ: see _OPEN_E
    # Cyrillic uppercase
    "А": "A",
    "В": "B",
    "Е": "E",
    "К": "K",
    "М": "M",
    "Н": "H",
    "О": "O",
    "Р": "P",
    "С": "C",
    "Т": "T",
    "Х": "X",
    "У": "Y",
    "І": "I",
    "Ј": "J",
    "Ѕ": "S",
    "Ԛ": "Q",
    "Ԝ": "W",
    "Ӏ": "I",
}


# Unicode's confusables map epsilon to Latin open e (ɛ). Languages written with ɛ/ɔ (Akan, Ewe, Lingala,
# Bambara, ...) want that; Yorùbá, Igbo and Hausa have no ɛ, so there epsilon stands for e.
_OPEN_E = {"ε": "ɛ", "ԑ": "ɛ"}
_OPEN_VOWELS = frozenset("ɛƐɔƆ")


_REPAIRABLE = re.compile("[\u0370-\u03ff\u1f00-\u1fff\u0400-\u052f]")


class MixedWord(NamedTuple):
    """A word whose letters come from more than one script, and its Latin repair when one is known."""

    word: str
    scripts: tuple[str, ...]
    suggestion: str | None


@functools.lru_cache(maxsize=65536)
def letter_script(ch: str) -> str | None:
    """The script of a letter (``LATIN``, ``GREEK``, ``CYRILLIC``, ...), or None for non-letters (cached:
    this runs on every character of every row)."""
    if unicodedata.category(ch) not in _LETTER_CATEGORIES:
        return None
    base = unicodedata.normalize("NFKD", ch)[0]
    name = unicodedata.name(base, "")
    if not name:
        return None
    script = name.split(" ", 1)[0]
    return _SCRIPT_ALIASES.get(script, script)


def word_scripts(word: str) -> tuple[str, ...]:
    """The sorted scripts of a word's letters; more than one means a mixed-script word."""
    return tuple(sorted({s for s in map(letter_script, word) if s is not None}))


def uses_open_vowels(text: str) -> bool:
    """Whether a text is written with Latin open vowels (ɛ, ɔ), which decides what epsilon stands for."""
    return any(ch in _OPEN_VOWELS for ch in text)


def to_latin(ch: str, open_vowels: bool = False) -> str | None:
    """The Latin look-alike of one character (keeping its accents), or None if it has none."""
    table = {**CONFUSABLES, **_OPEN_E} if open_vowels else CONFUSABLES
    if ch in table:
        return table[ch]
    decomposed = unicodedata.normalize("NFD", ch)
    base, marks = decomposed[0], decomposed[1:]
    if base not in table or not all(unicodedata.combining(m) and m not in _GREEK_MARKS for m in marks):
        return None
    return unicodedata.normalize("NFC", table[base] + marks)


def latin_repair(word: str, open_vowels: bool = False) -> str | None:
    """The word with every non-Latin letter replaced by its Latin look-alike, or None if one has none.

    Only words that already contain Latin letters are repaired: a whole Greek or Cyrillic word is a word of
    that language, not a typo, and a mix with letters we cannot map is left for a person to judge.
    """
    if LATIN not in word_scripts(word):
        return None
    out = []
    for ch in word:
        script = letter_script(ch)
        if script is None or script == LATIN:
            out.append(ch)
            continue
        latin = to_latin(ch, open_vowels)
        if latin is None:
            return None
        out.append(latin)
    return "".join(out)


def find_mixed_script_words(text: str) -> list[MixedWord]:
    """Every word of ``text`` that mixes scripts, in order, with its scripts and proposed repair."""
    found: list[MixedWord] = []
    if text.isascii():  # one script only
        return found
    open_vowels = uses_open_vowels(text)
    for match in _WORD.finditer(text):
        word = match.group()
        scripts = word_scripts(word)
        if len(scripts) > 1:
            found.append(MixedWord(word, scripts, latin_repair(word, open_vowels)))
    return found


def repair_homoglyphs(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Cleaning step: replace look-alike letters in mixed-script words; return the text and ``(old, new)``.

    Words without a full repair are left unchanged (see :func:`find_mixed_script_words` to flag them).
    The text is otherwise untouched, so the step composes with any normalisation before or after it.
    """
    changes: list[tuple[str, str]] = []
    if not _REPAIRABLE.search(text):  # every look-alike we map is Greek or Cyrillic
        return text, changes
    open_vowels = uses_open_vowels(text)

    def fix(match: re.Match[str]) -> str:
        word = match.group()
        if len(word_scripts(word)) < 2:
            return word
        repaired = latin_repair(word, open_vowels)
        if repaired is None:
            return word
        changes.append((word, repaired))
        return repaired

    return _WORD.sub(fix, text), changes


def homoglyph_reason(changes: list[tuple[str, str]]) -> str:
    """A change note for a repaired row, e.g. ``repaired look-alike letters in 2 words: ϙmϙ→ọmọ, ...``."""
    shown = ", ".join(f"{old}→{new}" for old, new in changes[:5])
    more = f" (+{len(changes) - 5} more)" if len(changes) > 5 else ""
    plural = "word" if len(changes) == 1 else "words"
    return f"repaired look-alike letters in {len(changes)} {plural}: {shown}{more}"


def mixed_script_reason(found: list[MixedWord]) -> str:
    """A flag note for a row with mixed-script words, naming the scripts so a person can judge."""
    shown = ", ".join(f"{w.word} ({'+'.join(w.scripts)})" for w in found[:5])
    more = f" (+{len(found) - 5} more)" if len(found) > 5 else ""
    return f"mixed-script words: {shown}{more}"
