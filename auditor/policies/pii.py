"""Sensitive data in a text: the policy's detector rules behind one cheap combined prefilter.

Detectors see a view of the text in which fullwidth and other-style digits and letters are mapped
one-to-one to ASCII (`１３８…` is a mobile number too), so a detector's offsets are raw offsets.
Most texts hold no long digit run, `@`, dotted quad or `://`; for them the prefilter (a few
substring tests and one `search` starting with a digit) is the whole cost. A caller that looks
for the substrings (`needles`) in a pass it makes anyway (the keyword automaton) can say that a
text holds none, and only the digit search is left. The prefilter reads what the detectors will
read: a text holding a character that the view turns into one the prefilter looks for (`①`,
`－`, `＠`, a no-break space) is filtered through its view, so a mobile number typed with
fullwidth hyphens is found whatever else the text holds.

A detection no context word confirms keeps its detector's low confidence and is rated one
severity level below its rule (or at the rule's `low_confidence_severity`): about one random
16-digit number in ten passes the Luhn check, and a version string reads as an IPv4 address.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from fnmatch import translate
from functools import cache
from typing import Any, NamedTuple

from auditor.findings import SEVERITIES
from auditor.policies.detectors import DETECTORS, Detector
from auditor.policies.model import DetectorRule


class PiiHit(NamedTuple):
    """A checked detection at `[start, end)` of the raw text, in code points, with the
    severity its confidence gives it (see `low_confidence_severity`)."""

    rule: DetectorRule
    start: int
    end: int
    matched: str
    value: str
    confidence: str
    normalizations: tuple[str, ...]
    severity: str
    displayed: str | None = None
    """What a reader sees when found in the displayed order (see `auditor.policies.display`)."""


def low_confidence_severity(rule: DetectorRule) -> str:
    """The severity of the rule's detections that no context word confirms."""
    if rule.low_confidence_severity is not None:
        return rule.low_confidence_severity
    return SEVERITIES[max(0, SEVERITIES.index(rule.severity) - 1)]


def _view_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) == 1 and folded.isascii():
        return folded
    value = unicodedata.decimal(char, None)
    return str(value) if value is not None else char


@cache
def _view_changes() -> dict[str, str]:
    """Every character of the Basic Multilingual Plane the view changes, with what it becomes
    (found once, some 20 ms)."""
    return {char: seen for char in map(chr, range(0x10000)) if (seen := _view_char(char)) != char}


def _class_of(chars: Iterable[str]) -> str:
    """A class of `chars` and every character beyond the Basic Multilingual Plane, which may
    change too: the regex engine tests a class of plane-0 characters plus one range in constant
    time a character, where naming characters beyond the plane makes it try each in turn."""
    return f"[{re.escape(''.join(chars))}\U00010000-\U0010ffff]"


@cache
def _view_sub() -> Callable[..., str]:
    """The `sub` that makes the view detectors see, with `_viewed` for each character it finds.

    The view maps each character on its own (`_view_char`), so offsets stay raw offsets. A
    Chinese text holds a few characters that change (`，`, `：`, fullwidth digits) among many
    that stay; `str.translate` would look each one up (about 50 ns apiece outside ASCII), the
    pattern passes over those at the regex engine's speed.
    """
    return re.compile(_class_of(_view_changes())).sub


def _viewed(match: re.Match[str]) -> str:
    char = match.group()
    return _view_changes().get(char) or _view_char(char)  # the latter beyond the plane


def view_of(text: str) -> str:
    """The text as detectors read it (same length: offsets in it are offsets in `text`)."""
    return text if text.isascii() else _view_sub()(_viewed, text)


def _view_steps(raw: str, seen: str) -> tuple[str, ...]:
    if raw == seen:
        return ()
    steps = []
    if any(unicodedata.normalize("NFKC", a) == b != a for a, b in zip(raw, seen, strict=True)):
        steps.append("nfkc")
    if any(a != b != unicodedata.normalize("NFKC", a) for a, b in zip(raw, seen, strict=True)):
        steps.append("digits")
    return tuple(steps)


