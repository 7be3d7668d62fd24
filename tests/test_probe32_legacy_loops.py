"""probe32: a legacy server that loops while slipping an empty page between its repeated pages
(Usergrid may serve empty pages with a cursor, so one alone proves nothing) still ends in one
error within a few requests, not after `MAX_PAGES` (100,000) of them."""

import pytest
from run_support import emulator_client

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import SourceError
from auditor.partitions import Partition
from auditor.sources.legacy import LegacyQuerySource


def test_a_loop_with_an_empty_page_between_its_passes_ends_in_one_error():
    options = EmulatorOptions(messages=24_000, legacy_hostile="loop=2,loop_fresh=1,empty=1")
    with run_emulator(options) as emu:
        client = emulator_client(emu)
        with (
            LegacyQuerySource(client, limit=100, max_pages=200) as source,
            pytest.raises(SourceError, match="pages in a row with no message not served before"),
        ):
            source.fetch(Partition(DEFAULT_START_MS))
        assert sum(emu.stats.by_route("legacy").values()) <= 12


@pytest.mark.parametrize(
    ("spec", "limit", "why"),
    [
        ("descending=1,expire_once=1", 100, "its pages were not in time order"),
        ("cursor_ttl=0.000001", 1, "brought nothing new before its cursor was refused too"),
    ],
)
def test_a_refused_cursor_the_hour_cannot_go_on_from_names_the_hour_and_why(spec, limit, why):
    """It said only 'GET .../chatmessages was refused: HTTP 400 (illegal_argument: cursor has
    expired)', as if the auditor had never tried to resume."""
    with run_emulator(EmulatorOptions(messages=24_000, legacy_hostile=spec)) as emu:
        client = emulator_client(emu)
        with (
            LegacyQuerySource(client, limit=limit) as source,
            pytest.raises(SourceError) as refused,
        ):
            source.fetch(Partition(DEFAULT_START_MS))
    said = str(refused.value)
    assert "cursor has expired" in said and why in said and "\n" not in said
    assert "of the hour 2026-11-01T00:00:00Z" in said and "run again" in said
