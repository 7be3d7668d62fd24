"""The run's look for a msg_id among its other hours: by span while msg_ids grow with time, by
an index of msg_ids once they come in no order, the same answers either way."""

from __future__ import annotations

import random
import sqlite3

import pytest

from auditor import hour_spans
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
    spans.add(indexed, hour, [identity for identity, sent in rows if not timed_in(sent, hour)])


def timed_in(sent: int | None, hour: int) -> bool:
    return sent is not None and hour <= sent < hour + HOUR_MS


def by_id(db) -> bool:
    names = db.execute("SELECT name FROM sqlite_temp_master WHERE type = 'index'").fetchall()
    return ("run_messages_by_id",) in names


@pytest.mark.parametrize("scattered", [False, True])
def test_a_msg_id_is_found_only_in_another_hour(scattered):
    db = run_table()
    spans = HourSpans(db)
    hours = [START + n * HOUR_MS for n in range(4)]
    for n, hour in enumerate(hours[:3]):
        ids = [f"{k}{n}{k:02d}" if scattered else f"{n}{k:03d}" for k in range(10)]
        index_hour(db, spans, hour, [(identity, hour + 5) for identity in ids])
    # a stray served by the first hour and records without a timestamp
    odd = [("5555", hours[3] + 1), ("6666", None), ("1600", None), ("1800", None)]
    index_hour(db, spans, hours[0], odd)

    floor, ceiling, elsewhere = spans.other_hours(hours[3])
    # the first lot of the hour being read (a large hour's), within the spans, with a stray
    index_hour(db, spans, hours[3], [("1500", hours[3] + 5), ("1700", hours[0] + 5)])

    assert by_id(db) is scattered
    assert elsewhere("1004" if not scattered else "4104")
    assert elsewhere("5555") and elsewhere("6666") and not elsewhere("9999")
    assert floor <= "1004" <= ceiling and floor <= "6666" <= ceiling
    assert elsewhere("1600") and not elsewhere("1500") and not elsewhere("1700")  # its own


def test_no_other_hour_holds_nothing():
    spans = HourSpans(run_table())
    floor, ceiling, elsewhere = spans.other_hours(START)
    assert (floor, ceiling) == ("", "") and not elsewhere("1")


def old_scattered(spans: list[tuple[str, str, int]]) -> bool:
    """A span overlapping the one two places after it in order of least msg_id, by brute force."""
    ordered = sorted(spans)
    return any(later[0] <= span[1] for span, later in zip(ordered, ordered[2:], strict=False))


def served_elsewhere(db, identity: str, hour: int) -> bool:
    query = "SELECT 1 FROM run_messages WHERE msg_id = ? AND hour_ms != ?"
    return db.execute(query, (identity, hour)).fetchone() is not None


def snowflake(rng: random.Random, sent: int) -> str:
    """A msg_id of a server whose clock is up to 5 s off, as Easemob's grow with time."""
    return str(((sent + rng.randint(-5_000, 5_000)) << 22) | rng.randint(0, 4095))


