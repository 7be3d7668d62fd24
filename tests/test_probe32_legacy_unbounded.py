"""probe32: a legacy server that ignores the query's upper bound (`timestamp<end`), as one that
takes a single bound does (Easemob's 2015 docs forbid `and` in `ql`). Each hour paged on to the
end of the history: a run of 4 hours over a day of 12,000 messages archived all 12,000, every
hour pulling the rest of the day (a backfill of months: each hour the months after it)."""

from collections import Counter

from run_support import emulator_client

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS, Partition
from auditor.records import content_hash
from auditor.sources.legacy import LegacyQuerySource

ENTITY_FIELDS = ("uuid", "type", "created", "modified")


def test_an_hour_stops_paging_once_an_ascending_server_serves_rows_past_its_end(caplog):
    with run_emulator(EmulatorOptions(messages=24_000, legacy_hostile="unbounded=1")) as emu:
        client = emulator_client(emu)
        with LegacyQuerySource(client, limit=100) as source:
            results = [source.fetch(Partition(DEFAULT_START_MS + n * HOUR_MS)) for n in (0, 1)]
        requests = sum(emu.stats.by_route("legacy").values())
        want = Counter(
            content_hash(record)
            for record in emu.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + 2 * HOUR_MS)
        )

    got = Counter(
        content_hash({key: value for key, value in record.items() if key not in ENTITY_FIELDS})
        for result in results
        for record in result.records
    )
    assert not want - got, "every record of the two hours came"
    assert all(result.outside <= 200 for result in results), "at most two pages past each hour"
    assert requests <= 2 * 13, "an hour of 1,000 rows is 10 pages of 100, and two past its end"
    assert "ignores the query's upper bound" in caplog.text


def test_a_server_that_ignores_the_bound_and_serves_newest_first_loses_none_of_the_hour():
    """Newest first, the rows past the hour come before its own: stopping at the first page
    past the end would have lost the whole hour."""
    options = EmulatorOptions(messages=4_800, legacy_hostile="unbounded=1,descending=1")
    with run_emulator(options) as emu:
        client = emulator_client(emu)
        with LegacyQuerySource(client, limit=100) as source:
            result = source.fetch(Partition(DEFAULT_START_MS))
        want = Counter(
            content_hash(record)
            for record in emu.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + HOUR_MS)
        )

    got = Counter(
        content_hash({key: value for key, value in record.items() if key not in ENTITY_FIELDS})
        for record in result.records
    )
    assert want and not want - got
