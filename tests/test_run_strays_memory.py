"""A run's memory stays flat in the number of records a source serves in a wrong hour.

Such a record (a stray) is remembered until the hour of its timestamp is archived, where it
could be served again; records without a msg_id are remembered for the whole run. Both were
Python sets, so a source naming its hours in another zone (every record a stray) grew the
coordinator by about 300 bytes a record: 150 MB at 500,000 records. They are now the run's
temporary SQLite tables, an hour's strays read as the hour is archived.
"""

from __future__ import annotations

import gc
import tracemalloc

from run_support import settings_for

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS, Partition
from auditor.pipeline import Progress, run_audit
from auditor.stages import PartitionOutcome

SECRET = "strays-memory-secret"
# A day of history, a third of it in the 8 hours each run audits: 4,000 records, 2,500 of them
# strays from the 3rd hour on, which the sets held as about 0.7 MB (2.9 MB for 10,000,
# measured), against the bound of 125 KB below.
MESSAGES = 12_000
STRAYS = 2_500


def growth_of_a_run(keys, folder, hour_timezone: str) -> tuple[int, int]:
    """Records a run of 8 hours (UTC 08:00 onwards) archived, and how much the traced memory
    held grew from its 3rd hour to its last, against a source naming its hours in
    `hour_timezone`: in +8 every record is a stray, in UTC none."""
    options = EmulatorOptions(
        messages=MESSAGES, days=1, client_secret=SECRET, hour_timezone=hour_timezone
    )
    held: list[int] = []

    def measure(_partition: Partition, _outcome: PartitionOutcome) -> None:
        gc.collect()
        held.append(tracemalloc.get_traced_memory()[0])

    since = DEFAULT_START_MS + 8 * HOUR_MS
    with run_emulator(options) as source:
        settings = settings_for(
            source, keys, folder, SECRET, since_ms=since, until_ms=since + 8 * HOUR_MS,
            fail_on="none", attachments="skip",
        )  # fmt: skip
        tracemalloc.start()
        try:
            outcome = run_audit(settings, Progress(partition_done=measure))
        finally:
            tracemalloc.stop()
    return outcome.records, held[-1] - held[2]


def test_a_run_whose_every_record_is_a_stray_grows_no_more_than_one_with_none(tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="strays-memory-test")
    records, plain = growth_of_a_run(keys, tmp_path / "utc", "UTC")
    strays, strayed = growth_of_a_run(keys, tmp_path / "china", "+8")

    assert records == strays == MESSAGES // 3
    assert strayed - plain < 50 * STRAYS, (plain, strayed)
