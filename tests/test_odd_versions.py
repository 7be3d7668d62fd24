"""The run's strays and versions without a timestamp, looked up by msg_id among other hours'."""

from __future__ import annotations

import sqlite3

from auditor.odd_versions import OddVersions

HOURS = [n * 3_600_000 for n in range(4)]


def test_a_msg_id_is_found_only_in_another_hour_and_with_another_content():
    db = sqlite3.connect(":memory:")
    odd = OddVersions(db)
    odd.add(db, [("a", "c1"), ("b", "c1")], HOURS[0])
    odd_elsewhere, other_content = odd.of_hour(HOURS[1])
    odd.add(db, [("c", "c1")], HOURS[1])  # hour 1 indexed in lots as it is read: set apart
    assert odd_elsewhere is not None

    assert [odd_elsewhere(name) for name in "abcd"] == [True, True, False, False]
    assert other_content("a", "c2") and not other_content("a", "c1")
    assert not other_content("c", "c2")

    odd_elsewhere, other_content = odd.of_hour(HOURS[2])
    assert odd_elsewhere is not None
    assert [odd_elsewhere(name) for name in "abcd"] == [True, True, True, False]
    assert other_content("c", "c2") and not other_content("d", "c2")


def test_none_held_is_nothing_to_look_for():
    db = sqlite3.connect(":memory:")
    odd_elsewhere, other_content = OddVersions(db).of_hour(HOURS[0])
    assert odd_elsewhere is None and not other_content("a", "c1")


def test_the_filter_lets_few_msg_ids_through_to_a_lookup():
    """5,000 odd versions: of 20,000 other msg_ids, a handful pass the filter (about 1 in
    10,000 by the odds); each one passing costs a query."""
    db = sqlite3.connect(":memory:")
    odd = OddVersions(db)
    odd.add(db, [(f"odd{n}", "c") for n in range(5_000)], HOURS[0])
    odd_elsewhere, _ = odd.of_hour(HOURS[1])
    assert odd_elsewhere is not None
    queries = []
    db.set_trace_callback(queries.append)

    assert not any(odd_elsewhere(f"timed{n}") for n in range(20_000))
    assert len(queries) < 40
