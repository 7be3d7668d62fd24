"""The hour-file source against the emulator over loopback HTTP, every fault switched on."""

import gzip
import re
import time
from collections import Counter

import pytest

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import DAY_MS, HOUR_MS, Partition, parse_timezone
from auditor.records import content_hash, msg_id, timestamp_ms
from auditor.sources.easemob import EasemobClient, RetryPolicy
from auditor.sources.hourfiles import HourFileSource
from auditor.sources.interface import HourExpired, PartitionNotReady, Unreadable

START = DEFAULT_START_MS
FAST = RetryPolicy(max_retries=6, backoff_base=0.001, backoff_cap=0.01)
EVERY_FAULT = {
    "fail_rate": 0.2,
    "rate_limit_rate": 0.1,
    "slow_rate": 0.02,
    "slow_seconds": 0.05,
    "duplicate_rate": 0.05,
    "conflict_rate": 0.02,
    "late_rate": 0.03,
    "truncate_rate": 0.15,
    "garbage_rate": 0.05,
}


def client_for(emu, cls=EasemobClient):
    options = emu.options
    return cls(
        emu.base_url,
        options.org,
        options.app,
        options.client_id,
        options.client_secret,
        retry=FAST,
    )


def hours(count, start=START):
    return [Partition(start + n * HOUR_MS) for n in range(count)]


def fingerprints(records):
    return Counter(content_hash(record) for record in records)


def fetched(source, partitions):
    return [record for partition in partitions for record in source.records(partition)]


def test_every_fault_loses_nothing_doubles_nothing_and_late_records_come_on_a_second_look():
    options = EmulatorOptions(messages=3000, **EVERY_FAULT)
    with run_emulator(options) as emu:
        source = HourFileSource(client_for(emu))
        expected = fingerprints(emu.expected_records(START, START + DAY_MS))

        first = fingerprints(fetched(source, hours(24)))
        results = [source.fetch(partition) for partition in hours(24)]
        second = fingerprints(r for result in results for r in result.records)

        assert not first - expected
        assert max(first.values()) == 1
        assert second == expected
        assert first != expected
        conflicted = Counter(msg_id(r) for r in emu.expected_records(START, START + DAY_MS))
        reported = {identity for result in results for identity in result.conflicts}
        assert reported == {identity for identity, n in conflicted.items() if identity and n > 1}
        assert sum(result.duplicates for result in results) > 0
        assert {"fail", "rate_limit", "slow", "truncate", "garbage"} <= set(emu.stats.faults)


@pytest.mark.parametrize("zone", ["UTC", "+8"])
def test_a_record_on_the_hour_lands_in_that_hour_only(zone):
    with run_emulator(
        EmulatorOptions(messages=1200, hour_timezone=zone, duplicate_rate=0.05)
    ) as emu:
        source = HourFileSource(client_for(emu), hour_timezone=parse_timezone(zone))
        results = {partition: source.fetch(partition) for partition in hours(6)}

        on_the_hour = [
            record
            for record in emu.expected_records(START, START + 6 * HOUR_MS)
            if (timestamp_ms(record) or 1) % HOUR_MS == 0
        ]
        assert len(on_the_hour) >= 5
        for record in on_the_hour:
            holders = [p for p, result in results.items() if record in result.records]
            assert holders == [Partition(timestamp_ms(record))]
        everything = [record for result in results.values() for record in result.records]
        assert fingerprints(everything) == fingerprints(
            emu.expected_records(START, START + 6 * HOUR_MS)
        )
        assert set(emu.stats.downloads) == {emu.hour_label(p.start_ms) for p in hours(6)}


def test_a_token_that_expires_mid_pull_is_renewed_once_and_the_pull_goes_on():
    with run_emulator(EmulatorOptions(messages=600)) as emu:
        source = HourFileSource(client_for(emu))
        before = fetched(source, hours(2))
        emu.clock.advance(61 * 24 * 3600)
        after = fetched(source, hours(2, START + 2 * HOUR_MS))

        assert fingerprints(before + after) == fingerprints(
            emu.expected_records(START, START + 4 * HOUR_MS)
        )
        assert emu.stats.tokens_issued == 2
        assert emu.stats.by_route("hour").get(401) == 1


class SlowToDownload(EasemobClient):
    """Lets the download URL expire between asking for it and using it, `nudges` times."""

    emu = None
    nudges = 2

    def hour_file_url(self, label):
        url = super().hour_file_url(label)
        if self.nudges:
            self.nudges -= 1
            self.emu.clock.advance(1801)
        return url


