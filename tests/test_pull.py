"""`pull`: one file per hour, a checkpoint of complete hours, resuming without a changed byte."""

import fcntl
import hashlib
import os
from collections import Counter

import orjson
import pytest

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.feed import mangled_line
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import ConfigError, LockHeldError
from auditor.partitions import DAY_MS, HOUR_MS, parse_timezone
from auditor.records import content_hash, msg_id, timestamp_ms
from auditor.sources import pull as pull_module
from auditor.sources.easemob import EasemobClient, RetryPolicy
from auditor.sources.hourfiles import HourFileSource
from auditor.sources.local import LocalFileSource
from auditor.sources.pull import pull

START = DEFAULT_START_MS
FOUR_HOURS = (START, START + 4 * HOUR_MS)
LABELS = ["2026110100", "2026110101", "2026110102", "2026110103"]


@pytest.fixture
def emu():
    options = EmulatorOptions(messages=1200, duplicate_rate=0.05, conflict_rate=0.05)
    with run_emulator(options) as emulator:
        yield emulator


def source_for(emu):
    options = emu.options
    client = EasemobClient(
        emu.base_url,
        options.org,
        options.app,
        options.client_id,
        options.client_secret,
        retry=RetryPolicy(max_retries=6, backoff_base=0.001, backoff_cap=0.01),
    )
    return HourFileSource(client)


def folder_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def records_in(folder):
    return [
        orjson.loads(line)
        for name in LABELS
        for line in (folder / f"{name}.jsonl").read_bytes().splitlines()
    ]


def fingerprints(records):
    return Counter(content_hash(record) for record in records)


def test_each_hour_becomes_a_sorted_file_listed_in_the_checkpoint(emu, tmp_path):
    summary = pull(source_for(emu), *FOUR_HOURS, tmp_path)

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        *(f"{label}.jsonl" for label in LABELS),
        "checkpoint.json",
        "conflicts.jsonl",
    ]
    assert fingerprints(records_in(tmp_path)) == fingerprints(emu.expected_records(*FOUR_HOURS))
    checkpoint = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    for label in LABELS:
        data = (tmp_path / f"{label}.jsonl").read_bytes()
        times = [timestamp_ms(orjson.loads(line)) for line in data.splitlines()]
        dated = [t for t in times if t is not None]
        assert dated == sorted(dated)
        entry = checkpoint["hours"][label]
        assert entry["records"] == len(times)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert [hour.status for hour in summary.hours] == ["pulled"] * 4
    assert summary.records == sum(1 for _ in emu.expected_records(*FOUR_HOURS))


def test_conflicting_versions_are_listed_with_their_hour(emu, tmp_path):
    pull(source_for(emu), *FOUR_HOURS, tmp_path)

    listed = [orjson.loads(line) for line in (tmp_path / "conflicts.jsonl").read_bytes().split()]
    twice = Counter(msg_id(record) for record in emu.expected_records(*FOUR_HOURS))
    assert sorted(entry["msg_id"] for entry in listed) == sorted(
        identity for identity, n in twice.items() if identity and n > 1
    )
    assert {entry["variants"] for entry in listed} == {2}
    assert {entry["hour"] for entry in listed} <= set(LABELS)


def test_a_second_pull_skips_completed_hours_and_changes_no_byte(emu, tmp_path):
    pull(source_for(emu), *FOUR_HOURS, tmp_path)
    before, downloads = folder_bytes(tmp_path), sum(emu.stats.downloads.values())

    summary = pull(source_for(emu), *FOUR_HOURS, tmp_path)

    assert [hour.status for hour in summary.hours] == ["done"] * 4
    assert sum(emu.stats.downloads.values()) == downloads
    assert folder_bytes(tmp_path) == before


def test_an_hour_file_left_by_a_crash_before_its_checkpoint_is_adopted_as_it_is(emu, tmp_path):
    pull(source_for(emu), *FOUR_HOURS, tmp_path)
    before, downloads = folder_bytes(tmp_path), sum(emu.stats.downloads.values())
    checkpoint = orjson.loads(before["checkpoint.json"])
    del checkpoint["hours"]["2026110102"]
    (tmp_path / "checkpoint.json").write_bytes(orjson.dumps(checkpoint))
    (tmp_path / ".2026110103.jsonl.tmp").write_bytes(b'{"half": ')

    pull(source_for(emu), *FOUR_HOURS, tmp_path)

    assert sum(emu.stats.downloads.values()) == downloads
    assert folder_bytes(tmp_path) == before


