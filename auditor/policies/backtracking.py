"""Keyword regexes whose matching time can explode on a chat message, refused when loaded.

Python's `re` backtracks. A repetition that can repeat another repetition, as in `(a+)+$` or
`(\\w*\\s?)*x`, tries every way of splitting a run of characters between the two when a match
fails: a 41-character message held `(a+)+$` for over a minute, doubling with each character. The
policy author writes the pattern, but any chat user writes the text, so such a pattern is refused
at `policy check` and at the start of every run rather than met in the middle of one. Possessive
repeats and atomic groups (`a++`, `(?>...)`) never backtrack and pass the first two checks.

Three checks find such patterns. `nested_repetition` finds a repetition inside another, the usual
cause, unless the automaton below models the pattern and finds it unambiguous (`(,\\d{3})*`,
`(?:\\d[ -]*?){13,16}`): what is then only slow (`(?:\\w+\\.)+com`) is the third check's.
`ambiguous_repetition` finds the other cause, alternatives under a repetition that can read the
same text, as in `(.|\\s)*` or `(a|ab|b)*`, by the pattern's automaton. A third,
`polynomial_backtracking`, finds time that grows with a power of the message's length: a search
retries the pattern at every character, so `(\\w+)\\s*=\\s*(\\w+)\\s*;\\s*$` read 40 KB of
letters in 25 s, and so do adjacent repeats (`\\d+\\d+$`). Bounded blow-ups such as
`(a?){20}a{20}` pass all three.

Why refuse rather than match in linear time: a linear engine (RE2, Rust's `regex`, Go's
`regexp`; `google-re2` installs here, and took 0.1 ms for what `re` took 10 to 70 s on) is what
a tool that runs strangers' patterns should use, but RE2's `\\w`, `\\d`, `\\s` and `\\b` are ASCII
only (`\\w+` finds `abc` in `中文 abc`, not `中文`), and it has no lookaround or backreferences,
so it would change what the policies already written find in Chinese text. Static analysis of
the automaton is the other way serious tools take (Weideman et al.'s analysis, as in
`regexploit` and `redos-detector`), and it can give the author a fix: a pattern refused here
names the run that makes it slow. What it cannot model (backreferences, conditionals, a pattern
past `_MAX_POSITIONS` or `_MAX_STEPS`) runs unchecked. A possessive repeat or an atomic group
stops the exponential cases but not the search's restarts: `\\d++元` took 6.3 s on 40,000 digits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


def nested_repetition(regex: re.Pattern[str]) -> str | None:
    """A description of the first repetition inside another that can backtrack, or None (also
    when the stdlib's parser, an internal module, is absent or changed: the regex then runs).

    A repetition of a fixed count inside another (`(,\\d{3})*`) reads a text one way only and
    is left to `ambiguous_repetition`, which models it exactly."""
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
                if outer is not None and low < high and high > 1 and unbounded in (high, outer[1]):
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

    found = walk(_parser.parse(regex.pattern, regex.flags).data, None)
    if found and _unambiguous(regex):
        return None  # left to `polynomial_backtracking`, which measures what it costs
    return found


def _unambiguous(regex: re.Pattern[str]) -> bool:
    """Whether the automaton models the whole pattern and finds no repetition that reads a text
    two ways: then a repetition inside another is only slow if a run makes it polynomial, as
    `(?:\\w+\\.)+com` on 'a.a.a...', and the credit-card rule `\\b(?:\\d[ -]*?){13,16}\\b`,
    which is neither (1 ms on 40,000 characters), was refused."""
    return _ambiguity(regex) is False


def _ambiguity(regex: re.Pattern[str]) -> bool | None:
    """Whether some repetition of `regex` (or of a lookaround in it) reads a text two ways; None
    when the automaton cannot model the pattern."""
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
                return True
            pending.extend((body.data, inner) for body, inner in automaton.lookarounds)
    except _Unmodelled:
        return None
    return False


_MANY = 2  # path counts are kept as 0, 1 or "two or more"
_EXPAND = 16  # a bounded repetition up to this many is unrolled; a larger one is a loop
_MAX_POSITIONS = 150  # characters a pattern may consume before it is left unanalysed
_MAX_STEPS = 200_000  # transitions between pairs followed before the analysis gives up
_UNBOUNDED = 4_294_967_295  # the parser's MAXREPEAT: a repetition with no upper bound
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

    def __init__(self, flags: int, barriers: bool = False, searched: bool = False) -> None:
        self.flags = [flags]
        self.positions: list[tuple[str, Any, int]] = []
        self.follow: list[dict[int, int]] = []
        self.lookarounds: list[tuple[Any, int]] = []
        self.barriers = barriers  # anchors and lookarounds end every path: where a match can fail
        self.bounded: set[int] = set()  # positions of a bounded repetition analysed as a loop
        # A possessive repeat or atomic group never gives back what it read, but a search still
        # starts it again at the next character: read as a plain one for the search's loop only.
        self.searched = searched
        self.possessive = False
        self._masks: tuple[list[int], list[str]] | None = None

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
            return _Fragment(0 if self.barriers else 1, {}, {})
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
            if self.barriers:
                return _Fragment(0, {}, {})
            self.lookarounds.append((value[1], self.flags[-1]))
            return _Fragment(1, {}, {})
        if self.searched and name == "POSSESSIVE_REPEAT":
            self.possessive = True
            return self.repeat(*value)
        if self.searched and name == "ATOMIC_GROUP":
            self.possessive = True
            return self.sequence(value.data)
        raise _Unmodelled  # backreferences, conditionals, atomic groups, possessive repeats

    def repeat(self, low: int, high: int, body: Any) -> _Fragment:
        looped = high > _EXPAND
        result = self.sequence([])
        for _ in range(low - 1 if looped and low else low):
            result = self._then(result, self.sequence(body.data))
        if looped:
            before = len(self.positions)
            loop = self.sequence(body.data)
            self.link(loop.last, loop.first)
            if high < _UNBOUNDED:
                self.bounded.update(range(before, len(self.positions)))
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
        masks = self.masks()[0]
        return [{q for q, other in enumerate(masks) if mask & other} for mask in masks]

    def masks(self) -> tuple[list[int], list[str]]:
        """For each position, the sample characters it accepts as a bit mask; and the samples
        (computed once: the automaton is complete when it is asked)."""
        if self._masks is None:
            self._masks = self._computed_masks()
        return self._masks

    def _computed_masks(self) -> tuple[list[int], list[str]]:
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
        ordered = sorted(samples, key=lambda c: (not c.isalnum(), not c.isprintable(), c))
        known: dict[tuple[str, str, int], int] = {}  # `\d{17}` unrolls to 17 equal positions
        masks = []
        for position in self.positions:
            key = (position[0], repr(position[1]), int(position[2]))
            if key not in known:
                known[key] = sum(
                    1 << index for index, sample in enumerate(ordered) if _accepts(position, sample)
                )
            masks.append(known[key])
        return masks, ordered


# Plain ints: `int & re.IGNORECASE` goes through the enum's operators, which were two thirds of
# the time a 200-pattern policy took to load (3.1 s).
_IGNORECASE, _DOTALL, _ASCII = (int(flag) for flag in (re.IGNORECASE, re.DOTALL, re.ASCII))
_CATEGORY_REGEXES: dict[tuple[str, int], re.Pattern[str]] = {}


def _accepts(position: tuple[str, Any, int], character: str) -> bool:
    name, value, flags = position
    flags = int(flags)
    if flags & _IGNORECASE:
        characters = {character, character.lower(), character.upper()}
    else:
        characters = {character}
    if name == "ANY":
        return bool(flags & _DOTALL) or character != "\n"
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
            key = (str(argument), flags & _ASCII)
            category = _CATEGORY_REGEXES.get(key)
            if category is None:
                category = _CATEGORY_REGEXES[key] = re.compile(_CATEGORIES[key[0]], key[1])
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
    if _ambiguity(regex):
        return "a repetition that can read the same text in more than one way"
    return None


_SEARCH_PREFIX = "(?s:.)*?"  # what an unanchored search amounts to: a new try at each character
_GUARDS = ("AT_BEGINNING", "AT_BEGINNING_STRING", "AT_BOUNDARY")


def polynomial_backtracking(regex: re.Pattern[str]) -> str | None:
    """A description of how the pattern's time can grow with the square (or a higher power) of a
    message's length, or None (also for backreferences, conditionals, or a pattern too large to
    analyse: it then runs).

    A search tries the pattern at each character in turn, so `\\d+元` on a run of digits reads
    the rest of the run from each of them before it fails: 0.8 s for 10,000 digits, 3.8 s for
    20,000, 16.7 s for 40,000 (one message; this machine, busy). That is the search's loop and
    the pattern's repetition reading the same text, a polynomial degree of ambiguity, found as
    two positions p != q with paths p->p, p->q and q->q that read one word w (Weideman et al.
    2016; the "IDA" of Allauzen et al. 2008), the search modelled as a leading `(?s:.)*?`. A
    pumped word only costs if no path reaches the end of a match meanwhile (`\\d+.` always
    succeeds after one step back), which the witness w is run through the automaton to rule out,
    anchors and lookarounds taken as places that can fail. A pattern that starts with `^`,
    `\\A`, `\\b` or a lookbehind is analysed as anchored there: `(?<!\\d)\\d+元` tries once per
    run of digits. That is what lets an author fix a flagged pattern, but only if the guard fails
    inside the run: `\\bx.*y` on "x x x ..." or `(?<!\\d)[\\d.]+元` on "...." start a try at
    each place, so such a run is looked for first (`_guard_holds_inside_run`). Repetitions
    bounded above (`.{0,20}`) cost a bounded time per start and are left out.
    """
    try:
        from re import _parser  # type: ignore[attr-defined]
    except ImportError:
        return None
    parsed = _parser.parse(regex.pattern, regex.flags)
    items = list(parsed.data)
    anchored = bool(items) and _guarded(items[0])
    if anchored:
        try:
            run = _guard_holds_inside_run(parsed, regex.flags)
        except _Unmodelled:
            run = None
        if run:
            return (
                f"a part that reads a run like {run!r} again from each place in it where its "
                "leading guard holds (a guard must reject every character of the run)"
            )
    if not anchored:
        items = list(_parser.parse(_SEARCH_PREFIX).data) + items
    try:
        automaton = _Automaton(regex.flags, searched=not anchored)
        whole = automaton.sequence(items)
        ends = _Automaton(regex.flags, barriers=True, searched=not anchored).sequence(items)
        finals = set(ends.last)
        for before, pumped in _pumped(automaton, whole.first, searched=not anchored):
            text = before + pumped * (len(automaton.positions) + 2)
            if not _reaches(automaton, whole.first, finals, text):
                run = pumped * (4 if len(pumped) == 1 else 3) + "..."
                return f"a part that reads a run like {run!r} again from each of its characters"
    except _Unmodelled:
        return None
    return None


def _guard_holds_inside_run(parsed: Any, flags: int) -> str | None:
    """A run like 'a.a.a...' that a guarded pattern reads to its end from each place inside it
    where its leading guard holds, or None.

    The guard bounds the search's tries only if it fails inside the run: `\\b[\\w.-]+@` holds
    before every letter of `a.a.a...`, so each try still reads the rest (1.4 s on 10,000
    characters), and `(?m)^\\s*x` holds after every newline. Runs of one or two sample
    characters of a looping position are tried: the guard is run on the real engine, the
    pattern's automaton reads the run from the first place inside it where the guard holds."""
    items = list(parsed.data)
    try:
        from re import _compiler  # type: ignore[attr-defined]

        guard = _compiler.compile(type(parsed)(parsed.state, [items[0]]), flags)
    except Exception as error:  # an internal API: if it changed, the guard is trusted
        raise _Unmodelled from error
    automaton = _Automaton(flags)
    whole = automaton.sequence(items)
    finals = set(_Automaton(flags, barriers=True).sequence(items).last)
    masks, samples = automaton.masks()
    copies = len(automaton.positions) + 4
    reading = (whole.first, finals, masks, samples)
    for word in _runs(automaton, whole.first, items, flags):
        inside = guard.finditer(word * copies, len(word))
        start = next((m.start() for m in inside if m.start() < 2 * len(word)), None)
        if start is not None and _reads_to_end(automaton, reading, (word * copies)[start:]):
            return word * (4 if len(word) == 1 else 3) + "..."
    return None


