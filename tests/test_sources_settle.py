"""Settling what a source served into its hour: window, duplicates, conflicts, order."""

import orjson

from auditor.partitions import HOUR_MS, Partition
from auditor.sources.settle import Unreadable, settle

HOUR = Partition(1_793_491_200_000)


def record(msg_id, timestamp, text="hi"):
    found = {"payload": {"bodies": [{"type": "txt", "msg": text}]}}
    if msg_id is not None:
        found["msg_id"] = msg_id
    if timestamp is not None:
        found["timestamp"] = timestamp
    return found


def test_exact_copies_are_dropped_and_counted():
    original = record("1", HOUR.start_ms + 5)
    result = settle(HOUR, [original, dict(original), dict(original)])
    assert result.records == (original,)
    assert result.duplicates == 2
    assert result.conflicts == ()


def test_two_contents_under_one_msg_id_are_both_kept_and_reported():
    first, second = record("7", HOUR.start_ms + 9, "a"), record("7", HOUR.start_ms + 9, "b")
    result = settle(HOUR, [second, first, dict(second)])
    assert sorted(r["payload"]["bodies"][0]["msg"] for r in result.records) == ["a", "b"]
    assert result.conflicts == ("7",)
    assert result.duplicates == 1


def test_records_without_msg_id_are_deduplicated_by_content():
    bare = record(None, HOUR.start_ms + 1)
    other = record(None, HOUR.start_ms + 1, "different")
    result = settle(HOUR, [bare, dict(bare), other])
    assert result.records == (bare, other)
    assert result.duplicates == 1


def test_records_of_other_hours_stay_where_they_were_served_and_are_counted():
    on_start = record("1", HOUR.start_ms)
    on_end = record("2", HOUR.end_ms)
    before = record("3", HOUR.start_ms - 1)
    last = record("4", HOUR.end_ms - 1)
    result = settle(HOUR, [on_end, last, before, on_start])
    assert result.records == (before, on_start, last, on_end)
    assert result.outside == 2


def test_a_record_without_a_usable_timestamp_stays_in_the_hour_that_served_it():
    missing = record("9", None)
    garbled = record("8", "soon")
    assert settle(HOUR, [missing, garbled]).records == (missing, garbled)


def test_records_are_sorted_by_timestamp_then_msg_id_with_incomplete_ones_last():
    late = record("1", HOUR.start_ms + 50)
    early_b = record("b", HOUR.start_ms + 10)
    early_a = record("a", str(HOUR.start_ms + 10))
    no_time = record("z", None)
    no_id = record(None, HOUR.start_ms)
    result = settle(HOUR, [no_time, late, no_id, early_b, early_a])
    assert result.records == (early_a, early_b, late, no_time, no_id)


def test_unreadable_data_is_reported_not_dropped_silently():
    result = settle(HOUR, [Unreadable("2026110100:3", "not JSON"), record("1", HOUR.start_ms)])
    assert [str(item) for item in result.unreadable] == ["2026110100:3: not JSON"]
    assert len(result.records) == 1


def test_the_same_served_set_in_any_order_settles_to_the_same_records():
    served = [record(str(i % 5), HOUR.start_ms + (i * 7919) % HOUR_MS, str(i)) for i in range(40)]
    assert settle(HOUR, served).records == settle(HOUR, served[::-1]).records


def test_variants_with_one_rfc_8785_form_are_one_record_kept_as_first_served():
    """`1.0` and `1` differ as bytes but the archive writes both as `1`: one message, a copy."""
    spelled_float = {**record("3", HOUR.start_ms + 4), "score": 1.0}
    spelled_int = {**record("3", HOUR.start_ms + 4), "score": 1}

    result = settle(HOUR, [spelled_float, spelled_int, dict(spelled_int)])

    assert result.content == (orjson.dumps(spelled_float, option=orjson.OPT_SORT_KEYS),)
    assert (result.duplicates, result.conflicts) == (2, ())


def test_entity_fields_of_the_source_are_left_out_when_variants_are_compared():
    entity = {**record("5", HOUR.start_ms + 2), "uuid": "u-1", "created": 7, "modified": 7}
    touched = {**entity, "modified": 9}
    edited = {**record("5", HOUR.start_ms + 2, "edited"), "uuid": "u-1", "modified": 9}
    fields = frozenset({"uuid", "type", "created", "modified"})

    result = settle(HOUR, [entity, touched, edited], fields)

    assert sorted(r["payload"]["bodies"][0]["msg"] for r in result.records) == ["edited", "hi"]
    assert [r["modified"] for r in result.records if r["payload"]["bodies"][0]["msg"] == "hi"] == [
        7
    ]
    assert (result.duplicates, result.conflicts) == (1, ("5",))
    assert settle(HOUR, [entity, touched]).conflicts == ("5",)
