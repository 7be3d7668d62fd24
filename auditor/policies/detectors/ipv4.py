"""IPv4 addresses in dotted-decimal form, every octet 0 to 255 without leading zeros."""

from __future__ import annotations

import re

from auditor.policies.detectors.interface import Detector

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # 0 to 255, no leading zero
_OCTETS = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}").fullmatch


class Ipv4Detector(Detector):
    name = "ipv4"
    description = "IPv4 address"
    # Not after a digit or a dot (part of a longer dotted run) nor after `v` (`v2.3.10.1`).
    pattern = re.compile(
        r"[0-9](?<![0-9.Vv][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![0-9]|\.[0-9])"
    )
    digits = r"\.\d{1,3}\.\d"
    base_confidence = "low"
    context_words = ("ip", "服务器", "地址", "server", "host")

    def is_valid(self, value: str) -> bool:
        return _OCTETS(value) is not None
