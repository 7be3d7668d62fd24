"""The legacy `ql` source against a server that lies (emulator/hostile.py), over loopback HTTP:
every misbehaviour ends in the complete hour or in one clear error, never in a silent loss, a
duplicate or an endless pull."""

from collections import Counter

import pytest
from run_support import emulator_client

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import RetriesExhausted, SourceError
from auditor.partitions import HOUR_MS, Partition
from auditor.records import content_hash
from auditor.sources.legacy import LegacyQuerySource

HOURS = 2
ENTITY_FIELDS = ("uuid", "type", "created", "modified")


def pull(emu, limit=100, max_retries=3):
    client = emulator_client(emu, max_retries)
    with LegacyQuerySource(client, limit=limit) as source:
        results = [source.fetch(Partition(DEFAULT_START_MS + n * HOUR_MS)) for n in range(HOURS)]
    return Counter(
        content_hash({key: value for key, value in record.items() if key not in ENTITY_FIELDS})
        for result in results
        for record in result.records
    )


def expected(emu):
    records = emu.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + HOURS * HOUR_MS)
    return Counter(content_hash(record) for record in records)


def test_a_page_holding_fewer_entities_than_its_count_is_an_error_not_a_silent_loss():
    with (
        run_emulator(EmulatorOptions(messages=24_000, legacy_hostile="drop=1")) as emu,
        pytest.raises(
            RetriesExhausted,
            match=r"said count 100 but held 99 entities.*answers, but not as the API does",
        ),
    ):
        pull(emu)


def test_a_count_that_lies_without_loss_is_refused_too_in_one_line():
    with (
        run_emulator(EmulatorOptions(messages=24_000, legacy_hostile="count=5")) as emu,
        pytest.raises(RetriesExhausted) as raised,
    ):
        pull(emu)
    assert "\n" not in str(raised.value)


# Pages of 100 that overlap by 99 move on a row a page: 400 pages for a day of 4,800 messages
# (2,000 for 24,000 took 25 s).
@pytest.mark.parametrize(
    ("spec", "messages"), [("overlap=3", 24_000), ("overlap=99", 4_800), ("repeat=2", 24_000)]
)
def test_pages_that_overlap_or_repeat_lose_and_double_nothing(spec, messages):
    with run_emulator(EmulatorOptions(messages=messages, legacy_hostile=spec)) as emu:
        assert pull(emu) == expected(emu)


@pytest.mark.parametrize(
    ("spec", "said"),
    [("loop=3", "again on page 4"), ("loop=3,loop_fresh=1", "3 pages in a row with no message")],
)
def test_a_cursor_that_loops_for_ever_ends_in_one_error(spec, said):
    with run_emulator(EmulatorOptions(messages=24_000, legacy_hostile=spec)) as emu:
        with pytest.raises(SourceError, match=said):
            pull(emu)
        assert sum(emu.stats.by_route("legacy").values()) <= 8


def test_a_cursor_that_expires_while_pages_come_slowly_resumes_by_timestamp_losing_nothing():
    options = EmulatorOptions(
        messages=24_000, legacy_hostile="cursor_ttl=0.05", slow_rate=0.3, slow_seconds=0.1
    )
    with run_emulator(options) as emu:
        assert pull(emu, max_retries=0) == expected(emu)
        assert emu.stats.by_route("legacy").get(400, 0) >= 2


def test_a_cursor_refused_before_the_hour_brings_anything_new_is_still_one_error():
    options = EmulatorOptions(messages=24_000, legacy_hostile="cursor_ttl=0.000001")
    with run_emulator(options) as emu, pytest.raises(SourceError, match="cursor has expired"):
        pull(emu, limit=1)


def test_a_cursor_refused_before_any_row_of_the_hour_came_asks_for_the_hour_again():
    """Usergrid may open with an empty page and a cursor; that cursor expiring is no loss."""
    options = EmulatorOptions(messages=4_800, legacy_hostile="empty=1,expire_once=1")
    with run_emulator(options) as emu:
        assert pull(emu, limit=100) == expected(emu)
        assert emu.stats.by_route("legacy").get(400, 0) >= 1


def test_a_resume_at_a_page_boundary_between_rows_of_one_timestamp_loses_none_of_them():
    """Copies and second versions share their original's timestamp; pages of 7 split them."""
    options = EmulatorOptions(
        messages=4_800, legacy_hostile="cursor_ttl=0.02", duplicate_rate=0.5,
        conflict_rate=0.5, slow_rate=0.3, slow_seconds=0.05,
    )  # fmt: skip
    with run_emulator(options) as emu:
        assert pull(emu, limit=7, max_retries=0) == expected(emu)
        assert emu.stats.by_route("legacy").get(400, 0) >= 5
