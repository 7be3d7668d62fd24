"""Which records a retention rule or a legal hold covers: chat type, people, groups, types, time.

Every condition given must hold (AND); each condition lists values of which one must match (OR).
Sender, receiver, participant and group values are exact ids or shell-style globs (`user00*`,
`14025412067?`), compared without regard to case: Easemob keeps and returns user ids in lower
case, and a hold naming `Zhang.Wei` must not silently miss `zhang.wei`.
A `group` condition only matches group chats and chat rooms, whose receiver is the group id.
A `participant` condition matches when the sender or the receiver is one of its values: a
person's messages sent and received, which no AND of `sender` and `receiver` can say. It sees
those two ids only: in a group the receiver is the group, and the archive does not know who its
members were.
`ScopeSet` tells which of several scopes cover a record, remembering each condition's answer per
distinct value (a sender, a receiver, a set of body types): the hot path does a few lookups.
"""

from __future__ import annotations

import fnmatch
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from auditor.policies.reading import Facts, facts_of
from auditor.records import Record

GROUP_CHAT_TYPES = frozenset({"groupchat", "chatroom"})
CHAT_TYPES = ("chat", "groupchat", "chatroom")
MESSAGE_TYPES = ("txt", "img", "loc", "audio", "video", "file", "cmd", "custom", "combine")
_GLOB_CHARS = frozenset("*?[")


def _all(checks: list[Callable[[Facts], bool]]) -> Callable[[Facts], bool]:
    if not checks:
        return lambda facts: True
    if len(checks) == 1:
        return checks[0]
    first, rest = checks[0], _all(checks[1:])
    return lambda facts: first(facts) and rest(facts)


@dataclass(frozen=True, slots=True)
class IdPattern:
    """Exact ids (lower-cased) and globs compiled into a set lookup and one regular expression
    that ignores case; `given` as the policy wrote them."""

    exact: frozenset[str]
    globs: tuple[str, ...]
    _regex: re.Pattern[str] | None
    given: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str]) -> IdPattern:
        values = tuple(values)
        globs = tuple(value for value in values if _GLOB_CHARS & set(value))
        exact = frozenset(value.lower() for value in values if value not in globs)
        either = "|".join(fnmatch.translate(glob) for glob in globs)
        regex = re.compile(either, re.IGNORECASE) if globs else None
        return cls(exact, globs, regex, values)

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if value.lower() in self.exact:
            return True
        return self._regex is not None and self._regex.match(value) is not None

    def describe(self) -> str:
        return ", ".join(sorted(set(self.given) - set(self.globs)) + list(self.globs))