# A rule with its detector, the `search` of its context words (None when they cannot raise its
# confidence), the `match` of its allowlist and the severity of its low-confidence detections.
_Rule = tuple[
    DetectorRule, Detector, Callable[[str], object] | None, Callable[[str], object] | None, str
]
_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)


def _context(words: Sequence[str]) -> Callable[[str], object] | None:
    """One `search` for any of a rule's context words in a casefolded window (None: no words)."""
    if not words:
        return None
    return re.compile("|".join(re.escape(word.casefold()) for word in words)).search


def _allowlist(detector: Detector, globs: Sequence[str]) -> Callable[[str], object] | None:
    """One `match` for a rule's allowlist: `fnmatchcase` against each glob, in a single call.

    Values are compared in canonical form (digits alone, lower case, ...), so each glob is read
    as the detector reads a text (`view_of`) and made canonical: `138-0013-8000`, `＋86 138 0013
    8000` and `13800138000` allow the same number."""
    if not globs:
        return None
    forms = (detector.allow_form(view_of(glob)) for glob in globs)
    return re.compile("|".join(translate(form) for form in forms)).match


class PiiScanner:
    """Runs the detector rules of a policy whose needle a text holds; built once per run."""

    def __init__(self, rules: Sequence[DetectorRule]) -> None:
        every: list[_Rule] = []
        for rule in rules:
            detector = DETECTORS[rule.detector]()
            low = detector.base_confidence != "high"
            context = _context(rule.context_words) if low else None
            lowered = low_confidence_severity(rule) if low else rule.severity
            every.append((rule, detector, context, _allowlist(detector, rule.allow), lowered))
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
        numeric = re.compile(r"\d(?:" + "|".join(fragments) + ")") if fragments else None
        self._digits = numeric.search if numeric is not None else None
        read = _alphabet(numeric.pattern) if numeric is not None else set()
        if read is not None:
            read.update(char for literal, _rules in self._literals for char in literal)
        reshaping = [c for c, seen in _view_changes().items() if read is None or seen in read]
        self._reshaped = re.compile(_class_of(reshaping)).search
        self.digit_blind = not any(
            char in "0123456789" for literal, _rules in self._literals for char in literal
        ) and (numeric is None or _digit_blind(numeric))

    @property
    def needles(self) -> tuple[str, ...]:
        """The substrings the prefilter looks for (besides a run of digits)."""
        return tuple(literal for literal, _rules in self._literals)

    def scan(self, text: str, needles: bool = True) -> list[PiiHit]:
        """The checked detections in `text`; `needles=False` says it holds none of `needles`."""
        chosen = self.candidates(text, needles)
        return self.detect(text, chosen) if chosen is not None else []

    def candidates(
        self, text: str, needles: bool = True, digits: bool = True
    ) -> list[_Rule] | None:
        """The rules the prefilter lets through for `text` (None for none), in order, once each.
        When `digit_blind`, they are the same for texts that differ only in their ASCII digits.

        `needles=False` says the text holds none of `needles`, and `digits=False` that it holds
        no ASCII digit, so the numeric detectors' regex, which tries every position, need not
        run: any other digit reshapes the text. A text the view reshapes for the prefilter is
        filtered through its view, where the caller's word on either (read from the raw text)
        does not hold.
        """
        if not text.isascii() and self._reshaped(text):
            text, needles, digits = view_of(text), True, True
        chosen: list[_Rule] | None = None
        if needles:
            for literal, rules in self._literals:
                if literal in text:
                    chosen = rules if chosen is None else _union(chosen, rules)
        if digits and self._digits is not None and self._digits(text) is not None:
            chosen = self._numeric if chosen is None else _union(chosen, self._numeric)
        return chosen

    def detect(self, text: str, chosen: list[_Rule]) -> list[PiiHit]:
        """The checked detections of the `candidates` rules in `text`."""
        view = view_of(text)
        hits = []
        for rule, detector, context, allowed, lowered in chosen:
            for start, end, value in detector.find(view):
                if allowed is not None and allowed(value) is not None:
                    continue
                confidence, severity = detector.base_confidence, lowered
                if context is not None and _near(view, start, end, rule, context):
                    confidence, severity = "high", rule.severity
                raw = text[start:end]
                steps = _view_steps(raw, view[start:end])
                hit = (rule, start, end, raw, value, confidence, steps, severity, None)
                hits.append(_new(PiiHit, hit))
        return hits