def _runs(
    automaton: _Automaton, first: dict[int, int], items: list[Any], flags: int
) -> Iterator[str]:
    """Words whose runs a guarded pattern may read to their end: one or two characters of each
    looping position's kinds (after a character the pattern starts with), then the words the
    search's loop pumps when the guard is read as no guard, as in ',000' for
    `(?<!\\d)\\d{1,3}(,\\d{3})*元`, alone and followed by a looping character (the space of
    'guaranteed ' for `\\bguaranteed.*returns`, where the guard then holds)."""
    masks, samples = automaton.masks()
    follow = automaton.follow
    starts = {char for p in first for char in _kinds(masks[p], samples)}
    seen: set[str] = set()
    looping: set[str] = set()
    for q in range(len(follow)):
        if q in follow[q] and q not in automaton.bounded:
            chars = _kinds(masks[q], samples)
            looping |= chars
            pairs = {a + b for a in chars | starts for b in chars if a != b}
            for word in sorted(chars) + sorted(pairs - chars):
                if word not in seen:
                    seen.add(word)
                    yield word
    from re import _parser  # type: ignore[attr-defined]

    searched = _Automaton(flags, searched=True)
    entry = searched.sequence(list(_parser.parse(_SEARCH_PREFIX).data) + items)
    for _before, pumped in _pumped(searched, entry.first, searched=True):
        for word in [pumped] + [pumped + char for char in sorted(looping)]:
            if word not in seen:
                seen.add(word)
                yield word