@pytest.mark.parametrize("order", ["ordered", "snowflake", "random"])
@pytest.mark.parametrize("seed", range(2))
def test_the_ordered_spans_answer_as_a_brute_force_look(order, seed, monkeypatch):
    """Lots added as hours are read (each once, as a run reads them; large ones in two lots
    while the hour is read, a few strays and records without a timestamp) answer every look as
    a look through every other hour's rows does; the span covers every odd version's msg_id too.
    Strays of 3 hours later are held ahead of the spans, past `AHEAD_HELD` (2 with seed 1)
    the least of them in the odd span."""
    if seed:
        monkeypatch.setattr(hour_spans, "AHEAD_HELD", 2)
    rng = random.Random(seed)
    db = run_table()
    spans = HourSpans(db)
    counter = iter(range(10**9))
    scattered = False
    lots: list[tuple[str, str, int]] = []  # (least, greatest msg_id timed in its hour, hour)
    odd: list[str] = []  # msg_ids of strays and records without a timestamp
    hours = [START + n * HOUR_MS for n in range(60)]

    def msg_id(sent: int) -> str:
        if order == "ordered":
            return f"{sent:015d}{next(counter):06d}"
        if order == "snowflake":
            return snowflake(rng, sent)
        return str(rng.randrange(10**17, 10**18))

    for hour in hours:
        others = list(lots)
        scattered = scattered or old_scattered(others)
        floor, ceiling, elsewhere = spans.other_hours(hour)
        assert (floor, ceiling) == (
            min([s[0] for s in others] + odd, default=""),
            max([s[1] for s in others] + odd, default=""),
        )
        assert by_id(db) is scattered
        known = [row[0] for row in db.execute("SELECT msg_id FROM run_messages")]
        probes = rng.sample(known, min(len(known), 30)) + [msg_id(hour) for _ in range(10)]
        added = []
        odd_added: list[str] = []
        for _lot in range(rng.choice([1, 1, 2])):
            rows = [
                (msg_id(sent), sent) for sent in sorted(rng.sample(range(hour, hour + HOUR_MS), 8))
            ]
            stray = hour + HOUR_MS * rng.choice([-2, 3, 3])  # its msg_id of its send time
            rows += [(msg_id(stray), stray), (msg_id(hour), None)]
            rows = [row for row in rows if rng.random() < 0.9]
            index_hour(db, spans, hour, rows)
            timed = [i for i, sent in rows if timed_in(sent, hour)]
            if timed:
                added.append((min(timed), max(timed), hour))
            odd_added += [i for i, sent in rows if not timed_in(sent, hour)]
            for identity in probes:
                assert elsewhere(identity) is served_elsewhere(db, identity, hour), identity
        lots += added
        odd += odd_added


class Counted(str):
    """A msg_id that counts the comparisons made of it."""

    made = 0

    def __lt__(self, other):
        Counted.made += 1
        return str.__lt__(self, other)

    def __le__(self, other):
        Counted.made += 1
        return str.__le__(self, other)

    def __gt__(self, other):
        Counted.made += 1
        return str.__gt__(self, other)

    def __ge__(self, other):
        Counted.made += 1
        return str.__ge__(self, other)


def test_an_hours_look_does_not_grow_with_the_run():
    """A run of months: each hour's look once sorted every earlier hour's span (2,185
    comparisons an hour over 1,095 hours, 8,755 over 4,380); in order, a few a span."""
    rng = random.Random(7)
    spans = HourSpans(run_table())
    hours = 1_000
    Counted.made = 0
    for n in range(hours):
        hour = START + n * HOUR_MS
        spans.other_hours(hour)
        sent = [hour, hour + HOUR_MS // 2, hour + HOUR_MS - 1]
        rows = sorted((Counted(snowflake(rng, at)), b"", at, None, hour, 0, 0) for at in sent)
        spans.add(rows, hour)
    assert Counted.made < 40 * hours


def test_a_stray_with_a_future_msg_id_costs_later_records_no_query_and_is_still_found():
    """A stray served by the second hour under a msg_id of 40 hours later (a sender's clock
    ahead) widened the span of odd versions (from the first hour's record without a timestamp)
    to it, so every record of the hours between was looked up in `run_odd`: one query each. It
    is kept apart until time passes it, and the version timed in its own hour is still told."""
    rng = random.Random(3)
    db = run_table()
    spans = HourSpans(db)
    hours = [START + n * HOUR_MS for n in range(44)]
    future = snowflake(rng, hours[41] + 600_000)
    queries: list[str] = []
    db.set_trace_callback(queries.append)
    found: list[str] = []
    for n, hour in enumerate(hours):
        floor, ceiling, elsewhere = spans.other_hours(hour)
        sent = sorted(rng.sample(range(hour, hour + HOUR_MS), 25))
        rows = [(snowflake(rng, at), at) for at in sent]
        if n == 0:
            rows.append((snowflake(rng, hour + 60_000), None))  # a record without a timestamp
        if n == 1:
            rows.append((future, hours[41] + 600_000))  # served an hour it is not timed in
        if n == 41:
            rows.append((future, hours[41] + 600_000))  # the version timed in its hour
        timed = [i for i, at in rows if timed_in(at, hour)]
        found += [i for i in timed if floor <= i <= ceiling and elsewhere(i)]  # as `_kept` asks
        index_hour(db, spans, hour, rows)
    odd_looks = [query for query in queries if query.startswith("SELECT 1 FROM run_odd")]

    assert found == [future]
    assert len(odd_looks) == 1, len(odd_looks)  # 977 before: each record of hours 2-40
