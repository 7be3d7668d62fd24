"""Canonical bytes from settle's sorted JSON, the cheap suspect test and the float rewrite agree
with the reference (`rfc8785`, big integers exact) on tricky values."""

from __future__ import annotations

import enum
import math
import random
import re

import orjson
import pytest
import rfc8785

from auditor.archive import canonical as canonical_module
from auditor.archive.canonical import (
    CanonicalizationError,
    canonical,
    canonical_of,
    canonical_reference,
)
from auditor.emulator.dataset import SyntheticHistory
from auditor.jsonl import loads

# What the suspect test stands in for: the regex and the non-BMP check `canonical` used alone.
_OLD_REGEX = re.compile(rb"[:\[,]-?\d+[.eE]")


def _old_needs_reference(data: bytes) -> bool:
    return bool(_OLD_REGEX.search(data)) or any(byte >= 0xF0 for byte in data)


def _sorted(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"lat": 39.983805, "v": [1e21, -0.0, 1.0, 5e-7, 1e-6, 2.0**60, 1e16, 123456789.125]},
            b'{"lat":39.983805,"v":[1e+21,0,1,5e-7,0.000001,1152921504606847000,'
            b"10000000000000000,123456789.125]}",
        ),
        ({"b": None, "a": [None], "t": "null,"}, b'{"a":[null],"b":null,"t":"null,"}'),
        (
            {"big": 2**63 - 1, "f": 1.5, "neg": -(2**60), "g": 2.0},
            b'{"big":9223372036854775807,"f":1.5,"g":2,"neg":-1152921504606846976}',
        ),
        (
            {"\ue000": 1.5, "😀": 2.5, "a": 0.5},
            '{"a":0.5,"😀":2.5,"\ue000":1.5}'.encode(),
        ),
        ({"t": "a,e :n [.5 1,2e3"}, b'{"t":"a,e :n [.5 1,2e3"}'),
        (
            {"msg_id": "1", "n": 7, "t": "\u4e2d\x00\x1f"},
            b'{"msg_id":"1","n":7,"t":"\xe4\xb8\xad\\u0000\\u001f"}',
        ),
    ],
)
def test_canonical_bytes_from_sorted_json_are_the_references(value, expected):
    assert canonical_of(value, _sorted(value)) == expected
    assert canonical(value) == expected
    assert canonical_reference(value) == expected


def test_without_sorted_json_a_record_orjson_cannot_write_still_gets_its_exact_form():
    value = {"n": 123456789012345678901234567890, "f": 2.0}

    assert canonical_of(value, None) == b'{"f":2,"n":123456789012345678901234567890}'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"v": float("nan")}, "nan is not representable in JCS"),
        ({"v": [float("-inf")], "n": 2**60}, "-inf is not representable in JCS"),
        ({"v": "\ud800"}, "input contains non-UTF-8 codepoints"),
        ({"\ud800": 1}, "input contains non-UTF-8 codepoints"),
    ],
)
def test_values_without_an_rfc8785_form_are_refused_with_the_references_message(value, message):
    try:
        sorted_json = _sorted(value)
    except TypeError:
        sorted_json = None

    with pytest.raises(CanonicalizationError, match=f"^{re.escape(message)}$"):
        canonical(value)
    if "nan" not in message and "inf" not in message:  # cannot be read from JSON: see below
        with pytest.raises(CanonicalizationError, match=f"^{re.escape(message)}$"):
            canonical_of(value, sorted_json)


@pytest.mark.parametrize("data", [b'{"v":NaN}', b'{"v":[-Infinity]}', b'{"v":1e999}'])
def test_no_nan_or_infinity_can_reach_canonical_of_from_what_the_auditor_reads(data):
    """`canonical_of` reads a `null` as None: true for every value orjson or `jsonl.loads` reads."""
    with pytest.raises(ValueError):
        orjson.loads(data)
    with pytest.raises(ValueError):
        loads(data)
    with pytest.raises(ValueError):
        loads(data.replace(b"{", b'{"big":123456789012345678901234567890,'))


def test_tuples_and_enums_are_written_as_the_reference_writes_them():
    class Level(float, enum.Enum):
        ONE = 1.0

    assert canonical({"v": (1.0, 2.5)}) == b'{"v":[1,2.5]}' == rfc8785.dumps({"v": (1.0, 2.5)})
    assert canonical({"e": Level.ONE}) == b'{"e":1}' == rfc8785.dumps({"e": Level.ONE})


def test_the_suspect_test_passes_only_what_the_exact_tests_pass():
    rng = random.Random(8785)
    alphabet = b':,[]{}."-0123456789eEnul xa' + "中😀é".encode()
    samples = [
        b'{"a":1.5}',
        b'{"a":[1,2],"b":-3}',
        b'{"a":null}',
        b'{"a":"null"}',
        b"[null,1.5]",
        b'{"n":null,"e":1e5}',
        b'{"a":1e+21}',
        b'{"a":-0.0}',
        '{"😀":1}'.encode(),
        '{"a":"中,文"}'.encode(),
        b'{"t":"a,e"}',
    ]
    samples += [
        bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(20000)
    ]
    for data in samples:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # orjson only ever writes UTF-8
        assert canonical_module._is_canonical(data) is not _old_needs_reference(data), data