def _kinds(mask: int, samples: list[str]) -> set[str]:
    """One sample character the mask accepts of each kind a guard tells apart."""
    kinds: dict[tuple[bool, ...], str] = {}
    for index, char in enumerate(samples):
        if mask >> index & 1:
            kind = (char.isalnum(), char.isdigit(), char.isspace(), char == "\n", char == "_")
            kinds.setdefault(kind, char)
    return set(kinds.values())


def _guarded(item: tuple[Any, Any]) -> bool:
    op, value = item
    if str(op) == "AT":
        return str(value) in _GUARDS
    return str(op) in ("ASSERT", "ASSERT_NOT") and value[0] < 0


class _Budget:
    """Transitions followed across one pattern's analysis; past `_MAX_STEPS` it gives up."""

    def __init__(self) -> None:
        self.steps = 0

    def spend(self) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise _Unmodelled


def _pumped(
    automaton: _Automaton, first: dict[int, int], searched: bool
) -> Iterator[tuple[str, str]]:
    """Words `before` leading to a position p and `w` read by p->p, p->q and q->q, q != p: first
    with p the search's own loop (position 0 when `searched`), then any two positions."""
    masks, samples = automaton.masks()
    follow = automaton.follow
    budget = _Budget()
    loops = [
        p for p in range(len(follow)) if p not in automaton.bounded and _connected(follow, p, p)
    ]
    if searched:
        for q in loops:
            if q:
                word = _word(follow, masks, samples, (0, q), (q, q), budget)
                if word:
                    yield "", word
                # The first word may end a match ('0' for `\\w+\\d`): a word of each kind of
                # character the loop reads ('a') is tried too.
                for char in sorted(_kinds(masks[q], samples)):
                    bit = 1 << samples.index(char)
                    only = [mask & bit for mask in masks]
                    word = _word(follow, only, samples, (0, q), (q, q), budget)
                    if word:
                        yield "", word
    if automaton.possessive:
        return  # what it read is never split again: only the search's own loop is pumped
    reached = {p: _path_to(automaton, first, p, masks, samples) for p in loops}
    for p, before in reached.items():
        for q in loops:  # neighbours first, as in `\d*\d*`: one character pumps them
            common = masks[p] & masks[q] & _loop_mask(follow, masks, p, q)
            if before is not None and q != p and q in follow[p] and common:
                yield before, samples[(common & -common).bit_length() - 1]
    for p, before in reached.items():
        if before is None:
            continue
        for q in loops:
            if p != q and _connected(follow, p, q):
                word = _word(follow, masks, samples, (p, p, q), (p, q, q), budget)
                if word:
                    yield before, word