def test_an_hour_file_that_no_longer_matches_the_checkpoint_is_pulled_again(emu, tmp_path):
    pull(source_for(emu), *FOUR_HOURS, tmp_path)
    before = folder_bytes(tmp_path)
    with (tmp_path / "2026110101.jsonl").open("ab") as handle:
        handle.write(b'{"msg_id": "forged"}\n')

    summary = pull(source_for(emu), *FOUR_HOURS, tmp_path)

    assert [hour.status for hour in summary.hours] == ["done", "pulled", "done", "done"]
    assert folder_bytes(tmp_path) == before


def test_refetch_picks_up_records_that_arrived_late(tmp_path):
    with run_emulator(EmulatorOptions(messages=1200, late_rate=0.1)) as emu:
        pull(source_for(emu), *FOUR_HOURS, tmp_path)
        first = fingerprints(records_in(tmp_path))

        summary = pull(source_for(emu), *FOUR_HOURS, tmp_path, refetch=True)

        expected = fingerprints(emu.expected_records(*FOUR_HOURS))
        assert not first - expected and first != expected
        assert fingerprints(records_in(tmp_path)) == expected
        assert [hour.status for hour in summary.hours] == ["pulled"] * 4


def test_an_hour_not_ready_at_the_source_is_reported_and_left_for_later(tmp_path):
    # the source's clock six hours into the history: 2026103123, refused, is young
    with run_emulator(
        EmulatorOptions(messages=1200, clock_start=(START + 6 * HOUR_MS) / 1000)
    ) as emu:
        summary = pull(source_for(emu), START - HOUR_MS, START + HOUR_MS, tmp_path)

    assert [(hour.label, hour.status) for hour in summary.hours] == [
        ("2026103123", "not_ready"),
        ("2026110100", "pulled"),
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "2026110100.jsonl",
        "checkpoint.json",
        "conflicts.jsonl",
    ]
    checkpoint = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert list(checkpoint["hours"]) == ["2026110100"]


EXPIRED_REASON = (
    "older than the source's retention of 3 days; it answered: illegal arguments: appkey: "
    "demo-org#demo-app, time: 2026103123, maybe chat message history is expired or unstored"
)


@pytest.fixture
def late_emu():
    """The source's clock four days into the history: it refuses 2026103123 (before the
    history), which is past the 3 days it keeps hour files, and serves 2026110100."""
    options = EmulatorOptions(messages=1200, clock_start=(START + 4 * DAY_MS) / 1000)
    with run_emulator(options) as emulator:
        yield emulator


def hour_requests(emu):
    return sum(emu.stats.by_route("hour").values())


def test_an_hour_the_source_no_longer_keeps_is_recorded_as_expired_with_no_records(
    late_emu, tmp_path
):
    summary = pull(source_for(late_emu), START - HOUR_MS, START + HOUR_MS, tmp_path)

    assert [(hour.label, hour.status, hour.records) for hour in summary.hours] == [
        ("2026103123", "expired", 0),
        ("2026110100", "pulled", 50),
    ]
    assert summary.hours[0].detail == EXPIRED_REASON
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "2026103123.expired.txt",
        "2026110100.jsonl",
        "checkpoint.json",
        "conflicts.jsonl",
    ]
    assert (tmp_path / "2026103123.expired.txt").read_text() == EXPIRED_REASON + "\n"
    checkpoint = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert checkpoint["hours"]["2026103123"] == {
        "start": "2026-10-31T23:00:00Z",
        "records": 0,
        "conflicts": {},
        "expired": EXPIRED_REASON,
    }


