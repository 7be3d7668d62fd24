"""PRC resident identity numbers: 18 characters with the GB 11643-1999 check digit, or the old
15-digit form.

The 15-digit numbers issued before 1999 (6-digit area, YYMMDD birth date in the 1900s, 3-digit
sequence) carry no check digit, and about one random 15-digit number in eighty has a plausible
province, city and date. So one is reported only with an identity word (`身份证`, `证件`, `id card`,
...) within `OLD_FORM_REACH` characters before or after it: with the word, a number of that
shape is an identity number, and it stays a high-confidence detection like the 18-digit form.
"""

from __future__ import annotations

import re
from datetime import date

from auditor.policies.detectors.interface import ELEVEN_DIGITS, Candidate, Detector

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


# The province codes of GB/T 2260 the old mainland numbers were issued under (71 Taiwan, 81-82
# Hong Kong and Macau never were).
_PROVINCES = frozenset(
    f"{code}"
    for low, high in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65))
    for code in range(low, high + 1)
)
OLD_FORM_WORDS = ("身份证", "证件", "身份号", "id card", "identity", "id no")
OLD_FORM_REACH = 20
_OLD_FORM_WORD = re.compile("|".join(map(re.escape, OLD_FORM_WORDS))).search


def has_old_resident_id_shape(value: str) -> bool:
    """15 ASCII digits: a mainland province, a city and county other than 00, and a valid
    YYMMDD birth date of the 1900s."""
    if len(value) != 15 or not (value.isascii() and value.isdigit()):
        return False
    if value[:2] not in _PROVINCES or value[2:4] == "00" or value[4:6] == "00":
        return False
    try:
        date.fromisoformat(f"19{value[6:12]}")
    except ValueError:
        return False
    return True


def is_resident_id(value: str) -> bool:
    """An id whose area, birth date and GB 11643 check digit are all valid."""
    return has_resident_id_shape(value) and check_digit(value[:17]) == value[17].upper()


class ResidentIdDetector(Detector):
    name = "resident_id"
    description = (
        "PRC resident ID number (18 characters, GB 11643-1999 check digit, or 6-8-4; "
        "the old 15 digits next to an identity word)"
    )
    # Plain, or as area, birth date and the rest (6-8-4) split by two spaces or two hyphens; or
    # the old 15 digits, plain.
    pattern = re.compile(
        r"[1-8](?<![0-9][1-8])[0-9]{5}"
        r"(?:(?:[0-9]{8}|(?P<s>[ -])[0-9]{8}(?P=s))[0-9]{3}[0-9Xx]|[0-9]{9})(?![0-9Xx])"
    )
    digits = ELEVEN_DIGITS
    base_confidence = "high"
    context_words = OLD_FORM_WORDS

    def canonical(self, raw: str) -> str:
        return raw.replace(" ", "").replace("-", "").upper()

    def find(self, text: str) -> list[Candidate]:
        return [
            each
            for each in super().find(text)
            if len(each.value) == 18 or _near_identity_word(text, each.start, each.end)
        ]

    def is_valid(self, value: str) -> bool:
        return is_resident_id(value) or has_old_resident_id_shape(value)


def _near_identity_word(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - OLD_FORM_REACH) : start]
    return _OLD_FORM_WORD((before + "\n" + text[end : end + OLD_FORM_REACH]).casefold()) is not None
