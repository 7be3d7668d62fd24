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

from auditor.partitions import HOUR_MS

# Whether an hour's own records (timed in it: no stray, none without a timestamp) hold a msg_id
_TIMED_IN_HOUR = (
    "SELECT 1 FROM run_messages WHERE hour_ms = ?1 AND msg_id = ?2"
    f" AND timestamp_ms >= ?1 AND timestamp_ms < ?1 + {HOUR_MS}"
)


class HourSpans:
    """(least, greatest msg_id, hour) of each lot of records a run indexed timed in their hour."""

    def __init__(self) -> None:
        self._spans: list[tuple[str, str, int]] = []

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

    def other_hours(self, hour: int) -> tuple[str, str, list[tuple[str, str, int]]]:
        """The least and greatest msg_id of the spans of hours other than `hour` ("" and "" for
        none: no msg_id lies in them), and those spans, greatest first."""
        others = sorted((s for s in self._spans if s[2] != hour), key=lambda s: s[1], reverse=True)
        if not others:
            return "", "", []
        return min(s[0] for s in others), others[0][1], others


def served_in_other_hour(
    query: Callable[..., sqlite3.Cursor], identity: str, others: list[tuple[str, str, int]]
) -> bool:
    """Whether an hour among `others` (`HourSpans.other_hours`) whose span holds `identity`
    archived it timed in that hour (`query`: the run's database's `execute`)."""
    for least, greatest, hour in others:
        if greatest < identity:
            return False
        if least <= identity and query(_TIMED_IN_HOUR, (hour, identity)).fetchone() is not None:
            return True
    return False