def test_the_float_rewrite_matches_the_reference_on_random_values():
    rng = random.Random(21)

    def number():
        return rng.choice(
            [
                rng.uniform(-1e3, 1e3),
                rng.random() * 10 ** rng.randint(-30, 30),
                -0.0,
                float(rng.randint(-(2**60), 2**60)),
                rng.randint(-(2**63), 2**64 - 1),
                None,
            ]
        )

    values = [
        {"lat": number(), "nested": [{"x": number()}, [number(), "a,e"]], "t": "中文😀"}
        for _ in range(3000)
    ]
    for value in values:
        assert canonical_of(value, _sorted(value)) == canonical_reference(value), value


def test_every_synthetic_record_gets_the_references_bytes_from_its_sorted_json():
    records = list(SyntheticHistory(messages=1500))

    assert [canonical_of(r, _sorted(r)) for r in records] == [rfc8785.dumps(r) for r in records]


# Values as settle keeps them (read by orjson, which refuses NaN and Infinity), holding nulls.
WITH_NULLS = [
    None,
    {"a": None},
    [None, [None, {"b": None}]],
    {"pointer": None, "details": {"x": [None, 1, "null", ",null]"]}, "s": "[null,"},
    {"t": ":null}", "u": None, "lat": 39.5, "v": [None, 1e21, -0.0]},
    {"😀": None, "\ue000": [None, 2.5], "a": "𠀋"},
    {"msg_id": "1", "ext": {"k": None, "n": [1, 2, None]}, "to": "u", "timestamp": 7},
]


@pytest.mark.parametrize("value", WITH_NULLS)
def test_values_holding_null_get_the_references_bytes_from_their_sorted_json(value):
    value = orjson.loads(orjson.dumps(value))  # as read: no NaN or Infinity can hide in a null

    assert canonical_of(value, _sorted(value)) == canonical_reference(value)
    assert canonical(value) == canonical_reference(value)


@pytest.fixture
def slow(monkeypatch):
    """The values `canonical` and `canonical_of` sent down the slow path, in order."""
    taken = []
    rewrite = canonical_module._with_floats_or_reference

    def counted(value):
        taken.append(value)
        return rewrite(value)

    monkeypatch.setattr(canonical_module, "_with_floats_or_reference", counted)
    return taken


def test_a_record_whose_only_suspect_is_a_null_stays_on_the_fast_path(slow):
    records = [
        {"msg_id": "1", "ext": {"k": None}, "to": "u"},
        {"a": [None, None], "b": "null", "c": {"d": None}},
        {"a": None, "b": "中文 with a comma, and e"},
    ]

    assert [canonical_of(r, _sorted(r)) for r in records] == [rfc8785.dumps(r) for r in records]
    assert slow == []
    floats = {"a": None, "lat": 1.5}
    assert canonical_of(floats, _sorted(floats)) == b'{"a":null,"lat":1.5}'
    assert slow == [floats]


def test_a_finding_whose_only_suspect_is_a_null_stays_on_the_fast_path(slow):
    findings = [
        {"msg_id": "1", "category": "hold", "pointer": None, "details": {"hold": "case-42"}},
        {"msg_id": None, "rule": "null", "details": {"n": -1, "list": [None, 127 * "a"]}},
    ]

    assert [canonical(f) for f in findings] == [rfc8785.dumps(f) for f in findings]
    assert slow == []


def _nan_or_infinity(kind: str) -> float:
    return {"nan": float("nan"), "-nan": -float("nan"), "inf": math.inf, "-inf": -math.inf}[kind]


@pytest.mark.parametrize("kind", ["nan", "-nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "shape",
    [
        lambda x: {"v": x},
        lambda x: {"pointer": None, "d": {"e": [1, "null", (x,)]}},
        lambda x: [x, x, {"x": x}],
        lambda x: {"held": None, "v": [x * 1.0]},  # a float no name holds
        lambda x: {"a": None, "s": "\U0001f600" * 40, "n": [-1, 2**62, x]},
    ],
)
def test_a_nan_or_infinity_beside_nulls_is_still_refused_by_canonical(kind, shape):
    value = shape(_nan_or_infinity(kind))

    with pytest.raises(CanonicalizationError, match=r"is not representable in JCS$"):
        canonical(value)


def test_an_enum_beside_a_null_is_left_to_the_reference():
    class Plain(enum.Enum):
        X = math.nan

    class Level(float, enum.Enum):
        X = math.nan

    with pytest.raises(CanonicalizationError, match=r"^unsupported type"):
        canonical({"e": Plain.X, "p": None})
    with pytest.raises(CanonicalizationError, match=r"^nan is not representable in JCS$"):
        canonical({"e": Level.X, "p": None})
