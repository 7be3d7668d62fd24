"""Bank card numbers: 13 to 19 digits, plain or in groups of four, passing the Luhn check."""

from __future__ import annotations

import re

from auditor.policies.detectors.interface import ELEVEN_DIGITS, Detector, digits_only
from auditor.policies.detectors.resident_id import has_resident_id_shape

_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")  # 2d with its digits summed, as a digit


def luhn_ok(digits: str) -> bool:
    """The Luhn check: from the right, every second digit doubled (digits summed), total % 10.

    `digits` are ASCII digits; summed as bytes (each is `48 + d`) with no `int` per digit.
    """
    raw = digits.encode("ascii")
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)
    return total % 10 == 0


class BankCardDetector(Detector):
    name = "bank_card"
    description = "Bank card number (13-19 digits, Luhn check; resident-ID-shaped numbers excluded)"
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

    def is_valid(self, value: str) -> bool:
        return 13 <= len(value) <= 19 and luhn_ok(value) and not has_resident_id_shape(value)
