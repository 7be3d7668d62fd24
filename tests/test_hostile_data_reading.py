"""Hostile bytes in the readers: any line is a record or an error, never a crash; a line is kept
once however many values it holds; a gzip inflates as `gzip.decompress` does, within a limit;
an empty hour file reaches the run's findings."""

from __future__ import annotations

import gzip
import json
import os
import random
import zlib

import pytest
import run_support

import auditor.stages as stages
from auditor.jsonl import loads, parse_buffer, parse_lines
from auditor.partitions import Partition
from auditor.sources.hourfiles import EMPTY, _Damaged, gunzip, read_hour_file
from auditor.sources.interface import Source, Unreadable

HOUR = Partition(1_793_491_200_000)
EXACT = b',"n":123456789012345678901'  # sends a line to the exact parser


@pytest.mark.parametrize("nested", [b"[" * 100_000, b'{"a":' * 100_000])
@pytest.mark.parametrize("beside", [b"", EXACT])
def test_nesting_too_deep_for_any_parser_is_a_value_error_and_an_unreadable_line(nested, beside):
    line = b'{"x":1' + beside + b',"d":' + nested

    with pytest.raises(ValueError):
        loads(line)
    (parsed,) = parse_lines([line], "h")
    assert parsed.record is None and parsed.raw == line and parsed.error.startswith("not JSON: ")


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1.5e309"])
def test_a_number_beyond_a_double_is_refused_by_the_exact_parser_as_by_orjson(number):
    for line in (b'{"v":%s}' % number, b'{"v":%s%s}' % (number, EXACT)):
        with pytest.raises(ValueError):
            loads(line)
        assert parse_buffer(line, "h", lambda parsed: parsed.raw) == [line]
    two = b'{"a":1} {"v":%s}' % number
    assert parse_buffer(two, "h", lambda parsed: parsed.raw) == [two]


def test_a_line_of_many_values_that_are_not_objects_is_kept_once():
    line = b'{"a":1} ' + b"[] " * 100_000 + b'{"b":2} 7'

    parsed = list(parse_lines([line], "h"))

    assert [p.record for p in parsed] == [{"a": 1}, None, {"b": 2}]
    assert parsed[1].raw == line.strip()
    assert parsed[1].error == (
        "100,001 JSON values that are not objects, the first a JSON list, not an object"
    )
    (single,) = [p for p in parse_lines([b"{} [1]"], "h") if p.record is None]
    assert single.error == "a JSON list, not an object"


def _outcome(inflate, data):
    try:
        return inflate(data)
    except (_Damaged, EOFError, gzip.BadGzipFile, zlib.error):
        return "refused"


def test_gunzip_reads_and_refuses_what_gzip_decompress_does():
    a, b = gzip.compress(b"one\n", mtime=0), gzip.compress(b"two\n" * 50_000, mtime=0)
    cases = [a, a + b, a + b"\0" * 9 + b, a + b"\0" * 5, a + b"junk", a + b"\x1f", a[:-3], a[:-8]]
    cases += [a[:10], b"\x1f\x8b", gzip.compress(b""), gzip.compress(os.urandom(600_000))]
    rng = random.Random(3)
    for _ in range(300):
        damaged = bytearray(rng.choice(cases[:3]))
        damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        cases.append(bytes(damaged))

    outcomes = [_outcome(gunzip, case) for case in cases]

    assert outcomes == [_outcome(gzip.decompress, case) for case in cases]
    assert outcomes.count("refused") > 100


def test_a_bomb_is_refused_while_a_file_of_real_ratio_above_the_floor_is_read(monkeypatch):
    monkeypatch.setattr("auditor.sources.hourfiles.GUNZIP_FLOOR", 1 << 20)
    rng = random.Random(5)
    lines = b"".join(
        b'{"msg_id":"%d","timestamp":%d,"msg":"%s"}\n'
        % (rng.getrandbits(60), 1793491200000 + n, os.urandom(rng.randint(5, 60)).hex().encode())
        for n in range(20_000)
    )
    assert len(lines) > 2 << 20

    assert gunzip(gzip.compress(lines)) == lines
    with pytest.raises(_Damaged, match="a gzip bomb or damaged gzip"):
        gunzip(gzip.compress(b"\0" * (3 << 20)))
    with pytest.raises(_Damaged, match="a gzip bomb or damaged gzip"):
        gunzip(gzip.compress(b"{}\n" * 50_000))  # 150 KB that would be 50,000 dicts


class EmptyHourFile(Source):
    """An hour whose signed URL answered with a gzip of nothing."""

    name = "memory"

    def describe(self) -> dict[str, str]:
        return {"api": self.name}

    def served(self, partition):
        return read_hour_file(gzip.compress(b""), partition.label())


def test_an_empty_hour_file_is_an_unreadable_finding_of_the_run(tmp_path, monkeypatch):
    assert read_hour_file(b"", "2026110100") == [Unreadable("2026110100", EMPTY, b"")]
    processor = run_support.stage_processor(tmp_path, monkeypatch, EmptyHourFile())

    outcome = processor.process(HOUR)

    paths = stages.spool_paths(tmp_path / "spool", HOUR, outcome.attempt)
    (finding,) = [json.loads(line) for line in paths["findings"].read_bytes().splitlines()]
    assert (finding["rule"], finding["severity"]) == ("unreadable", "high")
    assert finding["details"]["error"] == EMPTY
    assert paths["unreadable"].read_bytes() == b"\n"
    assert (outcome.records, outcome.findings) == (0, 1)
