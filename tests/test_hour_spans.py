"""The run's look for a msg_id among its other hours: by span while msg_ids grow with time, by
an index of msg_ids once they come in no order, the same answers either way."""

from __future__ import annotations

import sqlite3

import pytest

from auditor.hour_spans import HourSpans
from auditor.partitions import HOUR_MS

START = 1_793_491_200_000


def run_table() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TEMP TABLE run_messages (msg_id TEXT NOT NULL, content_hash BLOB NOT NULL,"
        " timestamp_ms INTEGER, retain_until_ms INTEGER, hour_ms INTEGER NOT NULL,"
        " verdict INTEGER, seq INTEGER, PRIMARY KEY (hour_ms, msg_id, content_hash))"
        " WITHOUT ROWID"
    )
    return db


def index_hour(db, spans: HourSpans, hour: int, rows: list[tuple[str, int | None]]) -> None:
    """Rows (msg_id, timestamp) served by `hour`, as `_index_hour` writes and spans them."""
    indexed = sorted(
        (identity, b"h" + identity.encode(), sent, None, hour, 0, 0) for identity, sent in rows
    )
    db.executemany("INSERT INTO run_messages VALUES (?, ?, ?, ?, ?, ?, ?)", indexed)
    spans.add(indexed, hour)


def by_id(db) -> bool:
    names = db.execute("SELECT name FROM sqlite_temp_master WHERE type = 'index'").fetchall()
    return ("run_messages_by_id",) in names


@pytest.mark.parametrize("scattered", [False, True])
def test_a_msg_id_is_found_only_timed_in_another_hour(scattered):
    db = run_table()
    spans = HourSpans(db)
    hours = [START + n * HOUR_MS for n in range(4)]
    for n, hour in enumerate(hours[:3]):
        ids = [f"{k}{n}{k:02d}" if scattered else f"{n}{k:03d}" for k in range(10)]
        index_hour(db, spans, hour, [(identity, hour + 5) for identity in ids])
    # a stray served by the first hour and a record without a timestamp: neither is looked for
    index_hour(db, spans, hours[0], [("5555", hours[3] + 1), ("6666", None)])

    floor, ceiling, elsewhere = spans.other_hours(hours[3])

    assert by_id(db) is scattered
    assert elsewhere("1004" if not scattered else "4104")
    assert not elsewhere("5555") and not elsewhere("6666") and not elsewhere("9999")
    assert floor <= "1004" <= ceiling
    _f, _c, own_hour_excluded = spans.other_hours(hours[1])
    assert not own_hour_excluded("1004" if not scattered else "4104")
    assert own_hour_excluded("2004" if not scattered else "4204")


def test_no_other_hour_holds_nothing():
    spans = HourSpans(run_table())
    floor, ceiling, elsewhere = spans.other_hours(START)
    assert (floor, ceiling) == ("", "") and not elsewhere("1")