def test_a_download_url_that_expires_before_use_is_replaced_by_a_fresh_one():
    with run_emulator(EmulatorOptions(messages=600)) as emu:
        client = client_for(emu, SlowToDownload)
        client.emu = emu
        records = fetched(HourFileSource(client), hours(3))

        assert fingerprints(records) == fingerprints(
            emu.expected_records(START, START + 3 * HOUR_MS)
        )
        assert emu.stats.by_route("file") == {403: 2, 200: 3}


def test_an_hour_without_messages_is_empty_and_an_hour_not_yet_stored_is_not_ready():
    with run_emulator(EmulatorOptions(messages=5, clock_start=(START + DAY_MS) / 1000)) as emu:
        source = HourFileSource(client_for(emu))
        empty = next(p for p in hours(24) if not emu.expected_records(p.start_ms, p.end_ms))
        assert source.fetch(empty).records == ()
        with pytest.raises(PartitionNotReady, match="hour 2026103123 is not available yet"):
            source.fetch(Partition(START - HOUR_MS))


def test_a_refused_hour_is_expired_once_past_the_retention_by_the_sources_clock():
    """The emulator's clock, weeks behind this machine's, says how old the hour is. It refuses
    hours older than 3 days; one refused just after that counts as expired also for a source
    said to keep them up to an hour longer (a source may count from the hour's start)."""
    hour_ended = START + HOUR_MS
    options = EmulatorOptions(messages=240, retention_days=3, clock_start=hour_ended / 1000)
    with run_emulator(options) as emu:
        emu.clock.advance(HOUR_MS / 1000)
        with pytest.raises(PartitionNotReady) as young:
            HourFileSource(client_for(emu), retention_days=3).fetch(Partition(START))
        emu.clock.advance((3 * DAY_MS - HOUR_MS + 60_000) / 1000)
        refused = {}
        for days in (3, 3.02, 4):
            with pytest.raises(PartitionNotReady) as old:
                HourFileSource(client_for(emu), retention_days=days).fetch(Partition(START))
            refused[days] = old.value

    assert type(young.value) is PartitionNotReady
    assert {days: type(error) for days, error in refused.items()} == {
        3: HourExpired,
        3.02: HourExpired,
        4: PartitionNotReady,
    }
    assert str(refused[3]) == (
        "hour 2026110100 has expired: older than the source's retention of 3 days; it answered: "
        "illegal arguments: appkey: demo-org#demo-app, time: 2026110100, maybe chat message "
        f"history is expired or unstored; {refused[3].clocks}"
    )
    assert re.fullmatch(
        r"the source's clock reads 2026-11-04T01:01:\d\dZ, [\d.]+ days behind this machine's",
        refused[3].clocks,
    )
    assert hour_ended + 3 * DAY_MS < refused[3].answered_ms < hour_ended + 3 * DAY_MS + 120_000


def test_a_source_clock_days_ahead_makes_no_hour_expired_that_this_machines_clock_calls_young():
    """A source whose clock runs 10 days ahead refuses the newest hours as older than its 3
    days. By its clock alone they would be expired, and archived as lost; an hour is judged by
    the earlier clock, here this machine's, so only one old by both clocks is expired."""
    now_ms = int(time.time() * 1000)
    this_hour = now_ms - now_ms % HOUR_MS
    ahead = (now_ms + 10 * DAY_MS) / 1000
    with run_emulator(EmulatorOptions(messages=5, retention_days=3, clock_start=ahead)) as emu:
        source = HourFileSource(client_for(emu), retention_days=3)
        with pytest.raises(PartitionNotReady) as young:
            source.fetch(Partition(this_hour - 2 * HOUR_MS))
        with pytest.raises(PartitionNotReady) as old:
            source.fetch(Partition(this_hour - 4 * DAY_MS))

    assert (type(young.value), type(old.value)) == (PartitionNotReady, HourExpired)
    clocks = r"the source's clock reads \S+Z, 10 days ahead of this machine's"
    assert re.fullmatch(
        rf"hour \d{{10}} is not available yet or has expired \(illegal arguments: .*\); "
        rf"{clocks}, and an hour counts as expired only when both clocks say so",
        str(young.value),
    )
    assert re.fullmatch(clocks, old.value.clocks)
    assert str(old.value).endswith(f"expired or unstored; {old.value.clocks}")
    assert now_ms <= old.value.answered_ms < now_ms + 60_000  # judged by this machine's clock


