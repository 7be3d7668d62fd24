"""The interface every sensitive-data detector implements: find candidates, then check them.

A detector is a regular expression for candidates plus a check that rejects look-alikes (a wrong
GB 11643 check digit, a failed Luhn sum, an octet above 255). It also names what any text holding
a candidate must contain: `literals` (substrings) or `digits` (a regex that follows a first
digit). The engine tests their union once per text and runs the detectors only on texts that
pass. Detectors see text whose fullwidth and other-style digits and letters were mapped
one-to-one to ASCII, so their offsets are raw offsets; `literals` and `digits` are spelt as that
view spells them (`@`, not also `＠`): the prefilter reads the view of a text the view reshapes.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple


class Candidate(NamedTuple):
    """A checked match: `start`/`end` are code-point offsets, `value` the canonical form
    (a NamedTuple: one is built per match, several times faster than a frozen dataclass)."""

    start: int
    end: int
    value: str


class Detector(ABC):
    """One kind of sensitive data; subclasses set the class variables and implement `is_valid`."""

    name: ClassVar[str]
    description: ClassVar[str]
    pattern: ClassVar[re.Pattern[str]]
    literals: ClassVar[tuple[str, ...]] = ()
    digits: ClassVar[str] = ""
    base_confidence: ClassVar[str] = "high"
    context_words: ClassVar[tuple[str, ...]] = ()

    def find(self, text: str) -> list[Candidate]:
        """The checked candidates in `text`, in order (a list: cheaper to build than to resume
        a generator for each, and most texts hold none)."""
        found = []
        for match in self.pattern.finditer(text):
            value = self.canonical(match.group())
            if self.is_valid(value):
                found.append(_new(Candidate, (match.start(), match.end(), value)))
        return found

    def canonical(self, raw: str) -> str:
        """The form a value is checked, compared with the allowlist and reported in."""
        return raw

    def allow_form(self, glob: str) -> str:
        """An allowlist glob in canonical form, so it compares with values as they are reported:
        `138-0013-8000` allows the mobile number `13800138000`. A glob without wildcards is a
        value, canonical as one; in one with wildcards each literal run between them is made
        canonical on its own, and `*`, `?` and `[...]` are left as they are."""
        if not _GLOB_PARTS_SPECIAL.search(glob):
            return self.canonical(glob)
        return "".join(
            part if _GLOB_SPECIAL.fullmatch(part) else self.canonical_part(part)
            for part in _GLOB_PARTS.findall(glob)
        )

    def canonical_part(self, raw: str) -> str:
        """The canonical form of a run of characters inside a value (see `allow_form`)."""
        return self.canonical(raw)

    @abstractmethod
    def is_valid(self, value: str) -> bool:
        """Whether a candidate in canonical form passes the detector's check."""


_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)

# fnmatch's wildcards: `*`, `?` and a closed bracket expression (`[` alone is a literal)
_GLOB_SPECIAL = re.compile(r"\*|\?|\[!?\]?[^\]]*\]")
_GLOB_PARTS_SPECIAL = re.compile(r"[*?]|\[!?\]?[^\]]*\]")
_GLOB_PARTS = re.compile(r"\*|\?|\[!?\]?[^\]]*\]|\[|[^*?\[]+")

# What the numeric detectors accept between two groups of digits: a space, a dot, a hyphen, and
# the Unicode hyphens, dashes (a word processor turns `-` into `–`) and minus sign. Written to go
# inside a regex class: `-` comes last.
DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
GROUP_SEPARATORS = f" .{DASHES}-"

# A gap between two groups as people type it: one separator, two spaces, or a hyphen or dash
# with a space on each side (`6222 - 0212`). The detectors' view has made a fullwidth hyphen
# `-` and an ideographic space ` ` ASCII.
GROUP_GAP = rf"(?:[{GROUP_SEPARATORS}]|  | [{DASHES}-] )"

# After a first digit: eleven digits in all, one gap at most between two. Mobile numbers (3-4-4,
# 4-3-4), resident IDs (plain or 6-8-4) and card numbers (plain, 4-4-4-4, 8-8) all hold such a
# run and order numbers rarely do, so the numeric detectors share this one prefilter branch.
ELEVEN_DIGITS = rf"(?:{GROUP_GAP}?\d){{10}}"


_NOT_DIGITS = re.compile(r"\D+")


def digits_only(raw: str) -> str:
    return raw if raw.isdigit() else _NOT_DIGITS.sub("", raw)
