"""PII redaction before a prompt or answer is stored: emails, phone numbers, card and IBAN-like numbers, IPs.

Card numbers must pass the Luhn checksum. The other patterns are deliberately broad (a false positive costs
a token of text; a false negative stores someone's phone number). Phone numbers cover international
(+234 803 123 4567) and local (0803-123-4567) forms with at least 9 digits, so years, prices and counts
are left alone.
"""

from __future__ import annotations

import hashlib
import re

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){3,7}(?:[ ]?[A-Z0-9]{1,3})?\b")),
    ("CARD", re.compile(r"\b\d{4}(?:[ -]?\d{4}){2,3}(?:[ -]?\d{1,3})?\b")),
    ("PHONE", re.compile(r"(?<![\w])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,5}(?![\w])")),
    ("IP", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
)


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def luhn(number: str) -> bool:
    """The checksum every payment card number passes (and 9 in 10 other digit strings fail)."""
    digits = [int(c) for c in number if c.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def redact(text: str) -> tuple[str, int]:
    """``text`` with each PII span replaced by ``[KIND]``, and how many spans were replaced."""
    count = 0
    for kind, pattern in PATTERNS:

        def replace(match: re.Match[str], kind: str = kind) -> str:
            nonlocal count
            if (kind == "PHONE" and _digits(match.group()) < 9) or (kind == "CARD" and not luhn(match.group())):
                return match.group()
            count += 1
            return f"[{kind}]"

        text = pattern.sub(replace, text)
    return text, count


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
