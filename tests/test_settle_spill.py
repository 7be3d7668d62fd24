"""An hour settled on disk (`settle.SpilledRecords`) is the hour settled in memory, byte for byte.

`AUDITOR_SETTLE_SPILL_RECORDS` (the threshold of served items past which a worker settles an hour
on disk) is set tiny here, and `settle._RUN_BYTES` too, so that a handful of records takes the
disk path through several sorted runs; the result must equal the in-memory one in every field,
and a whole run against the emulator must write the same bag.
"""

from __future__ import annotations

import gzip
import random
import tracemalloc

import orjson
import pytest
import run_support

from auditor import stages
from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS, Partition
from auditor.pipeline import run_audit
from auditor.sources import hourfiles
from auditor.sources import settle as settle_module
from auditor.sources.hourfiles import _Damaged, read_hour_file, stream_hour_file
from auditor.sources.pull import pull
from auditor.sources.settings import make_source
from auditor.sources.settle import SPILL_ENV, PartitionResult, Unreadable, settle

HOUR = Partition(DEFAULT_START_MS)
START = HOUR.start_ms
SECRET = "spill-test-secret"


@pytest.fixture
def tiny(monkeypatch):
    """The disk path for anything over two served items, in runs of a few records."""
    monkeypatch.setenv(SPILL_ENV, "2")
    monkeypatch.setattr(settle_module, "_RUN_BYTES", 600)


def record(number: int, at: int | None = START + 1000, **extra) -> dict:
    found = {"msg_id": f"{number:018d}", "from": "u1", "to": "u2", "chat_type": "chat"}
    if at is not None:
        found["timestamp"] = at
    found["payload"] = {"bodies": [{"type": "txt", "msg": f"hello {number}"}]}
    found.update(extra)
    return found


def both(served: list, tmp_path, entity_fields: frozenset[str] = frozenset()):
    """(in memory, on disk) results of settling `served`, the disk one read back whole."""
    memory = settle(HOUR, list(served), entity_fields)
    spilled = settle(HOUR, iter(served), entity_fields, tmp_path)
    assert spilled.spilled is not None, "the disk path was taken"
    return memory, spilled


def assert_same(memory: PartitionResult, spilled: PartitionResult) -> None:
    assert spilled.count == len(memory.records)
    entries = list(spilled.entries())
    assert [entry[0] for entry in entries] == list(memory.records)
    # the same values, of the same types, their keys in the same order (what findings see)
    assert [repr(entry[0]) for entry in entries] == [repr(r) for r in memory.records]
    assert [entry[1] for entry in entries] == list(memory.content)
    assert spilled.duplicates == memory.duplicates
    assert spilled.conflicts == memory.conflicts
    assert spilled.outside == memory.outside
    assert spilled.unreadable == memory.unreadable


def crafted() -> list:
    huge = 2**70  # beyond orjson: no sorted-key content, hashed through `json`
    plain = record(1)
    return [
        record(5, START + 5000),
        plain,
        dict(plain),  # an exact copy
        Unreadable("2026110100:3", "not JSON", b"{cut"),
        record(2, START + 1000, payload={"bodies": [{"type": "txt", "msg": "a"}]}),
        record(2, START + 1000, payload={"bodies": [{"type": "txt", "msg": "b"}]}),  # conflict
        record(2, START + 999, payload={"bodies": [{"type": "txt", "msg": "c"}]}),  # another
        record(3, START + 2000, size=1.0),
        record(3, START + 2000, size=1),  # the same message as bytes differ: a copy
        {"from": "u9", "timestamp": START + 10, "payload": {}},  # no msg_id
        {"from": "u9", "timestamp": START + 10, "payload": {}},  # its exact copy
        {"from": "u8", "timestamp": START + 10, "payload": {}},  # another without msg_id
        record(6, None),  # no timestamp
        record(7, "soon"),  # no usable timestamp
        record(8, START - 5),  # outside, before
        record(9, START + HOUR_MS),  # outside, after
        record(9, START + HOUR_MS),  # ... and its copy
        record(10, START + 3000, big=huge),
        record(10, START + 3000, big=huge),  # a copy without orjson bytes
        record(10, START + 3000, big=huge + 1),  # a conflict without them
        Unreadable("2026110100:20", "a JSON list, not an object", b"[1]"),
        record(11, START + 1000),  # ties with 2 on time: msg_id orders them
        {"msg_id": 12, "timestamp": START + 4, "z": 1, "a": 2},  # a msg_id that is a number
        {"timestamp": START + 4, "msg_id": "000000000000000012", "a": 2, "z": 1},  # keys reordered
    ]


def test_crafted_hour_on_disk_equals_in_memory(tiny, tmp_path):
    memory, spilled = both(crafted(), tmp_path)
    assert memory.duplicates >= 4 and memory.conflicts and memory.outside and memory.unreadable
    assert_same(memory, spilled)


