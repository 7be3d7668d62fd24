"""Keyword regexes whose matching time can explode on a chat message, refused when loaded.

Python's `re` backtracks. A repetition that can repeat another repetition, as in `(a+)+$` or
`(\\w*\\s?)*x`, tries every way of splitting a run of characters between the two when a match
fails: a 41-character message held `(a+)+$` for over a minute, doubling with each character. The
policy author writes the pattern, but any chat user writes the text, so such a pattern is refused
at `policy check` and at the start of every run rather than met in the middle of one. Possessive
repeats and atomic groups (`a++`, `(?>...)`) never backtrack and pass.

Two checks find such patterns. `nested_repetition` finds a repetition inside another, the usual
cause; it also refuses a few that are only slow, not exponential (`(?:\\w+\\.)+com`).
`ambiguous_repetition` finds the other cause, alternatives under a repetition that can read the
same text, as in `(.|\\s)*` or `(a|ab|b)*`, by the pattern's automaton. Adjacent repeats
(`\\d+\\d+$`, polynomial) and bounded blow-ups such as `(a?){20}a{20}` pass both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def nested_repetition(regex: re.Pattern[str]) -> str | None:
    """A description of the first repetition inside another that can backtrack, or None (also
    when the stdlib's parser, an internal module, is absent or changed: the regex then runs)."""
    try:
        from re import _constants, _parser  # type: ignore[attr-defined]
    except ImportError:
        return None

    unbounded = _constants.MAXREPEAT

    def walk(items: Iterable[tuple[Any, Any]], outer: tuple[int, int] | None) -> str | None:
        for op, value in items:
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT"):
                low, high, body = value
                if outer is not None and high > 1 and unbounded in (high, outer[1]):
                    return "a repetition inside a repetition"
                inner = (low, high) if high > 1 else outer
                found = walk(body.data, inner)
            elif name == "SUBPATTERN":
                found = walk(value[-1].data, outer)
            elif name == "BRANCH":
                found = next(
                    (hit for branch in value[1] if (hit := walk(branch.data, outer))), None
                )
            elif name in ("ASSERT", "ASSERT_NOT"):
                found = walk(value[1].data, outer)
            else:  # literals, classes, anchors; POSSESSIVE_REPEAT and ATOMIC_GROUP never backtrack
                found = None
            if found:
                return found
        return None

    return walk(_parser.parse(regex.pattern, regex.flags).data, None)


_MANY = 2  # path counts are kept as 0, 1 or "two or more"
_EXPAND = 16  # a bounded repetition up to this many is unrolled; a larger one is a loop
_MAX_POSITIONS = 150  # characters a pattern may consume before it is left unanalysed
_MAX_STEPS = 200_000  # transitions between pairs followed before the analysis gives up
_SAMPLES = "aAzZ09_ \t\n\r-.@!/:%+,中文é١\u3000\uff10\x00\uffff"
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}


class _Unmodelled(Exception):
    """The pattern uses something the ambiguity analysis does not model."""


@dataclass(frozen=True)
class _Fragment:
    """A piece of a Glushkov automaton: ways to match the empty string, and the positions a
    match can start and end at, each with its number of ways (capped at `_MANY`)."""

    empty: int
    first: dict[int, int]
    last: dict[int, int]


def _add(ways: int, more: int) -> int:
    return min(_MANY, ways + more)


