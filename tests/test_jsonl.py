"""Reading JSON lines exactly: no rounded integers, no NaN, nothing dropped without a word."""

import gzip

import pytest

from auditor.errors import InputError
from auditor.jsonl import loads, parse_lines, read_file


def test_integers_beyond_64_bits_stay_exact():
    assert loads(b'{"msg_id": 123456789012345678901234567890, "lat": 39.983805}') == {
        "msg_id": 123456789012345678901234567890,
        "lat": 39.983805,
    }


def test_a_negative_integer_below_the_64_bit_range_stays_exact():
    found = loads(b'{"trace": -9223372036854775809}')["trace"]
    assert type(found) is int and found == -(2**63) - 1


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    with pytest.raises(ValueError):
        loads(b'{"a": ' + constant + b', "b": 123456789012345678901}')
    (parsed,) = parse_lines([b'{"a": ' + constant + b"}"], "hour.jsonl")
    assert parsed.record is None and parsed.raw == b'{"a": ' + constant + b"}"


def test_objects_back_to_back_on_one_line_are_each_a_record():
    parsed = list(parse_lines([b'{"a": 1}{"b": 2} {"c": 3}'], "f"))
    assert [p.record for p in parsed] == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert {p.line for p in parsed} == {1}


def test_a_line_that_is_not_json_is_reported_with_its_file_and_line():
    parsed = list(parse_lines([b'{"a": 1}', b"", b'{"cut": "off', b"[1, 2]"], "f.jsonl"))
    assert [(p.line, p.record is None) for p in parsed] == [(1, False), (3, True), (4, True)]
    assert parsed[2].error == "a JSON list, not an object"


def test_a_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "2026110100.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n' * 100)[:-20])
    with pytest.raises(InputError, match=r"2026110100\.gz: corrupt gzip data"):
        list(read_file(path))
