"""Retention rules that never decide a record: another rule covers every record they cover and
wins each of them, by the engine's precedence (`auditor.policies.retention.resolve`).

The engine takes no first match. The retention that lasts longest is kept (review beating keep
on a tie, a scoped rule the default, then the rule listed earlier), a scoped delete rule beats
the default's, the shortest deletion decides among delete rules, and a retention that ends no
sooner than a deletion beats it. A rule that loses all its records to one other rule, on every
send day of the calendar's four-year cycle, has no effect wherever it sits in the file.

What a scope covers is compared by its plain values: a rule is taken as covered only when the
other's every condition is at least as wide (a glob only by itself or a wider prefix glob), so
a rule this names is truly without effect, while some that are may go unnamed.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from auditor.partitions import DAY_MS
from auditor.policies.durations import Duration
from auditor.policies.model import Policy, RetentionRule
from auditor.policies.scope import CHAT_TYPES, GROUP_CHAT_TYPES, IdPattern, Scope

_CYCLE_START = 1_704_067_200_000  # 2024-01-01: a leap year starts the cycle, as `can_end_sooner`
_THEN_RANK = {"review": 1, "keep": 0}
_KIND_RANK = {"rule": 2, "default": 1, "floor": 0}
_KIND_LABEL = {"rule": "rule", "default": "default rule", "floor": "statutory floor"}


class _Order(NamedTuple):
    """How one period compares with another counted from the same send day, over every day."""

    longer: bool  # on every day
    no_shorter: bool  # on every day
    equal: bool  # on every day

    def wins(self, tie: bool) -> bool:
        """Longer on every day, ties (if any) won by `tie`."""
        return self.longer or (self.no_shorter and tie)


@cache
def _order(first: Duration, second: Duration) -> _Order:
    """Fixed lengths compare once, and so do calendar ones (more months end in a later month);
    a fixed length against a calendar one is compared on each day of a four-year cycle."""
    if (first.unit in ("mo", "y")) == (second.unit in ("mo", "y")):
        a, b = first.add_to(_CYCLE_START), second.add_to(_CYCLE_START)
        return _Order(a > b, a >= b, a == b)
    pairs = list(zip(_ends(first), _ends(second), strict=True))
    return _Order(
        all(a > b for a, b in pairs), all(a >= b for a, b in pairs), all(a == b for a, b in pairs)
    )


@cache
def _ends(duration: Duration) -> tuple[int, ...]:
    """The period's end from each day of the cycle (months and years vary in length)."""
    days = range(_CYCLE_START, _CYCLE_START + 1461 * DAY_MS, DAY_MS)
    return tuple(duration.add_to(day) for day in days)


def never_deciding(policy: Policy) -> list[tuple[RetentionRule, str]]:
    """Each default or scoped rule that another always beats, with why (one reason a rule: the
    first such rule, the floor and the default before the scoped ones in file order)."""
    rules = [rule for rule in policy.retention_rules() if not rule.scope.contradiction()]
    others = ([policy.floor] if policy.floor else []) + rules
    found = []
    for rule in rules:
        for other in others:
            if other is rule or not _covers(other, rule):
                continue
            why = _beats(other, rule, policy)
            if why is not None:
                label = f"{_KIND_LABEL[other.kind]} {other.id} (line {other.line})"
                found.append(
                    (
                        rule,
                        f"never decides a record: {label} covers every record it covers and "
                        f"{why}, so it has no effect: remove it, or narrow the other's scope",
                    )
                )
                break
    return found


def _beats(winner: RetentionRule, loser: RetentionRule, policy: Policy) -> str | None:
    """How `winner` takes every record of `loser` on every send day, or None when it may not.
    Deletions sooner than the floor or than a keeping default, and ties with review, are left
    to their own conflicts."""
    if winner.then != "delete" and loser.then != "delete":
        order = _order(winner.keep_for, loser.keep_for)
        if not order.wins(_tie_rank(winner) > _tie_rank(loser)):
            return None
        return _how(winner, loser, order, "keeps them longer", "keeps them as long")
    if winner.then == "delete" and loser.then == "delete":
        if loser.kind != "rule" or winner.kind != "rule":
            return None  # the default deletes only where no scoped rule does
        order = _order(loser.keep_for, winner.keep_for)  # the sooner deletion wins
        if not order.wins(winner.order < loser.order):
            return None
        return _how(winner, loser, order, "deletes them sooner", "deletes them as soon")
    order = _order(winner.keep_for, loser.keep_for)
    if loser.then == "delete":
        if winner.kind != "rule" or order.equal:
            return None  # the floor, a keeping default and ties with review: their own conflicts
        if not order.wins(winner.then == "review"):
            return None
        if order.longer:
            lengths = f"({winner.keep_for.words()}, not {loser.keep_for.words()})"
            return f"keeps them longer {lengths}, and retention beats deletion"
        return (
            f"keeps them at least as long on every send day ({winner.keep_for.words()} and "
            f"{loser.keep_for.words()}), review winning a tie, and retention beats deletion"
        )
    if not _sole_deletion(winner, loser, policy) or not order.wins(loser.then == "keep"):
        return None
    return (
        f"deletes them after {winner.keep_for.words()}, when this retention of "
        f"{loser.keep_for.words()} has ended"
    )