@dataclass(frozen=True, slots=True)
class Scope:
    """The conditions of one rule or hold; no condition at all covers every record."""

    chat_types: frozenset[str] | None = None
    senders: IdPattern | None = None
    receivers: IdPattern | None = None
    groups: IdPattern | None = None
    message_types: frozenset[str] | None = None
    sent_since_ms: int | None = None
    sent_until_ms: int | None = None
    participants: IdPattern | None = None

    @property
    def is_empty(self) -> bool:
        return all(
            value is None
            for value in (
                self.chat_types,
                self.senders,
                self.receivers,
                self.groups,
                self.message_types,
                self.sent_since_ms,
                self.sent_until_ms,
                self.participants,
            )
        )

    def matches(self, record: Record) -> bool:
        return self.matches_facts(facts_of(record))

    def matches_facts(self, facts: Facts) -> bool:
        return self.predicate()(facts)

    def predicate(self) -> Callable[[Facts], bool]:
        """A function of the facts that checks only this scope's conditions (for the hot path:
        build it once, call it per record)."""
        checks: list[Callable[[Facts], bool]] = []
        if self.chat_types is not None:
            chat_types = self.chat_types
            checks.append(lambda facts: facts.chat_type in chat_types)
        if self.groups is not None:
            groups = self.groups.matches
            checks.append(
                lambda facts: facts.chat_type in GROUP_CHAT_TYPES and groups(facts.receiver)
            )
        if self.senders is not None:
            senders = self.senders.matches
            checks.append(lambda facts: senders(facts.sender))
        if self.receivers is not None:
            receivers = self.receivers.matches
            checks.append(lambda facts: receivers(facts.receiver))
        if self.participants is not None:
            participants = self.participants.matches
            checks.append(lambda facts: participants(facts.sender) or participants(facts.receiver))
        if self.message_types is not None:
            message_types = self.message_types
            checks.append(lambda facts: not message_types.isdisjoint(facts.types))
        if self.sent_since_ms is not None or self.sent_until_ms is not None:
            since = self.sent_since_ms if self.sent_since_ms is not None else -(2**63)
            until = self.sent_until_ms if self.sent_until_ms is not None else 2**63
            checks.append(lambda facts: facts.sent is not None and since <= facts.sent < until)
        return _all(checks)

    def contradiction(self) -> str | None:
        """Why no record can ever match this scope, or None when some record can."""
        if (
            self.groups is not None
            and self.chat_types is not None
            and not self.chat_types & GROUP_CHAT_TYPES
        ):
            return (
                "its scope names groups but only the chat type(s) "
                f"{', '.join(sorted(self.chat_types))}, and groups exist only in groupchat "
                "and chatroom"
            )
        if (
            self.sent_since_ms is not None
            and self.sent_until_ms is not None
            and self.sent_since_ms >= self.sent_until_ms
        ):
            return "its sent time range is empty (since is not before until)"
        return None

    def can_share_records_with(self, other: Scope) -> bool:
        """Whether some record can match both scopes, as far as plain values tell: disjoint chat
        types (a `group` implies a group chat), message types, send times or ids rule it out.
        Two globs, and a `participant` condition, are taken to overlap."""
        if _disjoint(self._chat_types(), other._chat_types()):
            return False
        if _disjoint(self.message_types, other.message_types):
            return False
        since = max(_since(self.sent_since_ms), _since(other.sent_since_ms))
        if since >= min(_until(self.sent_until_ms), _until(other.sent_until_ms)):
            return False
        if _ids_disjoint(self.senders, other.senders):
            return False
        return not any(  # `receiver` and `group` both name the receiver
            _ids_disjoint(mine, theirs)
            for mine in (self.receivers, self.groups)
            for theirs in (other.receivers, other.groups)
        )

    def _chat_types(self) -> frozenset[str] | None:
        if self.groups is None:
            return self.chat_types
        return (self.chat_types or GROUP_CHAT_TYPES) & GROUP_CHAT_TYPES


def _since(value: int | None) -> int:
    return value if value is not None else -(2**63)


def _until(value: int | None) -> int:
    return value if value is not None else 2**63


def _disjoint(first: frozenset[str] | None, second: frozenset[str] | None) -> bool:
    return first is not None and second is not None and first.isdisjoint(second)


def _ids_disjoint(first: IdPattern | None, second: IdPattern | None) -> bool:
    """Whether no id can match both; between two sets of globs, no one knows cheaply."""
    if first is None or second is None or (first.globs and second.globs):
        return False
    return not any(first.matches(value) for value in second.exact) and not any(
        second.matches(value) for value in first.exact
    )


CACHE_SIZE = 65_536  # distinct values remembered per condition before the cache starts over


