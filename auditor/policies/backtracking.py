"""Keyword regexes whose matching time can explode on a chat message, refused when loaded.

Python's `re` backtracks. A repetition that can repeat another repetition, as in `(a+)+$` or
`(\\w*\\s?)*x`, tries every way of splitting a run of characters between the two when a match
fails: a 41-character message held `(a+)+$` for over a minute, doubling with each character. The
policy author writes the pattern, but any chat user writes the text, so such a pattern is refused
at `policy check` and at the start of every run rather than met in the middle of one. Possessive
repeats and atomic groups (`a++`, `(?>...)`) never backtrack and pass. This finds nested
repetition, the usual cause; overlapping alternatives under a repeat (`(a|a)*`) and adjacent
unbounded repeats (`\\d+\\d+$`, polynomial) are not detected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