def test_a_second_pull_does_not_ask_again_for_an_expired_hour(late_emu, tmp_path):
    pull(source_for(late_emu), START - HOUR_MS, START + HOUR_MS, tmp_path)
    before, asked = folder_bytes(tmp_path), hour_requests(late_emu)

    summary = pull(source_for(late_emu), START - HOUR_MS, START + HOUR_MS, tmp_path)

    assert [(hour.status, hour.detail) for hour in summary.hours] == [
        ("expired", EXPIRED_REASON),
        ("done", ""),
    ]
    assert hour_requests(late_emu) == asked
    assert folder_bytes(tmp_path) == before


def test_refetch_asks_again_for_an_expired_hour_and_changes_no_byte(late_emu, tmp_path):
    pull(source_for(late_emu), START - HOUR_MS, START, tmp_path)
    before, asked = folder_bytes(tmp_path), hour_requests(late_emu)

    summary = pull(source_for(late_emu), START - HOUR_MS, START, tmp_path, refetch=True)

    assert [hour.status for hour in summary.hours] == ["expired"]
    assert hour_requests(late_emu) == asked + 1
    assert folder_bytes(tmp_path) == before


def test_an_expiry_file_left_by_a_crash_before_its_checkpoint_is_adopted_as_it_is(
    late_emu, tmp_path
):
    pull(source_for(late_emu), START - HOUR_MS, START + HOUR_MS, tmp_path)
    before, asked = folder_bytes(tmp_path), hour_requests(late_emu)
    checkpoint = orjson.loads(before["checkpoint.json"])
    del checkpoint["hours"]["2026103123"]
    (tmp_path / "checkpoint.json").write_bytes(orjson.dumps(checkpoint))

    summary = pull(source_for(late_emu), START - HOUR_MS, START + HOUR_MS, tmp_path)

    assert [hour.status for hour in summary.hours] == ["expired", "done"]
    assert hour_requests(late_emu) == asked
    assert folder_bytes(tmp_path) == before


def test_an_hour_file_that_a_refetch_killed_before_its_journal_left_beside_an_expiry_is_adopted(
    late_emu, tmp_path
):
    out = tmp_path / "out"
    pull(source_for(late_emu), START - HOUR_MS, START, out)
    expired_checkpoint = (out / "checkpoint.json").read_bytes()
    export = tmp_path / "export.jsonl"
    export.write_bytes(b'{"msg_id": "1", "timestamp": %d}\n' % (START - 60_000))
    pull(LocalFileSource([export]), START - HOUR_MS, START, out, refetch=True)
    after, asked = folder_bytes(out), hour_requests(late_emu)
    (out / "checkpoint.json").write_bytes(expired_checkpoint)

    summary = pull(source_for(late_emu), START - HOUR_MS, START, out)

    assert [(hour.status, hour.records) for hour in summary.hours] == [("done", 1)]
    assert hour_requests(late_emu) == asked
    assert folder_bytes(out) == after


def test_refetch_of_an_hour_the_source_has_since_deleted_keeps_the_file_pulled_before(tmp_path):
    options = EmulatorOptions(
        messages=1200, retention_days=3, clock_start=(START + 6 * HOUR_MS) / 1000
    )
    with run_emulator(options) as emu:
        pull(source_for(emu), START, START + HOUR_MS, tmp_path)
        before = folder_bytes(tmp_path)
        emu.clock.advance(4 * DAY_MS / 1000)

        summary = pull(source_for(emu), START, START + HOUR_MS, tmp_path, refetch=True)

    assert [(hour.status, hour.records) for hour in summary.hours] == [("done", 50)]
    assert folder_bytes(tmp_path) == before


def test_an_expired_hour_pulled_later_from_an_export_replaces_its_expiry_file(late_emu, tmp_path):
    out = tmp_path / "out"
    pull(source_for(late_emu), START - HOUR_MS, START, out)
    export = tmp_path / "export.jsonl"
    export.write_bytes(b'{"msg_id": "1", "timestamp": %d}\n' % (START - 60_000))

    summary = pull(LocalFileSource([export]), START - HOUR_MS, START, out, refetch=True)

    assert [(hour.status, hour.records) for hour in summary.hours] == [("pulled", 1)]
    assert sorted(path.name for path in out.iterdir()) == [
        "2026103123.jsonl",
        "checkpoint.json",
        "conflicts.jsonl",
    ]
    checkpoint = orjson.loads((out / "checkpoint.json").read_bytes())
    assert checkpoint["hours"]["2026103123"]["records"] == 1
    assert "expired" not in checkpoint["hours"]["2026103123"]


