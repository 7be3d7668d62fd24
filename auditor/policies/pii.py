"""Sensitive data in a text: the policy's detector rules behind one cheap combined prefilter.

Detectors see a view of the text in which fullwidth and other-style digits and letters are mapped
one-to-one to ASCII (`１３８…` is a mobile number too), so a detector's offsets are raw offsets.
Most texts hold no long digit run, `@`, dotted quad or `://`; for them the prefilter (a few
substring tests and one `search` starting with a digit) is the whole cost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from auditor.policies.detectors import DETECTORS, Detector
from auditor.policies.model import DetectorRule


@dataclass(frozen=True, slots=True)
class PiiHit:
    """A checked detection at `[start, end)` of the raw text, in code points."""

    rule: DetectorRule
    start: int
    end: int
    matched: str
    value: str
    confidence: str
    normalizations: tuple[str, ...]


def _view_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and folded.isascii():
        return folded
    value = unicodedata.decimal(char, None)
    return str(value) if value is not None else char


class _ViewTable(dict):
    """A one-to-one `str.translate` table to ASCII digits and letters, filled as chars appear."""

    def __missing__(self, code: int) -> int:
        value = ord(_view_char(chr(code)))
        self[code] = value
        return value


def _view_steps(raw: str, seen: str) -> tuple[str, ...]:
    if raw == seen:
        return ()
    steps = []
    if any(unicodedata.normalize("NFKC", a) == b != a for a, b in zip(raw, seen, strict=True)):
        steps.append("nfkc")
    if any(a != b != unicodedata.normalize("NFKC", a) for a, b in zip(raw, seen, strict=True)):
        steps.append("digits")
    return tuple(steps)


_Rule = tuple[DetectorRule, Detector, tuple[str, ...]]  # with its casefolded context words


class PiiScanner:
    """Runs the detector rules of a policy whose needle a text holds; built once per run."""

    def __init__(self, rules: Sequence[DetectorRule]) -> None:
        every: list[_Rule] = [
            (rule, DETECTORS[rule.detector](), tuple(w.casefold() for w in rule.context_words))
            for rule in rules
        ]
        by_literal: dict[str, list[_Rule]] = {}
        self._numeric: list[_Rule] = []
        fragments: dict[str, None] = {}
        for each in every:
            detector = each[1]
            for literal in detector.literals:
                by_literal.setdefault(literal, []).append(each)
            if detector.digits:
                self._numeric.append(each)
                fragments[detector.digits] = None
        self._literals = tuple(by_literal.items())
        self._digits = (
            re.compile(r"\d(?:" + "|".join(fragments) + ")").search if fragments else None
        )
        self._view = _ViewTable()

    def scan(self, text: str) -> list[PiiHit]:
        chosen: list[_Rule] | None = None
        for literal, rules in self._literals:
            if literal in text:
                chosen = rules if chosen is None else chosen + rules
        if self._digits is not None and self._digits(text) is not None:
            chosen = self._numeric if chosen is None else chosen + self._numeric
        if chosen is None:
            return []
        view = text if text.isascii() else text.translate(self._view)
        hits = []
        for rule, detector, words in dict.fromkeys(chosen, None) if len(chosen) > 1 else chosen:
            for candidate in detector.find(view):
                if rule.allow and any(fnmatchcase(candidate.value, glob) for glob in rule.allow):
                    continue
                start, end = candidate.start, candidate.end
                confidence = detector.base_confidence
                if confidence != "high" and words and _near(view, start, end, rule, words):
                    confidence = "high"
                raw = text[start:end]
                hits.append(
                    PiiHit(
                        rule,
                        start,
                        end,
                        raw,
                        candidate.value,
                        confidence,
                        _view_steps(raw, view[start:end]),
                    )
                )
        return hits


def _near(view: str, start: int, end: int, rule: DetectorRule, words: tuple[str, ...]) -> bool:
    """Whether a context word lies within `context_within` characters before or after the match."""
    reach = rule.context_within
    window = (view[max(0, start - reach) : start] + "\n" + view[end : end + reach]).casefold()
    return any(word in window for word in words)