def test_entity_fields_are_left_out_on_disk_as_in_memory(tiny, tmp_path):
    fields = frozenset({"uuid", "modified"})
    served = [
        record(1, uuid="a", modified=1),
        record(1, uuid="b", modified=2),  # the same message read again: a copy
        record(1, uuid="c", modified=3, extra=True),  # a changed one: a conflict
        record(2, uuid="d"),
        record(2, uuid="d"),
    ]
    memory, spilled = both(served, tmp_path, fields)
    assert memory.duplicates == 2 and memory.conflicts == (f"{1:018d}",)
    assert_same(memory, spilled)


@pytest.mark.parametrize("seed", range(6))
def test_random_hours_on_disk_equal_in_memory(tiny, tmp_path, seed):
    rng = random.Random(seed)
    pool = []
    for _ in range(60):
        at = rng.choice([START + rng.randrange(HOUR_MS), START - 1, None, START + 7])
        pool.append(record(rng.randrange(40), at, n=rng.randrange(3), v=rng.choice([1, 1.0])))
        if rng.random() < 0.2:
            pool.append({"timestamp": at, "n": rng.randrange(3)})
    served = [rng.choice(pool) for _ in range(300)]
    served.insert(rng.randrange(len(served)), Unreadable("x:1", "bad", b"x"))
    memory, spilled = both(served, tmp_path)
    assert memory.duplicates and memory.conflicts
    assert_same(memory, spilled)


def test_a_small_hour_stays_in_memory_and_nothing_is_left_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv(SPILL_ENV, "100")
    small = settle(HOUR, crafted(), frozenset(), tmp_path)
    assert small.spilled is None and small.records
    monkeypatch.setenv(SPILL_ENV, "2")
    monkeypatch.setattr(settle_module, "_RUN_BYTES", 600)
    spilled = settle(HOUR, crafted(), frozenset(), tmp_path)
    assert len(spilled.spilled._runs.files) > 1  # several runs were merged
    spilled.close()
    assert list(tmp_path.iterdir()) == []  # the runs are unnamed files, and closed


def test_a_spilled_hour_can_be_closed_unread(tiny, tmp_path):
    spilled = settle(HOUR, crafted(), frozenset(), tmp_path)
    spilled.close()
    spilled.close()


# -- reading an hour file a piece at a time -------------------------------------------------------


def lines_of(records: list) -> bytes:
    return b"".join(orjson.dumps(each) + b"\n" for each in records)


@pytest.mark.parametrize(
    "data",
    [
        lines_of([record(n) for n in range(50)]),
        lines_of([record(n) for n in range(50)]).replace(b"\n", b"\r\n"),
        lines_of([record(n) for n in range(30)]).replace(b"\n", b"\r", 7) + b"{cut\n\n[1]\n",
        lines_of([record(1), record(2)]).replace(b"\n", b"", 1) + b'{"a": 12345678901234567890}',
        b"\n  \n\r\n",  # blank: an empty file
        b" \t\n\x0b\x0c\r\n" * 20 + lines_of([record(1)]),  # blank pieces, then a record
        b"\n" * 40 + b"{" + b"x" * 200,  # blank pieces, then a long piece with no line break
        b"",
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_stream_hour_file_reads_what_read_hour_file_reads(monkeypatch, data, compress):
    monkeypatch.setattr(hourfiles, "_CHUNK", 37)  # pieces that end inside lines and line breaks
    monkeypatch.setattr(hourfiles, "_SLICE", 11)
    if compress:
        half = len(data) // 2
        data = gzip.compress(data[:half], mtime=0) + b"\0\0" + gzip.compress(data[half:], mtime=0)
    assert list(stream_hour_file(data, "2026110100")) == read_hour_file(data, "2026110100")


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(b"{}\n" * 10, mtime=0)[:-5],  # cut short
        gzip.compress(b"{}\n", mtime=0) + b"junk",
        gzip.compress(b" " * (3 << 20), mtime=0),  # a bomb, past the floor set below
    ],
)
def test_stream_hour_file_refuses_what_read_hour_file_refuses(monkeypatch, data):
    monkeypatch.setattr(hourfiles, "GUNZIP_FLOOR", 1 << 20)  # a bomb of 3 MiB, not of 300
    with pytest.raises(_Damaged) as whole:
        read_hour_file(data, "h")
    with pytest.raises(_Damaged) as streamed:
        list(stream_hour_file(data, "h"))
    assert str(streamed.value) == str(whole.value)


# -- a whole run ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator():
    options = EmulatorOptions(
        messages=3000,
        days=1,
        client_secret=SECRET,
        duplicate_rate=0.05,
        conflict_rate=0.03,
        mangled_rate=0.01,
        fail_rate=0.05,
        truncate_rate=0.05,
    )
    with run_emulator(options) as running:
        yield running