class ScopeSet:
    """Which of several scopes cover a record, as a bit mask (bit `i` for `scopes[i]`).

    A scope covers a record when each of its conditions does, and every condition but the send
    time and `participant` reads either the sender or the place of the message (chat type, body
    types, receiver), so the mask is the AND of one mask per sender and one per place, each
    computed once and then looked up, and the mask of the send time, which is the same between
    two consecutive edges of the scopes' time ranges: the last such span is kept (records come
    in time order). A `participant` condition holds when the sender or the receiver is listed,
    so its mask is the OR of the masks of those two ids, looked up in one cache of ids; a policy
    without one skips it. A chat type that is not a string or None is rare enough to take the
    scopes' own predicates.
    """

    def __init__(self, scopes: Iterable[Scope], cache_size: int = CACHE_SIZE) -> None:
        self.scopes = tuple(scopes)
        self.everything = (1 << len(self.scopes)) - 1
        self._cache_size = cache_size
        self._predicates = tuple(scope.predicate() for scope in self.scopes)
        places = ("chat_types", "groups", "receivers", "message_types")
        timed = tuple(
            (
                ~(1 << bit),
                scope.sent_since_ms if scope.sent_since_ms is not None else -(2**63),
                scope.sent_until_ms if scope.sent_until_ms is not None else 2**63,
            )
            for bit, scope in enumerate(self.scopes)
            if scope.sent_since_ms is not None or scope.sent_until_ms is not None
        )
        self._parts: dict[tuple, int] = {}  # masks per chat type, body types, receiver
        self._hot: tuple[int, dict | None, dict | None, dict | None, bool] = (  # what `mask` reads
            self.everything,
            {}
            if any(getattr(s, name) is not None for s in self.scopes for name in places)
            else None,
            {} if any(s.senders is not None for s in self.scopes) else None,
            {} if any(s.participants is not None for s in self.scopes) else None,
            bool(timed),
        )
        self._timed = timed
        self._timeless = self.everything  # the mask of a record without a send time
        for keep, _since, _until in timed:
            self._timeless &= keep
        self._edges = sorted({edge for _keep, since, until in timed for edge in (since, until)})
        self._span = (0, 0, self.everything)  # the last send-time span seen, and its timed mask

    def mask(self, facts: Facts | tuple) -> int:
        """The scopes covering a record of these facts (`Facts` or a tuple in its order)."""
        chat_type, sender, receiver, types, sent = facts
        if chat_type is not None and type(chat_type) is not str:
            return self._mask_by_predicates(Facts(*facts))
        mask, by_place, by_sender, by_person, timed = self._hot
        if by_place is not None:
            place = (chat_type, types[0] if len(types) == 1 else tuple(types), receiver)
            found = by_place.get(place)
            if found is None:
                found = self._remember(by_place, place, self._place_mask)
            mask &= found
        if by_sender is not None:
            found = by_sender.get(sender)
            if found is None:
                found = self._remember(by_sender, sender, self._sender_mask)
            mask &= found
        if by_person is not None:
            found = by_person.get(sender)
            if found is None:
                found = self._remember(by_person, sender, self._person_mask)
            other = by_person.get(receiver)
            if other is None:
                other = self._remember(by_person, receiver, self._person_mask)
            mask &= found | other
        if timed:
            if sent is None:
                return mask & self._timeless
            start, end, found = self._span
            if not start <= sent < end:
                start, end, found = self._span = self._span_of(sent)
            mask &= found
        return mask

    def _span_of(self, sent: int) -> tuple[int, int, int]:
        """The span of send times around `sent` within which no scope's time range starts or
        ends, and the mask of the timed conditions over it."""
        edges = self._edges
        after = bisect_right(edges, sent)
        start = edges[after - 1] if after else -(2**63)
        end = edges[after] if after < len(edges) else 2**63
        timed = self.everything
        for keep, since, until in self._timed:
            if not since <= sent < until:
                timed &= keep
        return start, end, timed

    def _remember(self, cache: dict, key: Any, compute: Callable[[Any], int]) -> int:
        if len(cache) >= self._cache_size:
            cache.clear()
        value = cache[key] = compute(key)
        return value

    def _place_mask(self, place: tuple[str | None, Any, str | None]) -> int:
        """The mask of a place: the AND of those of its chat type, body types and receiver
        (each a small set of values, remembered in turn)."""
        chat_type, kinds, receiver = place
        parts = self._parts
        found = self.everything
        for key, compute in (
            (("chat_type", chat_type), self._chat_type_mask),
            (("types", kinds), self._types_mask),
            (("receiver", receiver, chat_type in GROUP_CHAT_TYPES), self._receiver_mask),
        ):
            mask = parts.get(key)
            if mask is None:
                mask = self._remember(parts, key, compute)
            found &= mask
        return found

    def _chat_type_mask(self, key: tuple[str, str | None]) -> int:
        chat_type = key[1]
        return self._bits(lambda s: s.chat_types is None or chat_type in s.chat_types)

    def _types_mask(self, key: tuple[str, Any]) -> int:
        types = (key[1],) if isinstance(key[1], str) else key[1]
        return self._bits(
            lambda s: s.message_types is None or not s.message_types.isdisjoint(types)
        )

    def _receiver_mask(self, key: tuple[str, str | None, bool]) -> int:
        _, receiver, in_group = key
        return self._bits(
            lambda s: (
                (s.receivers is None or s.receivers.matches(receiver))
                and (s.groups is None or (in_group and s.groups.matches(receiver)))
            )
        )

    def _bits(self, covers: Callable[[Scope], bool]) -> int:
        return sum(1 << bit for bit, scope in enumerate(self.scopes) if covers(scope))

    def _sender_mask(self, sender: str | None) -> int:
        return self._bits(lambda s: s.senders is None or s.senders.matches(sender))

    def _person_mask(self, person: str | None) -> int:
        """The scopes whose `participant` condition, if any, `person` (a sender or a receiver)
        meets."""
        return self._bits(lambda s: s.participants is None or s.participants.matches(person))

    def _mask_by_predicates(self, facts: Facts) -> int:
        return sum(1 << bit for bit, covers in enumerate(self._predicates) if covers(facts))
