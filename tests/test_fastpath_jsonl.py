"""The hour-file fast path reads exactly what the lenient line reader reads, line for line."""

from __future__ import annotations

import gzip
import random
import re

import orjson
import pytest

from auditor.jsonl import (
    ParsedLine,
    _beyond_64_bits,
    _lines_beyond_64_bits,
    loads,
    parse_buffer,
    parse_lines,
    split_objects,
)
from auditor.sources.hourfiles import read_hour_file
from auditor.sources.settle import Unreadable

TRICKY = (
    b'\xef\xbb\xbf{"msg_id":"bom"}\r\n'
    b'{"lat":39.983805,"v":[-0.0,1e21,1.0]}\r\n'
    b'{"n":123456789012345678901234567890,"k":18446744073709551615}\n'
    b'{"t":"\\ud800"}\n'
    b'{"v":NaN}\n'
    b'{"a":1,"a":2}\n'
    b"[1,2]\n"
    b"\n"
    b'  {"ws":true}\t\r'
    b'{"a":1}{"b":2} {"c":3}\n'
    b'{"cut":"\xe4\xbd\n'
)


def _as_tuple(parsed: ParsedLine) -> tuple:
    return ("error", parsed.line, parsed.error, parsed.raw)


def _slow(data: bytes) -> list:
    return [
        parsed.record if parsed.record is not None else _as_tuple(parsed)
        for parsed in parse_lines(data.splitlines(), "h")
    ]


def test_the_fast_path_reads_tricky_lines_as_the_line_reader_does():
    found = parse_buffer(TRICKY, "h", _as_tuple)

    assert found == [
        (
            "error",
            1,
            "not JSON: UTF-8 byte order mark (BOM) is not supported: line 1 column 1 (char 0)",
            b'\xef\xbb\xbf{"msg_id":"bom"}',
        ),
        {"lat": 39.983805, "v": [-0.0, 1e21, 1.0]},
        {"n": 123456789012345678901234567890, "k": 18446744073709551615},
        {"t": "\ud800"},
        (
            "error",
            5,
            "not JSON: unexpected character, expected a JSON value: line 1 column 6 (char 5)",
            b'{"v":NaN}',
        ),
        ("error", 6, 'an object names the key "a" more than once', b'{"a":1,"a":2}'),
        ("error", 7, "a JSON list, not an object", b"[1,2]"),
        {"ws": True},
        {"a": 1},
        {"b": 2},
        {"c": 3},
        (
            "error",
            11,
            "not JSON: str is not valid UTF-8: surrogates not allowed: line 1 column 1 (char 0)",
            b'{"cut":"\xe4\xbd',
        ),
    ]
    assert found == _slow(TRICKY)
    assert type(found[3]["t"]) is str and found[3]["t"] == "\ud800"
    assert str(found[1]["v"][0]) == "-0.0"


def test_a_line_with_twenty_digits_goes_to_the_exact_parser_and_the_others_do_not():
    data = (
        b'{"n":100000000000000000001}\n{"f":1.5}\n{"m":-9223372036854775808}\n'
        b'{"below":-9223372036854775809}\n'
    )

    found = parse_buffer(data, "h", _as_tuple)

    assert found == [
        {"n": 100000000000000000001},
        {"f": 1.5},
        {"m": -9223372036854775808},
        {"below": -9223372036854775809},
    ]
    assert [type(value) for record in found for value in record.values()] == [int, float, int, int]


def test_a_line_cut_inside_a_utf8_character_is_an_error_not_a_crash():
    assert split_objects(b'{"a":"\xe4\xbd') is None
    (parsed,) = parse_lines([b'{"a":"\xe4'], "h")
    assert parsed.record is None and parsed.error.startswith("not JSON: ") and parsed.line == 1


@pytest.mark.parametrize(
    "line",
    [
        b'{"msg_id":"1","msg_id":"2"}',
        b'{"msg_id": "1", "payload": {"bodies": [{"type": "txt", "msg": "a", "msg": "b"}]}}',
        '{"msg_id":"1","payload":{"ext":{"键":1,"键":2}}}'.encode(),
        b'{"n":123456789012345678901,"n":1}',
        b'{"a":1}{"b":2,"b":2}',
        b'{"deep":' + b"[" * 300 + b'{"k":1,"k":2}' + b"]" * 300 + b"}",
    ],
)
def test_an_object_that_names_a_key_twice_is_not_read_as_a_record(line):
    """Its reading depends on the parser (first or last value), so it is kept verbatim instead."""
    (fast,) = parse_buffer(line, "h", _as_tuple)
    (slow,) = parse_lines([line], "h")

    assert fast[0] == "error" and fast[2].startswith("an object names the key")
    assert fast[2].endswith(" more than once")
    assert (slow.record, slow.error, slow.raw) == (None, fast[2], line)
    if line.startswith(b'{"a":1}{'):  # two documents: `loads` reads one
        return
    with pytest.raises(ValueError, match="more than once"):
        loads(line)