@pytest.mark.parametrize("spill", [False, True], ids=["in memory", "settled on disk"])
def test_a_file_that_keeps_a_broken_line_is_downloaded_twice_not_once_an_attempt(spill, tmp_path):
    """A persistent bad line (the server's, not the transfer's) comes back byte for byte: once
    the same bytes came twice, fetching again only spends Easemob's 10 hour files a minute (the
    hour took 7 of them at the default retries). Late records still come: the second file has
    them, so it differs from the first, and the third is asked for."""
    options = EmulatorOptions(messages=2400, mangled_rate=0.02, late_rate=0.02)
    with run_emulator(options) as emu:
        source = HourFileSource(client_for(emu))
        results = [source.fetch(partition, tmp_path if spill else None) for partition in hours(24)]
        broken = [result for result in results if result.unreadable]
        labels = [emu.hour_label(result.partition.start_ms) for result in broken]
        late = {emu.hour_label(p.start_ms) for p in hours(24) if late_in(emu, p)}
        assert len(broken) > 6 and late & set(labels) and set(labels) - late
        assert {label: emu.stats.downloads[label] for label in labels} == {
            label: 3 if label in late else 2 for label in labels
        }
        for result in broken:
            records = [record for record, _ in result.entries()]
            hour = result.partition
            assert fingerprints(records) == fingerprints(
                emu.expected_records(hour.start_ms, hour.end_ms)
            )


def test_served_keeps_what_two_different_broken_files_held_as_fetch_does():
    """`served` (the interface's raw items) goes through the one loop `fetch` does: both
    downloads, every record either held, the earlier file's cut line marked as such."""
    options = EmulatorOptions(messages=400, shifting_rate=1.0)
    with run_emulator(options) as emu:
        items = list(HourFileSource(client_for(emu), attempts=2).served(Partition(START)))
        expected = fingerprints(emu.expected_records(START, START + HOUR_MS))
        downloads = emu.stats.downloads[Partition(START).label()]

    records = [item for item in items if not isinstance(item, Unreadable)]
    pieces = [item.where for item in items if isinstance(item, Unreadable)]
    assert downloads == 2
    assert fingerprints(records) == expected
    assert pieces == ["2026110100:2", "2026110100:1 (in an earlier file)"]


def late_in(emu, partition):
    """Whether the emulator holds back some record of the hour from its first download."""
    indices = emu.history.index_range(partition.start_ms, partition.end_ms)
    return any(emu.feed.faults.late(index) for index in indices)


@pytest.mark.parametrize("on_disk", [False, True], ids=["in-memory", "settled-on-disk"])
def test_two_different_files_with_bad_lines_for_one_hour_keep_every_record_either_held(
    tmp_path, monkeypatch, on_disk
):
    """Each download of the hour cuts another record's line short: the first look lacks the
    first record, the second the second. Either file alone loses a record; the two together
    hold the hour, each record once, its served copies counted as in one file."""
    options = EmulatorOptions(messages=400, duplicate_rate=0.2, shifting_rate=1.0)
    if on_disk:
        monkeypatch.setenv("AUDITOR_SETTLE_SPILL_RECORDS", "2")
    with run_emulator(options) as emu:
        client = client_for(emu)
        source = HourFileSource(client, attempts=2)
        partition = Partition(START)
        result = source.fetch(partition, tmp_path if on_disk else None)
        records = [record for record, _content in result.entries()]
        expected = fingerprints(emu.expected_records(START, START + HOUR_MS))
        served = emu.feed.hour_file(START, with_late=True)

    lines = gzip.decompress(served).splitlines()
    copies = len(lines) - len(set(lines))
    assert emu.stats.downloads[partition.label()] == 2
    assert fingerprints(records) == expected
    assert result.duplicates == copies > 0
    assert result.files == 2
    cut = [line[: len(line) // 2] for line in lines[:2]]
    assert [piece.raw for piece in result.unreadable] == [cut[1], cut[0]]


@pytest.mark.parametrize("on_disk", [False, True], ids=["in-memory", "settled-on-disk"])
def test_a_broken_file_then_a_clean_one_keeps_the_broken_line_as_evidence(
    tmp_path, monkeypatch, on_disk
):
    """The first download cuts the first record's line short, the second is whole: the hour
    keeps every record once and the cut line, named as the earlier file's, as it keeps the
    pieces of two broken files: that the source served garbage is evidence too."""
    options = EmulatorOptions(messages=400, shifting_rate=1.0, shifting_looks=1)
    if on_disk:
        monkeypatch.setenv("AUDITOR_SETTLE_SPILL_RECORDS", "2")
    with run_emulator(options) as emu:
        partition = Partition(START)
        result = HourFileSource(client_for(emu)).fetch(partition, tmp_path if on_disk else None)
        records = [record for record, _content in result.entries()]
        expected = fingerprints(emu.expected_records(START, START + HOUR_MS))
        first = gzip.decompress(emu.feed.hour_file(START, with_late=True)).splitlines()[0]

    assert emu.stats.downloads[partition.label()] == 2
    assert fingerprints(records) == expected
    assert result.files == 2
    assert [(piece.where, piece.raw) for piece in result.unreadable] == [
        ("2026110100:1 (in an earlier file)", first[: len(first) // 2])
    ]
