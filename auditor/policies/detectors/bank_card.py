"""Bank card numbers: 13 to 19 digits, plain or in groups of four, with an issuer's prefix and
length, passing the Luhn check.

The Luhn check alone lets one random number in ten through, and chat is full of long numbers
(timestamps, message ids, order and tracking numbers). A card number starts with its scheme's
prefix (ISO/IEC 7812: the first digit names the industry) and has one of its lengths, which
rules out most of those: numbers starting 0, 1 or 7 (epoch-millisecond timestamps and 64-bit
message ids start with 1), `86` and a mobile number, a 14-digit `2026...` timestamp.

The prefixes accepted (`_SCHEMES`): Visa 4 (13, 16, 19 digits); Mastercard 51-55 and 2221-2720
(16); Maestro and other 5s (16-19); American Express 34 and 37 (15); Diners 300-305, 3095 and
36 (14-19); JCB 3528-3589 and Diners 38-39 (16-19); UnionPay 62 and 81, Discover and other 6s
(16-19); and the 9s of national schemes such as China's domestic 9558 cards (16 or 19).
Maestro's 12 to 15-digit numbers and other rare lengths are not found.
"""

from __future__ import annotations

import re

from auditor.policies.detectors.interface import ELEVEN_DIGITS, Detector, digits_only
from auditor.policies.detectors.resident_id import has_old_resident_id_shape, has_resident_id_shape

_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")  # 2d with its digits summed, as a digit

# (prefix, lengths): a number is a card number's shape when some prefix starts it and its length
# is one of that prefix's.
_SCHEMES: tuple[tuple[tuple[str, ...], frozenset[int]], ...] = (
    (("4",), frozenset((13, 16, 19))),
    ((*map(str, range(2221, 2721)), "51", "52", "53", "54", "55"), frozenset((16,))),
    (("50", "56", "57", "58", "59"), frozenset(range(16, 20))),
    (("34", "37"), frozenset((15,))),
    (("300", "301", "302", "303", "304", "305", "3095", "36"), frozenset(range(14, 20))),
    ((*map(str, range(3528, 3590)), "38", "39"), frozenset(range(16, 20))),
    (("6", "81"), frozenset(range(16, 20))),
    (("9",), frozenset((16, 19))),
)
_LENGTHS_BY_PREFIX = {prefix: lengths for prefixes, lengths in _SCHEMES for prefix in prefixes}


def has_issuer_shape(digits: str) -> bool:
    """Whether `digits` start with a card scheme's prefix and have one of its lengths."""
    size = len(digits)
    return any(
        size in lengths
        for cut in (1, 2, 3, 4)
        if (lengths := _LENGTHS_BY_PREFIX.get(digits[:cut])) is not None
    )


def luhn_ok(digits: str) -> bool:
    """The Luhn check: from the right, every second digit doubled (digits summed), total % 10.

    `digits` are ASCII digits; summed as bytes (each is `48 + d`) with no `int` per digit.
    """
    raw = digits.encode("ascii")
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)
    return total % 10 == 0


class BankCardDetector(Detector):
    name = "bank_card"
    description = (
        "Bank card number (13-19 digits with a card scheme's prefix and length, Luhn check; "
        "resident-ID-shaped numbers excluded)"
    )
    pattern = re.compile(
        r"[0-9](?<![0-9][0-9])"
        r"(?:[0-9]{3}[ -](?:[0-9]{4}[ -]){2}[0-9]{4}(?:[ -]?[0-9]{1,3})?(?![0-9])"
        r"|[0-9]{12,18}(?![0-9Xx]))"
    )
    digits = ELEVEN_DIGITS
    base_confidence = "low"
    context_words = ("银行卡", "卡号", "信用卡", "储蓄卡", "card", "visa", "unionpay", "银联")

    def canonical(self, raw: str) -> str:
        return digits_only(raw)

    def canonical_part(self, raw: str) -> str:
        return digits_only(raw)

    def is_valid(self, value: str) -> bool:
        return (
            has_issuer_shape(value)
            and luhn_ok(value)
            and not has_resident_id_shape(value)
            and not has_old_resident_id_shape(value)
        )