def _union(first: list[_Rule], second: list[_Rule]) -> list[_Rule]:
    """`first`, then the rules of `second` it lacks (a rule's tuple is equal only to itself)."""
    return first + [each for each in second if not any(each is rule for rule in first)]


def _leaves(pattern: str, flags: int = 0) -> Iterator[tuple[str, Any]]:
    """The leaf items of `pattern`'s parsed form, as (op name, value): literals, ranges,
    categories, anchors and the like, with groups, repeats, alternatives, classes and
    lookarounds opened up. Read with the stdlib's own parser; if that is absent or changed the
    error propagates, and each caller assumes the worst."""
    from re import _parser  # type: ignore[attr-defined]

    def walk(items: Iterable[tuple[Any, Any]]) -> Iterator[tuple[str, Any]]:
        for op, value in items:
            name = str(op)
            if name == "IN":
                yield from walk(value)
            elif name == "SUBPATTERN":
                yield from walk(value[-1].data)
            elif name == "ATOMIC_GROUP":
                yield from walk(value.data)
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                yield from walk(value[2].data)
            elif name == "BRANCH":
                for branch in value[1]:
                    yield from walk(branch.data)
            elif name in ("ASSERT", "ASSERT_NOT"):
                yield from walk(value[1].data)
            else:
                yield name, value

    return walk(_parser.parse(pattern, flags).data)


_CATEGORY_CHARS = {"CATEGORY_DIGIT": "0123456789", "CATEGORY_SPACE": " \t\n\r\f\v"}


def _alphabet(pattern: str) -> set[str] | None:
    """The characters a match of `pattern` can hold, as the view spells them (`\\d` an ASCII
    digit, `\\s` an ASCII space), read from its parsed form; None when the set is open-ended
    (`.`, `\\w`, a negated class) or the pattern cannot be read."""
    found: set[str] = set()
    try:
        for name, value in _leaves(pattern):
            if name == "LITERAL":
                found.add(chr(value))
            elif name == "RANGE" and value[1] - value[0] < 256:
                found.update(map(chr, range(value[0], value[1] + 1)))
            elif name == "CATEGORY" and str(value) in _CATEGORY_CHARS:
                found.update(_CATEGORY_CHARS[str(value)])
            elif name != "AT":
                return None
    except Exception:
        return None
    return found


_BLIND_OPS = frozenset(("ANY", "AT", "CATEGORY", "NEGATE", "FAILURE", "SUCCESS"))


def _digit_blind(pattern: re.Pattern[str]) -> bool:
    """Whether `pattern` treats every ASCII digit alike (as `\\d` or `.` do, unlike `1` or
    `[0-5]`), so it matches a text exactly when it matches the text with other ASCII digits."""
    digits = range(0x30, 0x3A)
    try:
        for name, value in _leaves(pattern.pattern, pattern.flags):
            if name in ("LITERAL", "NOT_LITERAL"):
                if value in digits:
                    return False
            elif name == "RANGE":
                low, high = value
                if not (high < 0x30 or low > 0x39 or (low <= 0x30 and high >= 0x39)):
                    return False
            elif name not in _BLIND_OPS:
                return False
    except Exception:
        return False
    return True


def _near(
    view: str, start: int, end: int, rule: DetectorRule, context: Callable[[str], object]
) -> bool:
    """Whether a context word lies within `context_within` characters before or after the match."""
    reach = rule.context_within
    window = (view[max(0, start - reach) : start] + "\n" + view[end : end + reach]).casefold()
    return context(window) is not None
