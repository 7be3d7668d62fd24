"""Mainland China mobile numbers: 11 digits starting 13 to 19, optionally +86 and grouped."""

from __future__ import annotations

import re

from auditor.policies.detectors.interface import (
    DASHES,
    ELEVEN_DIGITS,
    GROUP_SEPARATORS,
    Detector,
    digits_only,
)

_PREFIX = re.compile(r"^(?:\+|00)86[ -]?").sub  # the country code written before a glob's digits


class MobileDetector(Detector):
    name = "mobile"
    description = (
        "Chinese mobile number (1[3-9] and nine digits, optional +86, 3-4-4 or 4-3-4 groups)"
    )
    # Not after a digit nor inside a dotted run of digits (`0.139…`, `192.168.0255.4111`). After
    # the third digit: 3-4-4 split by spaces or hyphens at will, or by a dot or a dash twice
    # (`139.1234.5678`; one dot is a decimal point), or 4-3-4 split twice alike.
    pattern = re.compile(
        r"[+81](?<![0-9][+81])(?<![0-9]\.[+81])"  # the first character; then by what it was:
        r"(?:(?<=\+)86[ -]?1|(?<=8)6[ -]?1|(?<=1))"  # +86, 86 or no prefix, to the leading 1
        r"[3-9][0-9]"
        rf"(?:[ -]?[0-9]{{4}}[ -]?|(?P<s>[.{DASHES}])[0-9]{{4}}(?P=s)"
        rf"|[0-9](?P<g>[{GROUP_SEPARATORS}])[0-9]{{3}}(?P=g))"
        r"[0-9]{4}(?![0-9]|\.[0-9])"
    )
    digits = ELEVEN_DIGITS
    base_confidence = "low"
    context_words = ("手机", "电话", "联系", "号码", "phone", "mobile", "tel", "call")

    def canonical(self, raw: str) -> str:
        digits = digits_only(raw)
        return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits

    def canonical_part(self, raw: str) -> str:
        return digits_only(_PREFIX(raw, 1) if raw.startswith(("+", "00")) else raw)

    def is_valid(self, value: str) -> bool:
        return len(value) == 11 and value[0] == "1" and value[1] in "3456789"
