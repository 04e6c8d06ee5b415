from __future__ import annotations

import unicodedata
from pathlib import Path

from tunesmith.data.homoglyph import (
    MixedWord,
    find_mixed_script_words,
    homoglyph_reason,
    letter_script,
    mixed_script_reason,
    repair_homoglyphs,
)

ASSETS = Path(__file__).parents[1] / "assets"


def test_letter_scripts_see_through_styled_letters_and_skip_modifiers() -> None:
    assert letter_script("a") == "LATIN" and letter_script("ọ") == "LATIN" and letter_script("ɛ") == "LATIN"
    assert letter_script("ϙ") == "GREEK" and letter_script("а") == "CYRILLIC"
    assert letter_script("𝑐") == "LATIN" and letter_script("º") == "LATIN"  # compatibility forms
    assert letter_script("ʼ") is None and letter_script("1") is None and letter_script("\u0301") is None


def test_hand_made_look_alikes_are_found_and_repaired() -> None:
    assert find_mixed_script_words("an аpple") == [MixedWord("аpple", ("CYRILLIC", "LATIN"), "apple")]
    text, changes = repair_homoglyphs("bάd gοοd ϙmϙ, Ρaris")
    assert text == "bád good ọmọ, Paris"
    assert changes == [("bάd", "bád"), ("gοοd", "good"), ("ϙmϙ", "ọmọ"), ("Ρaris", "Paris")]


def test_greek_accents_map_to_the_same_latin_accents() -> None:
    # Tonos (acute) and varia (grave), precomposed or as a combining mark after the base letter.
    for greek, latin in [("ά", "á"), ("έ", "é"), ("ί", "í"), ("ό", "ó"), ("ύ", "ú"), ("ὺ", "ù"), ("ὸ", "ò")]:
        assert repair_homoglyphs(f"k{greek}n")[0] == f"k{latin}n"
        decomposed = unicodedata.normalize("NFD", greek)
        assert unicodedata.normalize("NFC", repair_homoglyphs(f"k{decomposed}n")[0]) == f"k{latin}n"
    assert repair_homoglyphs("ϙ̀rϙ̀")[0] == "ọ̀rọ̀"


def test_epsilon_is_open_e_only_in_texts_written_with_open_vowels() -> None:
    assert repair_homoglyphs("kεlε")[0] == "kele"  # Yorùbá, Igbo, Hausa: no ɛ in the alphabet
    assert repair_homoglyphs("kεlε ɔba")[0] == "kɛlɛ ɔba"  # Akan, Ewe, Lingala: ɛ and ɔ


def test_single_script_words_and_unknown_mixes_are_left_alone() -> None:
    clean = "λόγος ƙasaʼ 𝑐ℎ𝑖𝑙𝑑 1.5ºC 日本語だ ọ̀rẹ́ Москва #COVIDー19"
    assert find_mixed_script_words(clean) == []
    assert repair_homoglyphs(clean) == (clean, [])
    found = find_mixed_script_words("Ωą Ἀthens")  # omega has no Latin twin; breathing marks are Greek-only
    assert [(w.word, w.suggestion) for w in found] == [("Ωą", None), ("Ἀthens", None)]
    assert repair_homoglyphs("Ωą Ἀthens") == ("Ωą Ἀthens", [])


def test_real_ntrex_yoruba_lines() -> None:
    lines = (ASSETS / "ntrex_yor_homoglyphs.txt").read_text(encoding="utf-8").splitlines()
    found = [[(w.word, w.suggestion) for w in find_mixed_script_words(line)] for line in lines]
    assert found == [
        [("ϙmϙ", "ọmọ"), ("òmὺgò", "òmùgò")],
        [],
        [("kὺnrin", "kùnrin"), ("ϙgbòn", "ọgbòn")],
        [("jὺlọ́", "jùlọ́")],
        [("ìbànisϙrϙ", "ìbànisọrọ")],
    ]
    for line in lines:
        repaired, _ = repair_homoglyphs(line)
        assert not any(letter_script(ch) == "GREEK" for ch in repaired)
        assert find_mixed_script_words(repaired) == []
    assert repair_homoglyphs(lines[1]) == (lines[1], [])


def test_reasons_name_the_words() -> None:
    _, changes = repair_homoglyphs("ϙmϙ òmὺgò")
    assert homoglyph_reason(changes) == "repaired look-alike letters in 2 words: ϙmϙ→ọmọ, òmὺgò→òmùgò"
    assert mixed_script_reason(find_mixed_script_words("Ωą")) == "mixed-script words: Ωą (GREEK+LATIN)"