def _tie_rank(rule: RetentionRule) -> tuple[int, int, int]:
    """What decides between two retentions of equal length: review, then scoped, then earlier."""
    return (_THEN_RANK[rule.then], _KIND_RANK[rule.kind], -rule.order)


def _how(
    winner: RetentionRule, loser: RetentionRule, order: _Order, strictly: str, equally: str
) -> str:
    """The words for `winner` beating `loser` on every day: by length, or by a tie's order."""
    if order.longer:
        return f"{strictly} ({winner.keep_for.words()}, not {loser.keep_for.words()})"
    lengths = winner.keep_for.words()
    if loser.keep_for.words() != lengths:
        lengths += f" and {loser.keep_for.words()}"
    if not order.equal:
        equally = equally.replace("as long", "at least as long").replace("as soon", "no later")
        lengths += ", on every send day"
    return f"{equally} ({lengths}), and {_tie_reason(winner, loser)}"


def _tie_reason(winner: RetentionRule, loser: RetentionRule) -> str:
    if winner.then != loser.then:
        return f"review takes precedence over {loser.then}"
    if winner.kind != loser.kind:
        return "an explicitly scoped rule beats the default"
    return "is listed earlier"


def _sole_deletion(deleter: RetentionRule, keeper: RetentionRule, policy: Policy) -> bool:
    """Whether `deleter` decides the deletion of every record of `keeper`: a scoped delete
    rule that no other can share a record with, or the default where none can."""
    scoped = [
        rule
        for rule in policy.rules
        if rule.then == "delete"
        and rule is not deleter
        and not rule.scope.contradiction()
        and rule.scope.can_share_records_with(keeper.scope)
    ]
    return not scoped


def _covers(outer: RetentionRule, inner: RetentionRule) -> bool:
    """Whether every record `inner` covers is one `outer` covers, as far as plain values tell."""
    if outer.kind != "rule":
        return True
    wide, narrow = outer.scope, inner.scope
    if inner.kind != "rule":
        return wide.is_empty
    return (
        _within(_chat_types(narrow), _chat_types(wide))
        and _within(narrow.message_types, wide.message_types)
        and _since(wide) <= _since(narrow)
        and _until(narrow) <= _until(wide)
        and _ids_within(narrow.senders, wide.senders)
        and _ids_within(narrow.receivers, wide.receivers)
        and _ids_within(narrow.groups, wide.groups)
        and (
            wide.participants is None
            or any(
                _ids_within(each, wide.participants)
                for each in (narrow.participants, narrow.senders, narrow.receivers, narrow.groups)
                if each is not None
            )
        )
    )


def _chat_types(scope: Scope) -> frozenset[str] | None:
    if scope.groups is None:
        return scope.chat_types
    return (scope.chat_types or frozenset(CHAT_TYPES)) & GROUP_CHAT_TYPES


def _within(narrow: frozenset[str] | None, wide: frozenset[str] | None) -> bool:
    return wide is None or (narrow is not None and narrow <= wide)


def _since(scope: Scope) -> int:
    return scope.sent_since_ms if scope.sent_since_ms is not None else -(2**63)


def _until(scope: Scope) -> int:
    return scope.sent_until_ms if scope.sent_until_ms is not None else 2**63


def _ids_within(narrow: IdPattern | None, wide: IdPattern | None) -> bool:
    """Whether every id `narrow` matches, `wide` matches: its exact ids do, and each glob is
    one of `wide`'s or starts with the plain prefix of one of its `prefix*` globs."""
    if wide is None:
        return True
    if narrow is None:
        return False
    if not all(wide.matches(value) for value in narrow.exact):
        return False
    globs = {glob.lower() for glob in wide.globs}
    prefixes = [
        glob[:-1].lower()
        for glob in wide.globs
        if glob.endswith("*") and not set(glob[:-1]) & set("*?[")
    ]
    return all(
        glob.lower() in globs or any(glob.lower().startswith(p) for p in prefixes)
        for glob in narrow.globs
    )
