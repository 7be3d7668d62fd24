"""IPv4 addresses in dotted-decimal form, every octet 0 to 255 without leading zeros.

A four-part version number (`6.5.3.143`) has an address's shape, and most are valid octets. What
tells them apart is the word written in front: a dotted quad right after `version`, `build`,
`firmware`, `版本`, `固件` or the like (a colon, `号` or `为` between them at most) is a version and
is not reported; one after `v` or inside a longer dotted run never was.
"""

from __future__ import annotations

import re

from auditor.policies.detectors.interface import Candidate, Detector

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # 0 to 255, no leading zero
_OCTETS = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}").fullmatch

# Read backwards from the candidate in the casefolded text before it: the word must start a word
# (`server 10.0.0.1` ends with `ver`, which is no version).
_VERSION_BEFORE = re.compile(
    r"(?:(?<![a-z])(?:version|ver|build|release|rev|revision|firmware|fw|kernel|sdk)"
    r"|版本号?|固件|内核|补丁|构建)"
    r"[ \t]*(?:号|为|是|[:：=#])?[ \t]*\Z"
)
_LOOK_BACK = 24  # enough for the longest word and its separators


def after_version_word(text: str, start: int) -> bool:
    """Whether a version word ends right before `start` in `text`."""
    return _VERSION_BEFORE.search(text[max(0, start - _LOOK_BACK) : start].casefold()) is not None


class Ipv4Detector(Detector):
    name = "ipv4"
    description = "IPv4 address (not a version number: not after `v`, `version`, `版本`, ...)"
    # Not after a digit or a dot (part of a longer dotted run) nor after `v` (`v2.3.10.1`).
    pattern = re.compile(
        r"[0-9](?<![0-9.Vv][0-9])[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![0-9]|\.[0-9])"
    )
    digits = r"\.\d{1,3}\.\d"
    base_confidence = "low"
    context_words = ("ip", "服务器", "地址", "server", "host")

    def find(self, text: str) -> list[Candidate]:
        return [each for each in super().find(text) if not after_version_word(text, each.start)]

    def is_valid(self, value: str) -> bool:
        return _OCTETS(value) is not None