def test_a_pulled_folder_read_back_as_local_files_pulls_to_the_same_bytes(emu, tmp_path):
    pull(source_for(emu), *FOUR_HOURS, tmp_path / "first")

    pull(LocalFileSource([tmp_path / "first"]), *FOUR_HOURS, tmp_path / "again")

    assert folder_bytes(tmp_path / "again") == folder_bytes(tmp_path / "first")


def test_a_second_pull_into_a_folder_in_use_is_refused(emu, tmp_path):
    descriptor = os.open(tmp_path, os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        with pytest.raises(LockHeldError, match="another auditor pull is writing to"):
            pull(source_for(emu), *FOUR_HOURS, tmp_path)
    finally:
        os.close(descriptor)


def test_an_empty_window_is_refused(emu, tmp_path):
    with pytest.raises(ConfigError, match="the window is empty"):
        pull(source_for(emu), START, START, tmp_path)


def test_resuming_with_hours_named_in_another_zone_is_refused(emu, tmp_path):
    pull(source_for(emu), START, START + HOUR_MS, tmp_path)
    beijing = source_for(emu)
    beijing.hour_timezone = parse_timezone("+8")

    with pytest.raises(ConfigError, match=r"holds hours labelled in UTC, not UTC\+08:00"):
        pull(beijing, START, START + HOUR_MS, tmp_path)


def test_served_data_that_is_not_a_record_is_kept_verbatim_beside_its_hour(tmp_path):
    options = EmulatorOptions(messages=1200, mangled_rate=0.03)
    with run_emulator(options) as emulator:
        summary = pull(source_for(emulator), *FOUR_HOURS, tmp_path)
        history, faults = emulator.history, emulator.feed.faults
        mangled = {
            label: [
                mangled_line(orjson.dumps(history.record(i)))
                for i in history.index_range(start, start + HOUR_MS)
                if faults.mangled(i)
            ]
            for label, start in zip(LABELS, range(START, START + 4 * HOUR_MS, HOUR_MS), strict=True)
        }
        expected = fingerprints(emulator.expected_records(*FOUR_HOURS))
        before = folder_bytes(tmp_path)
        again = pull(source_for(emulator), *FOUR_HOURS, tmp_path)

    checkpoint = orjson.loads(before["checkpoint.json"])
    assert sum(map(len, mangled.values())) > 4
    for label, lines in mangled.items():
        kept = before.get(f"{label}.unreadable.txt", b"")
        assert kept.splitlines() == lines
        assert checkpoint["hours"][label].get("unreadable", 0) == len(lines)
    assert [hour.unreadable for hour in summary.hours] == [len(mangled[label]) for label in LABELS]
    assert [hour.unreadable for hour in again.hours] == [len(mangled[label]) for label in LABELS]
    assert fingerprints(records_in(tmp_path)) == expected
    assert folder_bytes(tmp_path) == before


def test_a_refetch_keeps_the_unreadable_pieces_only_an_earlier_pull_was_served(tmp_path):
    with run_emulator(EmulatorOptions(messages=1200, mangled_rate=0.03)) as damaging:
        pull(source_for(damaging), *FOUR_HOURS, tmp_path)
    before = folder_bytes(tmp_path)
    pieces = {name: data for name, data in before.items() if name.endswith(".unreadable.txt")}
    counts = [len(before.get(f"{label}.unreadable.txt", b"").splitlines()) for label in LABELS]

    with run_emulator(EmulatorOptions(messages=1200)) as clean:
        summary = pull(source_for(clean), *FOUR_HOURS, tmp_path, refetch=True)

    after = folder_bytes(tmp_path)
    checkpoint = orjson.loads(after["checkpoint.json"])
    assert sum(counts) > 4
    assert {name: after.get(name) for name in pieces} == pieces
    assert [checkpoint["hours"][label].get("unreadable", 0) for label in LABELS] == counts
    assert [(hour.status, hour.unreadable) for hour in summary.hours] == [
        ("pulled", count) for count in counts
    ]


def test_a_refetch_served_other_unreadable_pieces_keeps_them_after_the_new_ones(tmp_path):
    label = LABELS[0]
    with run_emulator(EmulatorOptions(messages=1200, shifting_rate=1.0)) as shifting:
        source = source_for(shifting)
        source.attempts = 1  # each pull keeps its first file, whose line N is cut (`shifted`)
        pull(source, START, START + HOUR_MS, tmp_path)
        first = (tmp_path / f"{label}.unreadable.txt").read_bytes()

        summary = pull(source, START, START + HOUR_MS, tmp_path, refetch=True)

    second = (tmp_path / f"{label}.unreadable.txt").read_bytes()
    checkpoint = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    assert len(first.splitlines()) == 1
    assert len(second.splitlines()) == 2
    assert second.endswith(first) and not second.startswith(first)
    assert checkpoint["hours"][label]["unreadable"] == 2
    assert [(hour.unreadable, hour.earlier) for hour in summary.hours] == [(2, 1)]


@pytest.mark.parametrize("spill", ["", "50"], ids=["in memory", "on disk"])
def test_a_refetch_that_loses_no_record_settles_no_record_again(tmp_path, monkeypatch, spill):
    """It settled the records served and those pulled before together: twice the hour's."""
    monkeypatch.setenv("AUDITOR_SETTLE_SPILL_RECORDS", spill)
    with run_emulator(EmulatorOptions(messages=1200, late_rate=0.1)) as emu:
        pull(source_for(emu), *FOUR_HOURS, tmp_path / "late")
        pull(source_for(emu), *FOUR_HOURS, tmp_path / "twice")
        settled = _settles_counted(monkeypatch)
        for folder in ("late", "twice"):
            pull(source_for(emu), *FOUR_HOURS, tmp_path / folder, refetch=True)
        monkeypatch.undo()
        pull(source_for(emu), *FOUR_HOURS, tmp_path / "once")

    assert sum(settled.values()) == 0
    assert folder_bytes(tmp_path / "late") == folder_bytes(tmp_path / "once")
    assert folder_bytes(tmp_path / "twice") == folder_bytes(tmp_path / "once")


@pytest.mark.parametrize("spill", ["", "50"], ids=["in memory", "on disk"])
def test_a_refetch_served_every_record_with_its_keys_in_another_order_settles_none_again(
    tmp_path, monkeypatch, spill
):
    """Each record the earlier pull got comes again with its keys reversed: the same content,
    which the quick comparison now finds, rather than settling twice the hour's records."""
    monkeypatch.setenv("AUDITOR_SETTLE_SPILL_RECORDS", spill)
    with run_emulator(EmulatorOptions(messages=1200)) as emu:
        pull(source_for(emu), *FOUR_HOURS, tmp_path / "out")
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"".join(
        orjson.dumps(dict(reversed(record.items()))) + b"\n"
        for record in records_in(tmp_path / "out")
    ))  # fmt: skip
    settled = _settles_counted(monkeypatch)
    summary = pull(LocalFileSource([export]), *FOUR_HOURS, tmp_path / "out", refetch=True)

    assert sum(settled.values()) == 0
    assert [hour.earlier for hour in summary.hours] == [0, 0, 0, 0]
    assert fingerprints(records_in(tmp_path / "out")) == fingerprints(
        orjson.loads(line) for line in export.read_bytes().splitlines()
    )
    first = (tmp_path / "out" / f"{LABELS[0]}.jsonl").read_bytes().splitlines()[0]
    assert first == export.read_bytes().splitlines()[0]  # as now served


def _settles_counted(monkeypatch) -> Counter:
    """The hours `pull` settles from now on, counted (the real `settle` still runs)."""
    settled: Counter = Counter()
    real_settle = pull_module.settle

    def counted(partition, served, *args):
        settled[partition.start_ms] += 1
        return real_settle(partition, served, *args)

    monkeypatch.setattr(pull_module, "settle", counted)
    return settled
