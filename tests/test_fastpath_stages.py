"""A worker's spool is the same whether the canonical bytes start from settle's sorted JSON or
from the record alone, and the report facts read fast are the accessors' values."""

from __future__ import annotations

import dataclasses
import gzip
import random

import pytest
import run_support

from auditor import stages
from auditor.partitions import Partition
from auditor.records import message_type, msg_id, sender, timestamp_ms
from auditor.report.model import record_facts
from auditor.sources.hourfiles import read_hour_file
from auditor.sources.interface import Source

HOUR = Partition(1_793_491_200_000)
TXT = b'"payload":{"from":"u1","bodies":[{"type":"txt","msg":"hi"}]}'
LINES = [
    b'\xef\xbb\xbf{"msg_id":"bom","timestamp":1793491200001}',
    b'{"msg_id":"1","timestamp":1793491200002,"lat":39.983805,"v":[-0.0,1e21,1.0],%s}' % TXT,
    b'{"msg_id":"2","timestamp":1793491200003,"n":123456789012345678901234,"m":9007199254740993}',
    b'{"msg_id":"3","timestamp":1793491200004,"t":"\\ud800"}',
    b'{"msg_id":"4","timestamp":1793491200005,"v":NaN}',
    b'{"msg_id":"5","timestamp":1793491200006,"a":1,"a":2.5}',
    b"[1, 2]",
    b'{"msg_id":5.0,"timestamp":1793491200007.0,"from":7.0,"payload":{"from":8.0}}\r',
    b'{"msg_id":"6","timestamp":1793491200008,"v":1}{"msg_id":"6","timestamp":1793491200008,"v":2}',
    b'{"msg_id":"7","timestamp":1793491200009,"k":{"\xf0\x9f\x98\x80":1,"\xee\x80\x80":null}}',
    b'{"msg_id":"8","timestamp":1793491200010,"v":1e400}',
    b'{"msg_id":"1","timestamp":1793491200002,"lat":39.983805,"v":[-0.0,1e21,1.0],%s}' % TXT,
]


class HourFileInMemory(Source):
    """An hour file as the hour-file source reads it once downloaded."""

    name = "memory"

    def describe(self) -> dict[str, str]:
        return {"api": self.name}

    def served(self, partition):
        return read_hour_file(gzip.compress(b"\r\n".join(LINES) + b"\n"), partition.label())


@pytest.fixture
def processor(tmp_path, monkeypatch):
    return run_support.stage_processor(tmp_path, monkeypatch, HourFileInMemory())


def _spool(processor, folder) -> dict[str, object]:
    """The spool of one attempt by kind (its names hold the attempt's token), and its outcome."""
    outcome = processor.process(HOUR)
    paths = stages.spool_paths(folder, HOUR, outcome.attempt)
    files: dict[str, object] = {kind: paths[kind].read_bytes() for kind in paths if kind != "done"}
    files["outcome"] = dataclasses.replace(outcome, attempt="")
    for path in folder.iterdir():
        if path.is_file():
            path.unlink()
    return files


def test_the_spool_is_the_same_with_and_without_settles_sorted_json(processor, tmp_path):
    folder = tmp_path / "spool"
    fetch = processor.source.fetch
    assert fetch(HOUR).content[0] is not None

    fast = _spool(processor, folder)
    processor.source.fetch = lambda partition, *spill: dataclasses.replace(
        fetch(partition, *spill), content=()
    )
    slow = _spool(processor, folder)

    assert fast == slow
    records = fast["records"].splitlines()
    assert [line.split(b"\t", 1)[1] for line in records] == [
        b'{"lat":39.983805,"msg_id":"1","payload":{"bodies":[{"msg":"hi","type":"txt"}],'
        b'"from":"u1"},"timestamp":1793491200002,"v":[0,1e+21,1]}',
        b'{"m":9007199254740993,"msg_id":"2","n":123456789012345678901234,'
        b'"timestamp":1793491200003}',
        b'{"msg_id":"6","timestamp":1793491200008,"v":1}',
        b'{"msg_id":"6","timestamp":1793491200008,"v":2}',
        # in UTF-16 the emoji (a surrogate pair, D83D DE00) sorts before U+E000
        b'{"k":{"\xf0\x9f\x98\x80":1,"\xee\x80\x80":null},"msg_id":"7","timestamp":1793491200009}',
        b'{"from":7,"msg_id":5,"payload":{"from":8},"timestamp":1793491200007}',
    ]
    assert records[-1].split(b"\t")[0].endswith(b',"5",1793491200007,"none","unknown","8"]')
    # the BOM, the lone surrogate (no RFC 8785 form), NaN, "a" named twice, the list, 1e400
    unreadable = fast["unreadable"].splitlines()
    assert len(unreadable) == 6
    assert b'{"msg_id":"5","timestamp":1793491200006,"a":1,"a":2.5}' in unreadable


@pytest.mark.parametrize("seed", range(3))
def test_report_facts_read_fast_are_the_accessors_values(seed):
    rng = random.Random(seed)

    def anything():
        return rng.choice(
            ["1", "", 5, 5.0, -0.0, True, None, [], {}, 1793491200000, "1793491200000", 2**70]
        )

    for _ in range(2000):
        record = {
            "msg_id": anything(),
            "timestamp": anything(),
            "from": anything(),
            "chat_type": rng.choice(["chat", 5, None]),
            "payload": rng.choice(
                [{"from": anything(), "bodies": [{"type": rng.choice(["txt", 1])}]}, None, []]
            ),
        }
        for key in [k for k in record if rng.random() < 0.2]:
            del record[key]
        chat = record.get("chat_type")

        assert record_facts(record) == (
            msg_id(record),
            timestamp_ms(record),
            message_type(record),
            chat if isinstance(chat, str) else "unknown",
            sender(record),
        )
