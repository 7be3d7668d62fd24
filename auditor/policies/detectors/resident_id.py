"""PRC resident identity numbers: 18 characters with the GB 11643-1999 check digit."""

from __future__ import annotations

import re
from datetime import date

from auditor.policies.detectors.interface import ELEVEN_DIGITS, Detector

_CHECK = "10X98765432"


def check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits (ISO 7064 MOD 11-2).

    The weight of digit `i` is `2 ** (17 - i) % 11` (7, 9, 10, 5, ... 2), and 13 is 2 modulo 11,
    so the weighted sum is, modulo 11, twice the digits read as a base-13 number: one `int`.
    """
    return _CHECK[2 * int(first17[:17], 13) % 11]


def has_resident_id_shape(value: str) -> bool:
    """18 characters, the first 17 ASCII digits, with a plausible area code and a birth date
    from 1900 to today, whatever the check digit."""
    first17 = value[:17]
    if (
        len(value) != 18
        or not (first17.isascii() and first17.isdigit())
        or value[0] not in "12345678"
    ):
        return False
    try:
        born = date.fromisoformat(value[6:14])  # YYYYMMDD, ISO 8601's basic format
    except ValueError:
        return False
    return born.year >= 1900 and born <= date.today()


def is_resident_id(value: str) -> bool:
    """An id whose area, birth date and GB 11643 check digit are all valid."""
    return has_resident_id_shape(value) and check_digit(value[:17]) == value[17].upper()


class ResidentIdDetector(Detector):
    name = "resident_id"
    description = "PRC resident ID number (18 characters, GB 11643-1999 check digit, or 6-8-4)"
    # Plain, or as area, birth date and the rest (6-8-4) split by two spaces or two hyphens.
    pattern = re.compile(
        r"[1-8](?<![0-9][1-8])[0-9]{5}(?:[0-9]{8}|(?P<s>[ -])[0-9]{8}(?P=s))"
        r"[0-9]{3}[0-9Xx](?![0-9Xx])"
    )
    digits = ELEVEN_DIGITS
    base_confidence = "high"
    context_words = ("身份证", "证件", "身份号", "id card", "identity", "id no")

    def canonical(self, raw: str) -> str:
        return raw.replace(" ", "").replace("-", "").upper()

    def is_valid(self, value: str) -> bool:
        return is_resident_id(value)
