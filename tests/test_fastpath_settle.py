"""Settle compares contents as sorted-keys bytes and hashes them only where needed: the same
records, counts and order as keying everything by `records.content_hash` (contents with one
RFC 8785 form being one), and it hands those bytes on for the canonical form."""

from __future__ import annotations

import random

import orjson

from auditor.archive.canonical import CanonicalizationError, canonical
from auditor.partitions import HOUR_MS, Partition
from auditor.records import content_hash, msg_id, timestamp_ms
from auditor.sources.settle import Unreadable, settle

HOUR = Partition(1_793_491_200_000)
T = HOUR.start_ms + 10


def _by_content_hash(served):
    """The rules of `settle` as first written, every record keyed by its content hash, and a
    content whose RFC 8785 form an earlier one of its msg_id has being a copy of it."""
    variants, conflicts, ordered, trailing = {}, set(), [], []
    duplicates = outside = 0
    for item in served:
        if isinstance(item, Unreadable):
            continue
        instant = timestamp_ms(item)
        identity = msg_id(item)
        digest = content_hash(item)
        seen = variants.setdefault(identity if identity is not None else "#" + digest, set())
        value = _rfc8785_or(item, digest)
        if digest in seen or value in seen:
            duplicates += 1
            continue
        if seen and identity is not None:
            conflicts.add(identity)
        seen.update((digest, value))
        outside += instant is not None and not HOUR.contains(instant)
        if instant is None or identity is None:
            trailing.append(item)
        else:
            ordered.append((instant, identity, digest, item))
    ordered.sort(key=lambda entry: entry[:3])
    records = tuple(entry[3] for entry in ordered) + tuple(trailing)
    return records, duplicates, tuple(sorted(conflicts)), outside


def _rfc8785_or(record, digest):
    try:
        return canonical(record)
    except CanonicalizationError:
        return digest


def test_variants_of_one_msg_id_at_one_instant_are_ordered_by_content_hash():
    variants = [{"msg_id": "7", "timestamp": T, "v": n} for n in range(6)]
    expected = tuple(sorted(variants, key=content_hash))

    result = settle(HOUR, [*variants, dict(variants[2]), {"v": 2, "timestamp": T, "msg_id": "7"}])

    assert result.records == expected
    assert (result.duplicates, result.conflicts) == (2, ("7",))


def test_each_record_comes_with_its_sorted_json_or_none_where_orjson_cannot_write_it():
    big = {"msg_id": "2", "timestamp": T + 1, "n": 2**70}
    lone = {"msg_id": "3", "timestamp": T + 2, "t": "\ud800"}
    plain = {"timestamp": T, "msg_id": "1", "lat": -0.0}

    result = settle(HOUR, [lone, big, plain, dict(big), {"x": 1}])

    assert result.records == (plain, big, lone, {"x": 1})
    assert result.content == (
        b'{"lat":-0.0,"msg_id":"1","timestamp":1793491200010}',
        None,
        None,
        b'{"x":1}',
    )
    assert result.duplicates == 1


def test_records_equal_as_json_values_are_copies_whatever_their_key_order():
    first = {"msg_id": "1", "timestamp": T, "payload": {"b": 1, "a": [1.5, None]}}
    second = {"payload": {"a": [1.5, None], "b": 1}, "timestamp": T, "msg_id": "1"}
    integral = {"msg_id": "1", "timestamp": T, "payload": {"b": 1.0, "a": [1.5, None]}}
    other = {"msg_id": "1", "timestamp": T, "payload": {"b": 1.5, "a": [1.5, None]}}

    result = settle(HOUR, [first, second, integral, other])

    assert result.records == tuple(sorted([first, other], key=content_hash))
    assert (result.duplicates, result.conflicts) == (2, ("1",))


def test_settle_agrees_with_keying_by_content_hash_on_random_served_hours():
    rng = random.Random(5)
    pool = []
    for n in range(400):
        record = {
            "msg_id": rng.choice([str(n % 40), n % 40, "#x", 5.0, True, None]),
            "timestamp": rng.choice([T + n % 9, T - HOUR_MS, str(T), float(T), True, None, -1]),
            "v": rng.choice([n % 3, 1.0, -0.0, None, "中", 2**65, "\udc00", [1, {"a": 2}]]),
        }
        pool.append({k: v for k, v in record.items() if v is not None or rng.random() < 0.3})
    for _ in range(20):
        served = [dict(rng.choice(pool)) for _ in range(300)]
        served.insert(rng.randint(0, 300), Unreadable("h:1", "not JSON", b"{"))
        rng.shuffle(served)

        result = settle(HOUR, served)

        assert (
            result.records,
            result.duplicates,
            result.conflicts,
            result.outside,
        ) == _by_content_hash(served)
        assert result.content == tuple(_sorted_or_none(r) for r in result.records)


def _sorted_or_none(record):
    try:
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None