def _loop_mask(follow: list[dict[int, int]], masks: list[int], p: int, q: int) -> int:
    """The samples on which p and q each go straight back to themselves."""
    return (masks[p] if p in follow[p] else 0) & (masks[q] if q in follow[q] else 0)


def _word(
    follow: list[dict[int, int]],
    masks: list[int],
    samples: list[str],
    start: tuple[int, ...],
    goal: tuple[int, ...],
    budget: _Budget,
) -> str | None:
    """A word read by paths from each position of `start` to the one of `goal` at its index,
    all reading the same characters (a search of the product automaton), or None."""
    parents: dict[tuple[int, ...], tuple[tuple[int, ...], str] | None] = {start: None}
    frontier = [start]
    while frontier and goal not in parents:
        following = []
        for node in frontier:
            for step, common in _steps(follow, masks, node, budget):
                if step not in parents:
                    parents[step] = (node, samples[(common & -common).bit_length() - 1])
                    following.append(step)
        frontier = following
    if goal not in parents:
        return None
    word = ""
    while (parent := parents[goal]) is not None:
        goal, char = parent
        word = char + word
    return word


def _steps(
    follow: list[dict[int, int]], masks: list[int], node: tuple[int, ...], budget: _Budget
) -> Iterator[tuple[tuple[int, ...], int]]:
    """The tuples of positions that the positions of `node` go to on one shared character."""
    partial: list[tuple[tuple[int, ...], int]] = [((), -1)]
    for position in node:
        grown = []
        for done, common in partial:
            for nxt in follow[position]:
                budget.spend()
                shared = common & masks[nxt]
                if shared:
                    grown.append(((*done, nxt), shared))
        partial = grown
    yield from partial


