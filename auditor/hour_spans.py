"""The msg_id span of each hour a run has archived, to find a msg_id another hour served.

A record timed in the hour that served it repeats no other hour's record (a message's bytes fix
its timestamp, hence its hour), but its msg_id may: an edit re-sent later under the same msg_id,
each version in its own hour. Looking every record up among the run's earlier hours cost 4-6 %
of the coordinator's instructions (README, "A known limit"). Easemob's msg_ids grow with time,
roughly (a snowflake of the sending server's clock), so an hour's msg_ids lie in a span that
overlaps only its neighbours': a record is looked up only in the hours whose span holds its
msg_id, and most records, above every earlier hour's span, cost one string comparison.
The spans are exact whatever the msg_ids' order; msg_ids in no order only make them overlap.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from functools import partial

from auditor.partitions import HOUR_MS

# Whether an hour's own records (timed in it: no stray, none without a timestamp) hold a msg_id
_TIMED_IN_HOUR = (
    "SELECT 1 FROM run_messages WHERE hour_ms = ?1 AND msg_id = ?2"
    f" AND timestamp_ms >= ?1 AND timestamp_ms < ?1 + {HOUR_MS}"
)

# ... or one of the hours other than ?2 served it at all (timed in it or not), by `_BY_ID`
_ELSEWHERE = "SELECT 1 FROM run_messages WHERE msg_id = ?1 AND hour_ms != ?2 LIMIT 1"
# ... or served it outside its hour or without a timestamp (`run_odd`)
_ODD_ELSEWHERE = "SELECT 1 FROM run_odd WHERE msg_id = ?1 AND hour_ms != ?2 LIMIT 1"
_BY_ID = "CREATE INDEX IF NOT EXISTS temp.run_messages_by_id ON run_messages (msg_id)"
# A span overlapping the spans this many places after it (in order of their least msg_id) means
# msg_ids in no time order.
SCATTERED_SPANS = 2
# Odd msg_ids kept apart from the odd span while above every span (`HourSpans._settle_ahead`):
# a few KB of strings; a source serving more than that many early is looked up as before.
AHEAD_HELD = 256


class HourSpans:
    """(least, greatest msg_id, hour) of each lot of records a run indexed timed in their hour,
    and the look for a msg_id among the hours other than one (`other_hours`).

    The spans are kept in order of least msg_id as they come, with the least and greatest of
    them all and whether they have become scattered, so that an hour's look costs O(log H) for
    H hours, not a sort of every span (9.7 s over 4,380 hours). A lot indexed while its hour is
    read waits (`_waiting`) until the next hour's look, so the spans an hour asks stay fixed.
    A run reads each hour once (its second look ends where its window begins), so the spans
    an hour asks are all of other hours.

    A stray or a record without a timestamp (an odd version) fixes no hour to look in: it is
    rare, so it is kept by msg_id in `run_odd`, and the least and greatest of those msg_ids
    widen the span the look covers; a msg_id within both is looked up there too. One above
    every span when it came (a sender's clock ahead) is held apart until a span reaches it
    (`_settle_ahead`), so that the records of the hours below it cost no query."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._spans: list[tuple[str, str, int]] = []  # in order: least, greatest, hour
        self._leasts: list[str] = []  # their least msg_ids, for `bisect`
        self._waiting: list[tuple[str, str, int]] = []
        self._floor = ""
        self._ceiling = ""
        self._scattered = False
        self._by_id = False
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS run_odd (msg_id TEXT NOT NULL,"
            " hour_ms INTEGER NOT NULL, PRIMARY KEY (msg_id, hour_ms)) WITHOUT ROWID"
        )
        db.execute("DELETE FROM run_odd")
        self._odd: tuple[str, str] | None = None  # least and greatest odd msg_id
        self._odd_waiting: list[tuple[str, str]] = []
        self._ahead: set[str] = set()  # odd msg_ids above every span when they came
        self._ahead_waiting: list[str] = []

    def add(self, rows: Sequence[tuple], hour: int, odd: Iterable[str] = ()) -> None:
        """The span of `rows` (the hour's index rows sorted by msg_id: msg_id first, timestamp
        third) timed in `hour`, and the msg_ids of its `odd` versions among them (strays and
        rows without a timestamp) into `run_odd`: in the caller's transaction, if any."""
        end = hour + HOUR_MS
        timed = [
            next((row[0] for row in ordered if row[2] is not None and hour <= row[2] < end), None)
            for ordered in (rows, reversed(rows))
        ]
        if timed[0] is not None and timed[1] is not None:
            self._waiting.append((timed[0], timed[1], hour))
        odd_rows = [(identity, hour) for identity in odd]
        if not odd_rows:
            return
        self._db.executemany("INSERT OR IGNORE INTO run_odd VALUES (?, ?)", odd_rows)
        bound = max(self._ceiling, max((span[1] for span in self._waiting), default=""))
        ahead = sorted(row[0] for row in odd_rows if bound and row[0] > bound)
        within = [row[0] for row in odd_rows if not bound or row[0] <= bound]
        within += ahead[: max(len(ahead) - AHEAD_HELD, 0)]
        self._ahead_waiting += ahead[-AHEAD_HELD:] if ahead else ()
        if within:
            self._odd_waiting.append((min(within), max(within)))

    def other_hours(self, hour: int) -> tuple[str, str, Callable[[str], bool]]:
        """The least and greatest msg_id of the spans of hours other than `hour` ("" and "" for
        none: no msg_id lies in them), and whether one of those hours served a msg_id: timed in
        it, or as an odd version.

        Snowflake msg_ids make a span overlap its neighbours' only. Once a span overlaps two
        others (msg_ids in no order, as an export may give them), each record would be looked
        up in every earlier hour, a cost growing with the run; the run's rows are then indexed
        by msg_id (`SCATTERED_SPANS`), one lookup a record whatever the run's length.

        With odd versions, the span covers theirs too and the look also asks `run_odd` (by the
        index, `run_messages`, which holds them too): a record timed in its hour costs nothing
        more unless its msg_id lies within both, or is one held ahead (a set's lookup)."""
        for span in self._waiting:
            self._place(span)
        self._waiting.clear()
        for least, greatest in self._odd_waiting:
            self._widen_odd(least, greatest)
        self._odd_waiting.clear()
        if self._ahead_waiting or self._ahead:
            self._settle_ahead()
        floor, ceiling, look = self._timed_elsewhere(hour)
        odd, ahead = self._odd, self._ahead
        if odd is None and not ahead:
            return floor, ceiling, look
        if ahead:
            least, greatest = min(ahead), max(ahead)
            floor, ceiling = min(floor or least, least), max(ceiling, greatest)
            odd = odd or (greatest, greatest)  # none but those held ahead: a span of one
        odd_floor, odd_ceiling = odd
        floor, ceiling = min(floor or odd_floor, odd_floor), max(ceiling, odd_ceiling)
        if self._by_id:
            return floor, ceiling, self._indexed(hour)
        query = self._db.execute

        def also_odd(identity: str) -> bool:
            return look(identity) or (
                odd_floor <= identity <= odd_ceiling
                and query(_ODD_ELSEWHERE, (identity, hour)).fetchone() is not None
            )

        if not ahead:
            return floor, ceiling, also_odd

        def also_ahead(identity: str) -> bool:
            return also_odd(identity) or (
                identity in ahead and query(_ODD_ELSEWHERE, (identity, hour)).fetchone() is not None
            )

        return floor, ceiling, also_ahead

    def _widen_odd(self, least: str, greatest: str) -> None:
        held = self._odd or (least, greatest)
        self._odd = (min(held[0], least), max(held[1], greatest))

    def _settle_ahead(self) -> None:
        """The odd msg_ids that came above every span (a sender's clock ahead, or a version of
        the next hour served early) kept apart from the odd span: within it, every record of
        the hours below them would be looked up in `run_odd`, one query each, until time
        passed them. Once a span reaches one (or past `AHEAD_HELD` of them, the least), it
        widens the odd span, as any other."""
        ahead = self._ahead
        ahead.update(self._ahead_waiting)
        self._ahead_waiting.clear()
        passed = sorted(identity for identity in ahead if identity <= self._ceiling)
        if len(ahead) - len(passed) > AHEAD_HELD:
            passed = sorted(ahead)[: len(ahead) - AHEAD_HELD]
        if passed:
            ahead.difference_update(passed)
            self._widen_odd(passed[0], passed[-1])

    def _timed_elsewhere(self, hour: int) -> tuple[str, str, Callable[[str], bool]]:
        """`other_hours` among the spans of records timed in their hour: by the index
        `_BY_ID` (which finds odd versions too) once they are scattered."""
        if not self._spans:
            return "", "", _nowhere
        floor, ceiling = self._floor, self._ceiling
        if not self._by_id and self._scattered:
            self._db.execute(_BY_ID)
            self._by_id = True
        if self._by_id:
            return floor, ceiling, self._indexed(hour)
        return floor, ceiling, partial(_in_ordered, self._db.execute, self._spans, self._leasts)

    def _indexed(self, hour: int) -> Callable[[str], bool]:
        query = self._db.execute

        def indexed(identity: str) -> bool:
            return query(_ELSEWHERE, (identity, hour)).fetchone() is not None

        return indexed

    def _place(self, span: tuple[str, str, int]) -> None:
        """`span` in order, noting whether it makes the spans scattered: a window of
        `SCATTERED_SPANS` + 1 neighbours is new only where it holds `span`."""
        spans = self._spans
        at = bisect.bisect_right(spans, span)
        spans.insert(at, span)
        self._leasts.insert(at, span[0])
        if not self._floor or span[0] < self._floor:
            self._floor = span[0]
        if span[1] > self._ceiling:
            self._ceiling = span[1]
        if not self._scattered:
            first = max(at - SCATTERED_SPANS, 0)
            self._scattered = _scattered(spans[first : at + SCATTERED_SPANS + 1])


def _nowhere(_identity: str) -> bool:
    return False


def _scattered(spans: Sequence[tuple[str, str, int]]) -> bool:
    """Whether a span overlaps the span `SCATTERED_SPANS` places after it among `spans`
    (in order of least msg_id)."""
    ordered = sorted(spans)
    return any(
        later[0] <= span[1] for span, later in zip(ordered, ordered[SCATTERED_SPANS:], strict=False)
    )


def _in_ordered(
    query: Callable[..., sqlite3.Cursor],
    spans: list[tuple[str, str, int]],
    leasts: list[str],
    identity: str,
) -> bool:
    """Whether an hour among `spans` (in order, not scattered) whose span holds `identity`
    archived it timed in that hour (`query`: the run's database's `execute`). Not scattered,
    a span ends before the least msg_id of the span `SCATTERED_SPANS` places after it: only
    the last `SCATTERED_SPANS` spans beginning at or below `identity` can hold it."""
    at = bisect.bisect_right(leasts, identity)
    for least, greatest, hour in spans[max(at - SCATTERED_SPANS, 0) : at]:
        if least <= identity <= greatest and (
            query(_TIMED_IN_HOUR, (hour, identity)).fetchone() is not None
        ):
            return True
    return False