def test_an_hour_file_gives_records_and_unreadable_lines_where_they_were():
    served = read_hour_file(gzip.compress(b'{"a":1}\n[2]\n{"b":\n', mtime=0), "2026110100")

    assert served == [
        {"a": 1},
        Unreadable("2026110100:2", "a JSON list, not an object", b"[2]"),
        Unreadable(
            "2026110100:3",
            "not JSON: unexpected end of data: line 1 column 6 (char 5)",
            b'{"b":',
        ),
    ]


@pytest.mark.parametrize("seed", range(4))
def test_the_fast_path_agrees_with_the_line_reader_on_random_damaged_files(seed):
    rng = random.Random(seed)
    pieces = [
        b'{"msg_id":"%d","timestamp":1793491200000}' % rng.randint(0, 99),
        b'{"lat":%r,"lng":-0.0}' % rng.uniform(-90, 90),
        b'{"n":%d}' % rng.randint(-(10**25), 10**25),
        '{"t":"你好，世界 😀"}'.encode(),
        b'{"s":"\\udc00"}',
        b"null",
        b'"text"',
        b"  ",
        b'{"a":1} {"b":2}',
        b"\xef\xbb\xbf{}",
        b'{"x":[1e400]}',
        b'{"msg_id":"7","payload":{"ext":{"k":1,"k":2}}}',
        b'{"a": 1, "a": 1}',
    ]
    lines = []
    for _ in range(300):
        line = rng.choice(pieces)
        if rng.random() < 0.2:
            line = line[: rng.randint(0, len(line))]
        lines.append(line)
    data = b"".join(line + rng.choice([b"\n", b"\r\n", b"\r"]) for line in lines)

    assert parse_buffer(data, "h", _as_tuple) == _slow(data)


def test_the_exact_parser_takes_exactly_the_lines_with_twenty_digits_or_minus_nineteen():
    rng = random.Random(20)
    run = re.compile(rb"[0-9]{20}|-[0-9]{19}")
    cases = [b"1" * 19, b"1" * 20, b"x" + b"9" * 20 + b"x", b"1" * 19 + b" 1", b""]
    cases += [b"-" + b"9" * 19, b"-" + b"9" * 18, b"- " + b"9" * 19]
    cases += [bytes(rng.choice(b"0123456789 ,.-") for _ in range(60)) for _ in range(2000)]
    for text in cases:
        with pytest.raises(ValueError) as refused:
            loads(b'{"v":"%s"' % text)  # cut short: the error says which parser read it
        by_orjson = type(refused.value) is orjson.JSONDecodeError
        assert by_orjson is (run.search(text) is None), text


@pytest.mark.parametrize(
    ("seed", "breaks"), [(0, [b"\n", b"\r\n", b"\r"]), (1, [b"\n", b"\r\n"]), (2, [b"\n"])]
)
def test_the_lines_for_the_exact_parser_are_found_in_one_pass_as_line_by_line(seed, breaks):
    rng = random.Random(seed)
    alphabet = b'0123456789 -,"{}:ab\xe4'
    lines = []
    for _ in range(400):
        line = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        if rng.random() < 0.1:
            line += (b"-" if rng.random() < 0.5 else b"") + b"7" * rng.randint(18, 45)
        lines.append(line)
    data = b"".join(line + rng.choice(breaks) for line in lines)

    found = _lines_beyond_64_bits(data)

    expected = {index for index, line in enumerate(data.splitlines()) if _beyond_64_bits(line)}
    assert found == expected
    assert len(expected) > 20


def test_a_run_of_digits_of_any_length_marks_just_its_line():
    data = b'{"a":1}\n{"n":' + b"7" * 100_000 + b'}\n{"b":-' + b"7" * 19 + b"}\n" + b"8" * 19
    assert _lines_beyond_64_bits(data) == {1, 2}
