"""Canonical JSON: the fast path writes the `rfc8785` package's bytes, big integers stay exact."""

from __future__ import annotations

import hmac
import json
import math
import random

import pytest
import rfc8785

from auditor.archive import canonical as canonical_module
from auditor.archive.canonical import CanonicalizationError, canonical, canonical_reference
from auditor.archive.lines import canonical_line, line_from, prepare, record_bytes, salt_for
from auditor.emulator.dataset import SyntheticHistory

HOSTILE = [
    {"msg": "今天下午三点开会，收到，谢谢", "lat": 39.983805, "lng": 116.307417},
    {"floats": [1e21, 1e20, 5e-7, 1e-6, -0.0, 0.0, 1.0, -1.5, 123456789.125, 2.0**60, 1e-300]},
    {"floats": [0.1, 0.2, 0.30000000000000004, 1.7976931348623157e308, 5e-324, 100.0, 9.5e15]},
    {"escapes": 'quote " backslash \\ slash / tab \t newline \n return \r bell \x07'},
    {"controls": "".join(chr(code) for code in range(0x20)) + "\x7f\u2028\u2029\ufeff"},
    {"emoji": "😀👍🏽 family 👨‍👩‍👧", "non_bmp": "𠀋𩸽𝄞"},
    {"\uff01": "fullwidth key", "😀": "emoji key", "a": 1, "\u00e9": 2, "\ue000": 3},
    {"é": {"z": [], "y": {}, "x": [None, True, False]}, "": "empty key"},
    {"ints": [0, -1, 2**53 - 1, -(2**53 - 1), 42], "nested": [[[[{"deep": [1, [2, [3]]]}]]]]},
    {"null": None, "list": [None, None], "after": "null,"},
    {"msg": "looks like a number: 1.5, [2e3] and :4.0}", "n": 7},
    {"key order": {"b": 1, "a": 2, "aa": 3, "A": 4, "_": 5, "10": 6, "9": 7}},
    [1, "two", 3.0, {"four": 4}],
    {"customExts": [{"orderId": "12345678"}, {"amount": "9.00"}], "v2:customExts": {}},
]


BMP = [
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0x7F, 0x7F),
    (0x4E00, 0x9FFF),
    (0xFF00, 0xFFEF),
    (0xE000, 0xF8FF),
]
NON_BMP = [(0x1F300, 0x1FAFF), (0x20000, 0x2A6DF)]


def _random_text(rng: random.Random, pools: list[tuple[int, int]]) -> str:
    chars = []
    for _ in range(rng.randint(0, 12)):
        low, high = rng.choice(pools)
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars)


def _no_reference(value):
    raise AssertionError(f"took the reference path for {value!r}")


def _random_value(rng: random.Random, depth: int = 0, floats: bool = True):
    """Any JSON value; with `floats=False` one that the fast path serialises itself."""
    kind = rng.randint(0, 8 if depth < 3 else 4)
    pools = BMP + NON_BMP if floats else BMP
    if kind == 2 and not floats:
        kind = 1
    if kind == 0:
        return rng.choice([None, True, False] if floats else [True, False])
    if kind == 1:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if kind == 2:
        return rng.choice([rng.uniform(-1e3, 1e3), rng.random() * 10 ** rng.randint(-12, 30), -0.0])
    if kind in (3, 4):
        return _random_text(rng, pools)
    if kind in (5, 6):
        return {
            _random_text(rng, pools): _random_value(rng, depth + 1, floats)
            for _ in range(rng.randint(0, 5))
        }
    return [_random_value(rng, depth + 1, floats) for _ in range(rng.randint(0, 5))]


def test_the_fast_path_writes_the_reference_bytes_for_a_hostile_corpus():
    for value in HOSTILE:
        assert canonical(value) == rfc8785.dumps(value), value


@pytest.mark.parametrize("floats", [True, False])
def test_the_fast_path_writes_the_reference_bytes_for_random_json_values(floats):
    rng = random.Random(8785)
    values = [{"v": _random_value(rng, floats=floats)} for _ in range(3000)]
    assert [canonical(value) for value in values] == [rfc8785.dumps(value) for value in values]


def test_values_without_floats_nulls_or_non_bmp_text_never_need_the_reference(monkeypatch):
    rng = random.Random(6)
    values = [{"v": _random_value(rng, floats=False)} for _ in range(500)]
    expected = [rfc8785.dumps(value) for value in values]
    monkeypatch.setattr(canonical_module, "canonical_reference", _no_reference)

    assert [canonical(value) for value in values] == expected


def test_the_fast_path_writes_the_reference_bytes_for_every_synthetic_record():
    records = list(SyntheticHistory(messages=1500))
    assert [canonical(record) for record in records] == [rfc8785.dumps(r) for r in records]


@pytest.mark.parametrize(
    "number",
    [2**53, -(2**53), 2**63 - 1, 2**64 - 1, 2**64 + 1, -(2**70) - 3, 10**30 + 7],
)
def test_an_integer_beyond_a_double_is_archived_as_its_exact_digits(number):
    record = {"msg_id": number, "nested": [{"big": number}], "small": 1.5}

    data = canonical(record)

    assert data == (b'{"msg_id":%d,"nested":[{"big":%d}],"small":1.5}' % (number, number))
    assert json.loads(data) == record
    assert canonical(json.loads(data)) == data
    assert canonical_reference(record) == data


def test_a_float_that_prints_as_a_big_integer_canonicalises_the_same_after_a_round_trip():
    data = canonical({"v": 2.0**60, "w": 1e20})

    assert data == b'{"v":1152921504606847000,"w":100000000000000000000}'
    assert canonical(json.loads(data)) == data


@pytest.mark.parametrize(
    "value",
    [{"v": math.nan}, {"v": math.inf}, {"v": "\ud800 lone surrogate"}, {1: "int key"}],
)
def test_values_that_are_not_json_are_refused(value):
    with pytest.raises(CanonicalizationError):
        canonical(value)


@pytest.mark.parametrize("seq", [0, 1, 41, 2**40])
def test_the_spliced_line_equals_rfc8785_of_the_whole_object(seq):
    key = bytes(range(32))
    for record in [*HOSTILE[:-2], *SyntheticHistory(messages=50)]:
        salt = salt_for(record, key)
        whole = rfc8785.dumps({"seq": seq, "salt": salt, "record": record})

        assert line_from(seq, prepare(record, key)) == whole
        assert canonical_line(seq, salt, record) == whole
        assert record_bytes(whole) == rfc8785.dumps(record)


def test_salts_are_reproducible_per_key_and_differ_between_keys():
    record = {"msg": "ok"}

    first = salt_for(record, b"k" * 32)

    assert first == salt_for({"msg": "ok"}, b"k" * 32)
    assert first != salt_for(record, b"j" * 32)
    assert len(first) == 32 and int(first, 16) >= 0


def test_the_salt_is_the_first_16_bytes_of_hmac_sha256_over_the_canonical_record():
    record = SyntheticHistory(messages=5).record(2)
    key = b"\x01" * 32

    assert salt_for(record, key) == hmac.digest(key, rfc8785.dumps(record), "sha256")[:16].hex()
