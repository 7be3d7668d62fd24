"""Which records a retention rule or a legal hold covers: chat type, people, groups, types, time.

Every condition given must hold (AND); each condition lists values of which one must match (OR).
Sender, receiver and group values are exact ids or shell-style globs (`user00*`, `14025412067?`).
A `group` condition only matches group chats and chat rooms, whose receiver is the group id.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    """Exact ids and globs compiled into a set lookup and one regular expression."""

    exact: frozenset[str]
    globs: tuple[str, ...]
    _regex: re.Pattern[str] | None

    @classmethod
    def of(cls, values: Iterable[str]) -> IdPattern:
        values = tuple(values)
        globs = tuple(value for value in values if _GLOB_CHARS & set(value))
        exact = frozenset(value for value in values if value not in globs)
        regex = re.compile("|".join(fnmatch.translate(glob) for glob in globs)) if globs else None
        return cls(exact, globs, regex)

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if value in self.exact:
            return True
        return self._regex is not None and self._regex.match(value) is not None

    def describe(self) -> str:
        return ", ".join(sorted(self.exact) + list(self.globs))


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
