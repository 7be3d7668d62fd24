"""The emulator's parser of the legacy `ql` filter: timestamp bounds and an order, nothing else.

Easemob's old `/chatmessages` API took a Usergrid query such as
`select * where timestamp>1403163586000 and timestamp<1403164734226 order by timestamp desc`.
The value arrives already form-decoded (`+` is a space, `%3C`/`%3E` are `<`/`>`); clients also
send raw `<`/`>`. Only the `timestamp` field may be compared, and only with `and`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STATEMENT = re.compile(
    r"(?:select\s+\*\s*)?"
    r"(?:where\s+(?P<where>.+?))?"
    r"\s*(?:order\s+by\s+timestamp(?:\s+(?P<direction>asc|desc))?)?",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(r"timestamp\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>-?\d{1,19})", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


class QlError(ValueError):
    """The `ql` text is not a query the legacy API understands."""


@dataclass(frozen=True, slots=True)
class Query:
    """A window `[since_ms, until_ms)` (None = open) and the order rows come back in."""

    since_ms: int | None = None
    until_ms: int | None = None
    descending: bool = False

    def clamp(self, low: int, high: int) -> tuple[int, int]:
        """The window intersected with `[low, high)`, never inverted."""
        since = low if self.since_ms is None else max(low, self.since_ms)
        until = high if self.until_ms is None else min(high, self.until_ms)
        return since, max(since, until)


def parse_ql(text: str) -> Query:
    """Parses a form-decoded `ql` value; an empty value selects everything, oldest first."""
    statement = _STATEMENT.fullmatch(text.strip())
    if statement is None:
        raise QlError(f"cannot parse ql {text!r}")
    since: int | None = None
    until: int | None = None
    where = statement.group("where")
    for part in _AND.split(where.strip()) if where else ():
        condition = _CONDITION.fullmatch(part.strip())
        if condition is None:
            raise QlError(f"unsupported condition {part.strip()!r}: only timestamp > < >= <= =")
        op, value = condition.group("op"), int(condition.group("value"))
        low = {">": value + 1, ">=": value, "=": value}.get(op)
        high = {"<": value, "<=": value + 1, "=": value + 1}.get(op)
        if low is not None:
            since = low if since is None else max(since, low)
        if high is not None:
            until = high if until is None else min(until, high)
    descending = (statement.group("direction") or "asc").lower() == "desc"
    return Query(since, until, descending)