def _connected(follow: list[dict[int, int]], source: int, target: int) -> bool:
    """Whether a path of one or more transitions leads from `source` to `target`."""
    seen: set[int] = set()
    pending = list(follow[source])
    while pending:
        node = pending.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            pending.extend(follow[node])
    return False


def _path_to(
    automaton: _Automaton, first: dict[int, int], target: int, masks: list[int], samples: list[str]
) -> str | None:
    """A word that leads from the start to `target`, one sample character per position."""
    parents: dict[int, tuple[int | None, str]] = {}
    frontier: list[int] = []
    for position in first:
        if masks[position]:
            parents[position] = (
                None,
                samples[(masks[position] & -masks[position]).bit_length() - 1],
            )
            frontier.append(position)
    while frontier and target not in parents:
        following = []
        for node in frontier:
            for nxt in automaton.follow[node]:
                if nxt not in parents and masks[nxt]:
                    low = (masks[nxt] & -masks[nxt]).bit_length() - 1
                    parents[nxt] = (node, samples[low])
                    following.append(nxt)
        frontier = following
    if target not in parents:
        return None
    word = ""
    node: int | None = target
    while node is not None:
        node, char = parents[node]
        word = char + word
    return word


def _reaches(automaton: _Automaton, first: dict[int, int], finals: set[int], text: str) -> bool:
    """Whether some path reading a prefix of `text`, made of sample characters, ends a match."""
    masks, samples = automaton.masks()
    bits = [1 << samples.index(char) for char in text]
    current = {p for p in first if masks[p] & bits[0]} if bits else set()
    for bit in bits[1:]:
        if current & finals:
            return True
        current = {b for a in current for b in automaton.follow[a] if masks[b] & bit}
    return bool(current & finals)


def _reads_to_end(
    automaton: _Automaton,
    start: tuple[dict[int, int], set[int], list[int], list[str]],
    text: str,
) -> bool:
    """Whether a path reads all of `text` to end at an unbounded loop while no path ends a
    match (`start`: the first positions, the final ones, the masks and their samples)."""
    first, finals, masks, samples = start
    current: set[int] = set()
    for index, char in enumerate(text):
        bit = 1 << samples.index(char)
        if index == 0:
            current = {p for p in first if masks[p] & bit}
        else:
            if current & finals:
                return False
            current = {b for a in current for b in automaton.follow[a] if masks[b] & bit}
        if not current:
            return False
    return bool(current - automaton.bounded) and not current & finals
