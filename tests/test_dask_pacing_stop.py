"""A paced Dask run that stops fetches no hour after the stop, as a local one does
(`test_sources_pacing`): on a real `distributed.LocalCluster`, the cluster at --scheduler whose
workers outlive the run and the run's own, which waits for its workers as it closes."""

from __future__ import annotations

import dataclasses
import time

import pytest
import run_support
from distributed import LocalCluster

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import Progress, run_audit
from auditor.stages import PACE_FILE

SECRET = "dask-pacing-stop-secret"
INTERVAL_S = 5.0
HOURS = 4


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as running:
        yield running.scheduler_address


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="dask-pacing-stop")


@pytest.mark.parametrize("where", ["scheduler", "own"])
def test_a_stopped_paced_dask_run_fetches_no_hour_after_the_stop(cluster, keys, tmp_path, where):
    """Two workers: one fetches the first hour, the other waits for the next slot 5 s on.
    Before, the cancelled task still fetched at its slot (and the next one after it), and the
    run's own cluster held the stop those 5 s while it closed. The stop marker that tells the
    tasks is removed once they gave up, not left in the spool for the next run to clear."""
    at_stop: list[tuple[float, int]] = []
    with run_emulator(EmulatorOptions(messages=1200, client_secret=SECRET)) as emulator:

        def stop_after_the_first_hour(_partition, _outcome):
            at_stop.append((time.monotonic(), emulator.stats.requests[("hour", 200)]))
            raise KeyboardInterrupt

        source = dataclasses.replace(
            run_support.source_of(emulator, SECRET),
            hour_files_per_minute=60 / INTERVAL_S,
            max_retries=0,
        )
        settings = run_support.settings_for(
            emulator, keys, tmp_path, SECRET, source=source, executor="dask", workers=2,
            executor_options={"scheduler": cluster} if where == "scheduler" else {},
            until_ms=DEFAULT_START_MS + HOURS * HOUR_MS,
        )  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            run_audit(settings, Progress(partition_done=stop_after_the_first_hour))
        took = time.monotonic() - at_stop[0][0]
        markers_left = [path.name for path in tmp_path.rglob(f"{PACE_FILE}.stop")]
        time.sleep(2 * INTERVAL_S + 1)  # past the slots the stopped tasks held
        asked_after = emulator.stats.requests[("hour", 200)] - at_stop[0][1]
        unpaced = dataclasses.replace(source, hour_files_per_minute=0)
        resumed = run_audit(dataclasses.replace(settings, source=unpaced))
        expected = sum(
            1
            for _ in emulator.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + HOURS * HOUR_MS)
        )

    assert asked_after == 0
    assert took < INTERVAL_S - 1  # the waiting task gave up, not fetched at its slot
    assert markers_left == []  # once its tasks gave up (before, left for the next run)
    assert resumed.records == expected