@pytest.mark.parametrize("attachments", ["skip", "fetch"])
def test_a_run_spilling_every_hour_writes_the_same_bag(
    emulator, tmp_path, monkeypatch, attachments
):
    keys = generate_key_files(tmp_path / "keys", identity="test")
    bags = {}
    spilled = []
    on_disk = settle_module._settle_spilled
    monkeypatch.setattr(
        settle_module, "_settle_spilled", lambda *args: spilled.append(1) or on_disk(*args)
    )
    for way, threshold in (("memory", "100000000"), ("disk", "7")):
        monkeypatch.setenv(SPILL_ENV, threshold)
        monkeypatch.setattr(settle_module, "_RUN_BYTES", 20_000 if way == "disk" else 16 << 20)
        monkeypatch.setattr(stages, "SPILLED_BATCH", 13)
        monkeypatch.setattr(hourfiles, "STREAM_BYTES", 1 << 30 if way == "memory" else 0)
        settings = run_support.settings_for(
            emulator, keys, tmp_path / way, SECRET, attachments=attachments
        )
        outcome = run_audit(settings)
        assert outcome.records > 500 and outcome.findings
        bags[way] = run_support.payload(outcome.bag_path)
    assert len(spilled) >= 6  # every hour of the second run (and retries), none of the first
    assert bags["disk"] == bags["memory"]


# -- auditor pull ---------------------------------------------------------------------------------


def _pulled(emulator, folder, monkeypatch, way: str):
    """Six hours pulled into `folder`, each settled in memory or on disk, and what was pulled."""
    monkeypatch.setenv(SPILL_ENV, "100000000" if way == "memory" else "7")
    monkeypatch.setattr(settle_module, "_RUN_BYTES", 20_000 if way == "disk" else 16 << 20)
    monkeypatch.setattr(hourfiles, "STREAM_BYTES", 1 << 30 if way == "memory" else 0)
    source = make_source(run_support.source_of(emulator, SECRET))
    with source:
        summary = pull(source, DEFAULT_START_MS, DEFAULT_START_MS + 6 * HOUR_MS, folder)
    return summary, {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_a_pull_settling_every_hour_on_disk_writes_the_same_files(emulator, tmp_path, monkeypatch):
    spilled = []
    on_disk = settle_module._settle_spilled
    monkeypatch.setattr(
        settle_module, "_settle_spilled", lambda *args: spilled.append(1) or on_disk(*args)
    )
    memory, in_memory = _pulled(emulator, tmp_path / "memory", monkeypatch, "memory")
    assert not spilled
    disk, on_disk_files = _pulled(emulator, tmp_path / "disk", monkeypatch, "disk")

    assert len(spilled) >= 6
    assert on_disk_files == in_memory
    assert [hour.records for hour in disk.hours] == [hour.records for hour in memory.hours]
    assert sum(hour.records for hour in disk.hours) > 500
    assert sum(hour.conflicts for hour in disk.hours) > 0
    assert not [name for name in on_disk_files if name.startswith(".")]


def test_hours_found_on_disk_without_their_checkpoint_are_adopted_through_the_disk(
    emulator, tmp_path, monkeypatch
):
    _summary, pulled = _pulled(emulator, tmp_path, monkeypatch, "disk")
    (tmp_path / "checkpoint.json").unlink()
    spilled = []
    on_disk = settle_module._settle_spilled
    monkeypatch.setattr(
        settle_module, "_settle_spilled", lambda *args: spilled.append(1) or on_disk(*args)
    )

    again, adopted = _pulled(emulator, tmp_path, monkeypatch, "disk")

    assert len(spilled) == 6  # each hour read back from its file, none fetched again
    assert {hour.status for hour in again.hours} == {"done"}
    assert adopted == pulled


def test_an_hour_of_garbage_settled_on_disk_holds_its_pieces_on_disk_too(tmp_path, monkeypatch):
    """Its records went to disk while every unreadable piece stayed in a list: an hour of
    garbage held whole (~700 bytes a piece of 530), however large the hour."""
    monkeypatch.setenv(SPILL_ENV, "100")
    monkeypatch.setattr(settle_module, "_RUN_BYTES", 64 * 1024)

    def settled(pieces: int) -> tuple[int, PartitionResult]:
        served = (
            Unreadable(f"2026110100:{n}", "not JSON", b"{cut off %06d" % n + b"x" * 512)
            for n in range(1, pieces + 1)
        )
        tracemalloc.start()
        try:
            result = settle(HOUR, served, frozenset(), tmp_path)
            return tracemalloc.get_traced_memory()[1], result
        finally:
            tracemalloc.stop()

    small, _ = settled(4_000)
    large, result = settled(12_000)

    assert len(result.unreadable) == 12_000 and result.count == 0
    assert [piece.where for piece in result.unreadable][::5_999] == [
        "2026110100:1", "2026110100:6000", "2026110100:11999"
    ]  # fmt: skip
    assert result.unreadable[-1] == Unreadable("2026110100:12000", "not JSON",
                                               b"{cut off 012000" + b"x" * 512)  # fmt: skip
    assert list(result.unreadable) == list(result.unreadable)  # read again from the start
    # held in a list, the 8,000 more pieces took 5.6 MB more
    assert large - small < 1024 * 1024, (small, large)