def _merged(*counts: dict[int, int]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for count in counts:
        for position, ways in count.items():
            merged[position] = _add(merged.get(position, 0), ways)
    return merged


def _scaled(count: dict[int, int], factor: int) -> dict[int, int]:
    return {position: min(_MANY, ways * factor) for position, ways in count.items() if factor}


class _Automaton:
    """The Glushkov automaton of a parsed pattern, with the number of ways (0, 1, many) each
    transition can be taken: two ways to go from one position to the next on the same
    character are two paths a backtracking matcher tries, as in `(a*)*` or `(a|a)*`."""

    def __init__(self, flags: int) -> None:
        self.flags = [flags]
        self.positions: list[tuple[str, Any, int]] = []
        self.follow: list[dict[int, int]] = []
        self.lookarounds: list[tuple[Any, int]] = []

    def sequence(self, items: Iterable[tuple[Any, Any]]) -> _Fragment:
        result = _Fragment(1, {}, {})
        for op, value in items:
            piece = self.item(str(op), value)
            self.link(result.last, piece.first)
            result = _Fragment(
                min(_MANY, result.empty * piece.empty),
                _merged(result.first, _scaled(piece.first, result.empty)),
                _merged(piece.last, _scaled(result.last, piece.empty)),
            )
        return result

    def link(self, ends: dict[int, int], starts: dict[int, int]) -> None:
        for end, before in ends.items():
            follow = self.follow[end]
            for start, after in starts.items():
                follow[start] = _add(follow.get(start, 0), before * after)

    def item(self, name: str, value: Any) -> _Fragment:
        if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            if len(self.positions) >= _MAX_POSITIONS:
                raise _Unmodelled
            self.positions.append((name, value, self.flags[-1]))
            self.follow.append({})
            position = len(self.positions) - 1
            return _Fragment(0, {position: 1}, {position: 1})
        if name == "AT":
            return _Fragment(1, {}, {})
        if name == "SUBPATTERN":
            _group, add, remove, body = value
            self.flags.append((self.flags[-1] | add) & ~remove)
            try:
                return self.sequence(body.data)
            finally:
                self.flags.pop()
        if name == "BRANCH":
            pieces = [self.sequence(branch.data) for branch in value[1]]
            return _Fragment(
                min(_MANY, sum(piece.empty for piece in pieces)),
                _merged(*(piece.first for piece in pieces)),
                _merged(*(piece.last for piece in pieces)),
            )
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            return self.repeat(*value)
        if name in ("ASSERT", "ASSERT_NOT"):
            self.lookarounds.append((value[1], self.flags[-1]))
            return _Fragment(1, {}, {})
        raise _Unmodelled  # backreferences, conditionals, atomic groups, possessive repeats

    def repeat(self, low: int, high: int, body: Any) -> _Fragment:
        looped = high > _EXPAND
        result = self.sequence([])
        for _ in range(low - 1 if looped and low else low):
            result = self._then(result, self.sequence(body.data))
        if looped:
            loop = self.sequence(body.data)
            self.link(loop.last, loop.first)
            # A matcher does not repeat an iteration that matched nothing.
            empty = loop.empty if low else 1
            return self._then(result, _Fragment(empty, loop.first, loop.last))
        optional = _Fragment(1, {}, {})
        for _ in range(high - low):  # x{0,2} as (x(x)?)?: one way to match each length
            piece = self._then(self.sequence(body.data), optional)
            optional = _Fragment(_add(piece.empty, 1), piece.first, piece.last)
        return self._then(result, optional)

    def _then(self, before: _Fragment, after: _Fragment) -> _Fragment:
        self.link(before.last, after.first)
        return _Fragment(
            min(_MANY, before.empty * after.empty),
            _merged(before.first, _scaled(after.first, before.empty)),
            _merged(after.last, _scaled(before.last, after.empty)),
        )

    def overlaps(self) -> list[set[int]]:
        """For each position, the others that accept a character it accepts (itself included)."""
        samples = set(_SAMPLES)
        for name, value, _flags in self.positions:
            if name in ("LITERAL", "NOT_LITERAL"):
                samples.add(chr(value))
            elif name == "IN":
                for inner, argument in value:
                    if str(inner) == "LITERAL":
                        samples.add(chr(argument))
                    elif str(inner) == "RANGE":
                        samples.update(chr(argument[0]), chr(argument[1]))
        samples |= {case for sample in list(samples) for case in (sample.lower(), sample.upper())}
        masks = [
            sum(1 << index for index, sample in enumerate(sorted(samples)) if _accepts(p, sample))
            for p in self.positions
        ]
        return [{q for q, other in enumerate(masks) if mask & other} for mask in masks]


def _accepts(position: tuple[str, Any, int], character: str) -> bool:
    name, value, flags = position
    if flags & re.IGNORECASE:
        characters = {character, character.lower(), character.upper()}
    else:
        characters = {character}
    if name == "ANY":
        return bool(flags & re.DOTALL) or character != "\n"
    if name == "LITERAL":
        return chr(value) in characters
    if name == "NOT_LITERAL":
        return chr(value) not in characters
    negate = hit = False
    for inner, argument in value:
        kind = str(inner)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            hit = hit or chr(argument) in characters
        elif kind == "RANGE":
            hit = hit or any(argument[0] <= ord(c) <= argument[1] for c in characters)
        elif kind == "CATEGORY" and str(argument) in _CATEGORIES:
            category = re.compile(_CATEGORIES[str(argument)], flags & re.ASCII)
            hit = hit or any(category.fullmatch(c) for c in characters)
        else:
            raise _Unmodelled
    return hit != negate


def _exponentially_ambiguous(automaton: _Automaton) -> bool:
    """Whether two different paths read the same text around a cycle: then the number of
    paths, and a backtracking matcher's time on a text that fails, doubles with each turn.

    That holds when one strongly connected part of the automaton paired with itself holds a
    pair (p, p) and either a pair (p, q) of two positions or a transition with two ways
    (Weideman et al., "Analyzing matching time behavior of backtracking regular expression
    matchers by using ambiguity of NFA", 2016)."""
    overlaps = automaton.overlaps()
    follow = automaton.follow

    def successors(pair: tuple[int, int]) -> list[tuple[int, int]]:
        p, q = pair
        return [(a, b) for a in follow[p] for b in follow[q] if b in overlaps[a]]

    index: dict[tuple[int, int], int] = {}
    low: dict[tuple[int, int], int] = {}
    stack: list[tuple[int, int]] = []
    on_stack: set[tuple[int, int]] = set()
    steps = 0
    for root in [(p, p) for p in range(len(follow))]:
        if root in index:
            continue
        work = [(root, iter(successors(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            step = next(pending, None)
            if step is not None:
                steps += 1
                if steps > _MAX_STEPS:
                    raise _Unmodelled
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(successors(step))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                part = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.add(member)
                    if member == node:
                        break
                if _doubles(part, follow):
                    return True
    return False


def _doubles(part: set[tuple[int, int]], follow: list[dict[int, int]]) -> bool:
    diagonal = [p for p, q in part if p == q]
    if not diagonal:
        return False
    if len(diagonal) < len(part):
        return True
    return any(follow[p].get(q, 0) >= _MANY for p in diagonal for q in diagonal)


def ambiguous_repetition(regex: re.Pattern[str]) -> str | None:
    """A description of a repetition that can read the same text in two ways, as in `(.|\\s)*`
    or `(a|ab|b)*`, or None (also for a pattern with backreferences, conditionals, atomic
    groups or possessive repeats, or too large to analyse: it then runs)."""
    try:
        from re import _parser  # type: ignore[attr-defined]
    except ImportError:
        return None
    pending = [(_parser.parse(regex.pattern, regex.flags).data, regex.flags)]
    try:
        while pending:
            items, flags = pending.pop()
            automaton = _Automaton(flags)
            automaton.sequence(items)
            if _exponentially_ambiguous(automaton):
                return "a repetition that can read the same text in more than one way"
            pending.extend((body.data, inner) for body, inner in automaton.lookarounds)
    except _Unmodelled:
        return None
    return None
