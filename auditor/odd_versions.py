"""The run's versions served outside their own hour, to compare them with every other hour's.

A stray (served by an hour its timestamp is not in) or a record without a timestamp fixes no
hour to look in for another version of its msg_id: such a version was compared with its
timestamp's hour and the strays of its instant only, and one without a timestamp with nothing.
They are rare, so each is looked up by msg_id among the other hours' odd versions (`run_odd`)
and, by `HourSpans`, among the versions timed in theirs. A version timed in its own hour is
compared with them through a filter of their msg_ids' hashes (`_BITS`, 128 KiB whatever their
number: a set held 143 bytes a stray, and a source naming its hours in another zone makes
every record one), and only a msg_id the filter may hold is looked up.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

_BITS = 1 << 20
"""The filter's bits: two of them a msg_id, so that with 5,000 odd versions in the run about
one msg_id in 10,000 not among them is looked up, and with 100,000, 3 in 100."""
_MASK = _BITS - 1
_ODD_ELSEWHERE = (
    "SELECT 1 FROM run_odd WHERE msg_id = ?1 AND hour_ms != ?2 AND content_hash != ?3 LIMIT 1"
)
_ID_ELSEWHERE = "SELECT 1 FROM run_odd WHERE msg_id = ?1 AND hour_ms != ?2 LIMIT 1"


class OddVersions:
    """(msg_id, serving hour, content) of each stray and record without a timestamp the run
    has indexed, and the looks for a msg_id among them (`of_hour`)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS run_odd (msg_id TEXT NOT NULL,"
            " hour_ms INTEGER NOT NULL, content_hash TEXT NOT NULL,"
            " PRIMARY KEY (msg_id, hour_ms, content_hash)) WITHOUT ROWID"
        )
        db.execute("DELETE FROM run_odd")
        self._bits = bytearray()  # sized at the first odd version

    def add(self, db: sqlite3.Connection, pairs: Iterable[tuple[str, str]], hour: int) -> None:
        """(msg_id, content hash in hex) of odd versions `hour` served, into `run_odd` through
        `db` (in the caller's transaction) and the filter."""
        rows = [(identity, hour, content) for identity, content in pairs]
        db.executemany("INSERT OR IGNORE INTO run_odd VALUES (?, ?, ?)", rows)
        if rows and not self._bits:
            self._bits = bytearray(_BITS // 8)
        bits = self._bits
        for identity, _hour, _content in rows:
            for bit in _bits_of(identity):
                bits[bit >> 3] |= 1 << (bit & 7)

    def of_hour(self, hour: int) -> tuple[Callable[[str], bool] | None, Callable[[str, str], bool]]:
        """For the records `hour` served: whether another hour served an odd version of a
        msg_id (None while the run has none), and whether another hour served one of a msg_id
        with another content. An hour is not compared with itself: the worker that settled it
        has told its versions."""
        query = self._db.execute

        def other_content(identity: str, content: str) -> bool:
            return query(_ODD_ELSEWHERE, (identity, hour, content)).fetchone() is not None

        if not self._bits:
            return None, other_content
        bits = self._bits

        def odd_elsewhere(identity: str) -> bool:
            code = hash(identity)
            first, second = code & _MASK, code >> 20 & _MASK
            return (
                bits[first >> 3] >> (first & 7) & 1 == 1
                and bits[second >> 3] >> (second & 7) & 1 == 1
                and query(_ID_ELSEWHERE, (identity, hour)).fetchone() is not None
            )

        return odd_elsewhere, other_content


def _bits_of(identity: str) -> tuple[int, int]:
    """The filter's two bits for a msg_id: from its string hash, which the record's look in
    its hour (`seen`) has computed and the string keeps."""
    code = hash(identity)
    return code & _MASK, code >> 20 & _MASK
