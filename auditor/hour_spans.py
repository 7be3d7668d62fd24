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

import sqlite3
from collections.abc import Callable, Sequence
from functools import partial

from auditor.partitions import HOUR_MS

# Whether an hour's own records (timed in it: no stray, none without a timestamp) hold a msg_id
_TIMED_IN_HOUR = (
    "SELECT 1 FROM run_messages WHERE hour_ms = ?1 AND msg_id = ?2"
    f" AND timestamp_ms >= ?1 AND timestamp_ms < ?1 + {HOUR_MS}"
)

# ... or one of the hours other than ?2 does, by the index `_BY_ID`
_TIMED_ELSEWHERE = (
    "SELECT 1 FROM run_messages WHERE msg_id = ?1 AND hour_ms != ?2"
    f" AND timestamp_ms >= hour_ms AND timestamp_ms < hour_ms + {HOUR_MS}"
)
_BY_ID = "CREATE INDEX IF NOT EXISTS temp.run_messages_by_id ON run_messages (msg_id)"
# A span overlapping the spans this many places after it (in order of their least msg_id) means
# msg_ids in no time order.
SCATTERED_SPANS = 2


class HourSpans:
    """(least, greatest msg_id, hour) of each lot of records a run indexed timed in their hour,
    and the look for a msg_id among the hours other than one (`other_hours`)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._spans: list[tuple[str, str, int]] = []
        self._by_id = False

    def add(self, rows: Sequence[tuple], hour: int) -> None:
        """The span of `rows` (the hour's index rows sorted by msg_id: msg_id first, timestamp
        third) timed in `hour`; strays and rows without a timestamp are looked up apart."""
        end = hour + HOUR_MS
        timed = [
            next((row[0] for row in ordered if row[2] is not None and hour <= row[2] < end), None)
            for ordered in (rows, reversed(rows))
        ]
        if timed[0] is not None and timed[1] is not None:
            self._spans.append((timed[0], timed[1], hour))

    def other_hours(self, hour: int) -> tuple[str, str, Callable[[str], bool]]:
        """The least and greatest msg_id of the spans of hours other than `hour` ("" and "" for
        none: no msg_id lies in them), and whether one of those hours holds a msg_id timed in it.

        Snowflake msg_ids make a span overlap its neighbours' only. Once a span overlaps two
        others (msg_ids in no order, as an export may give them), each record would be looked
        up in every earlier hour, a cost growing with the run; the run's rows are then indexed
        by msg_id (`SCATTERED_SPANS`), one lookup a record whatever the run's length."""
        others = sorted((s for s in self._spans if s[2] != hour), key=lambda s: s[1], reverse=True)
        if not others:
            return "", "", _nowhere
        if not self._by_id and _scattered(others):
            self._db.execute(_BY_ID)
            self._by_id = True
        if self._by_id:
            query = self._db.execute

            def indexed(identity: str) -> bool:
                return query(_TIMED_ELSEWHERE, (identity, hour)).fetchone() is not None

            return min(s[0] for s in others), others[0][1], indexed
        return min(s[0] for s in others), others[0][1], partial(_in_spans, self._db.execute, others)


def _nowhere(_identity: str) -> bool:
    return False


def _scattered(spans: list[tuple[str, str, int]]) -> bool:
    """Whether a span overlaps the next `SCATTERED_SPANS` spans (in order of least msg_id)."""
    ordered = sorted(spans)
    return any(
        later[0] <= span[1] for span, later in zip(ordered, ordered[SCATTERED_SPANS:], strict=False)
    )


def _in_spans(
    query: Callable[..., sqlite3.Cursor], others: list[tuple[str, str, int]], identity: str
) -> bool:
    """Whether an hour among `others` (greatest first) whose span holds `identity` archived it
    timed in that hour (`query`: the run's database's `execute`)."""
    for least, greatest, hour in others:
        if greatest < identity:
            return False
        if least <= identity and query(_TIMED_IN_HOUR, (hour, identity)).fetchone() is not None:
            return True
    return False
