"""A worker downloads a run's attachment files several at a time, as many as it is told, and
the bag does not depend on how many."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive import layout
from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.archive.verify import verify_bag
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import SourceError
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit
from auditor.stages import FAILED_DOWNLOADS_IN_A_ROW

SECRET = "downloads-test-secret"


@pytest.fixture
def emulator():
    # Every answer comes 30 ms late, so downloads that a worker overlaps are in flight together
    # at the emulator; an hour of this history points to a few dozen files.
    options = EmulatorOptions(
        messages=2400,
        days=1,
        client_secret=SECRET,
        slow_rate=1.0,
        slow_seconds=0.03,
        max_consecutive_faults=1_000_000,
    )
    with run_emulator(options) as running:
        yield running


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="downloads-test")


def one_hour(emulator, keys, folder, downloads: int, hours: int = 1):
    source = dataclasses.replace(
        run_support.source_of(emulator, SECRET), attachment_downloads=downloads
    )
    return run_support.settings_for(
        emulator,
        keys,
        folder,
        SECRET,
        source=source,
        until_ms=DEFAULT_START_MS + hours * HOUR_MS,
        fail_on="none",
    )


def test_a_worker_overlaps_as_many_downloads_as_it_is_told_and_the_bag_is_the_same(
    emulator, keys, tmp_path
):
    bags = {}
    peaks = {}
    for downloads in (1, 4):
        emulator.stats.peak_in_flight.clear()
        outcome = run_audit(one_hour(emulator, keys, tmp_path / str(downloads), downloads))
        assert outcome.attachments > 20
        bags[downloads] = run_support.payload(outcome.bag_path)
        peaks[downloads] = emulator.stats.peak_in_flight["chatfile"]
    assert peaks[1] == 1
    assert 1 < peaks[4] <= 4
    assert bags[1] == bags[4]


def test_the_flag_sets_how_many_downloads_overlap(emulator, keys, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            *run_support.run_args(emulator, keys, tmp_path, hours=1),
            "--attachment-downloads",
            "2",
            "--fail-on",
            "none",
            "--quiet",
        ],
        env={"EASEMOB_CLIENT_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    assert emulator.stats.peak_in_flight["chatfile"] == 2


@pytest.mark.parametrize("value", ["0", "33", "two"])
def test_a_flag_out_of_range_is_refused_before_any_request(emulator, keys, tmp_path, value):
    result = CliRunner().invoke(
        main,
        [*run_support.run_args(emulator, keys, tmp_path, hours=1), "--attachment-downloads", value],
        env={"EASEMOB_CLIENT_SECRET": SECRET},
    )
    assert result.exit_code == 2
    assert "--attachment-downloads" in result.output
    assert emulator.stats.requests == {}


def test_a_file_server_that_fails_every_download_stops_the_run_and_a_rerun_completes(
    keys, tmp_path
):
    history = dict(messages=2400, days=1, client_secret=SECRET)
    down = EmulatorOptions(**history, chatfile_fail_rate=1.0, max_consecutive_faults=1_000_000)
    with run_emulator(down) as failing, pytest.raises(SourceError) as stopped:
        run_audit(one_hour(failing, keys, tmp_path, downloads=2, hours=6))
    attempts = sum(n for (route, _), n in failing.stats.requests.items() if route == "chatfile")
    with run_emulator(EmulatorOptions(**history)) as healthy:
        rerun = run_audit(one_hour(healthy, keys, tmp_path, downloads=2, hours=6))

    in_a_row = re.match(
        rf"(\d+) attachment downloads in a row failed through every retry \(the last: GET "
        rf"{failing.base_url}/demo-org/demo-app/chatfiles/\S+ failed after \d+ attempts \(HTTP 5",
        str(stopped.value),
    )
    assert in_a_row and int(in_a_row[1]) in (
        FAILED_DOWNLOADS_IN_A_ROW,
        FAILED_DOWNLOADS_IN_A_ROW + 1,
    )
    assert "run again once the file server answers" in str(stopped.value)
    attempts_each = run_support.source_of(failing, SECRET).max_retries + 1
    assert attempts <= (FAILED_DOWNLOADS_IN_A_ROW + 2) * attempts_each
    assert rerun.attachments > 100
    assert verify_bag(rerun.bag_path, load_public_key(keys.public_key)).problems == ()
    findings = (rerun.bag_path / "data" / "findings.jsonl").read_text()
    assert "download-failed" not in findings


def test_a_resumed_run_removes_the_downloads_a_killed_run_left_half_written(keys, tmp_path):
    """They are named by process and thread, so no later run finishes them; each can be as
    large as the largest attachment, and they used to stay until the run completed."""
    history = dict(messages=2400, days=1, client_secret=SECRET)
    with run_emulator(EmulatorOptions(**history)) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--fail-on", "none", hours=4)

        def run(crash: str | None) -> int:
            env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
            env.pop("AUDITOR_CRASH_AT", None)
            if crash:
                env["AUDITOR_CRASH_AT"] = crash
            return subprocess.run(
                [sys.executable, "-m", "auditor", *args], env=env, capture_output=True
            ).returncode

        assert run("spool.partition:1") != 0
        (store,) = (tmp_path / "archive" / layout.SPOOL_FOLDER).glob("*/attachments")
        assert any(not name.name.startswith(".") for name in store.iterdir())
        left = [store / f".download.4242-{thread}.tmp" for thread in (1, 2)]
        for partial in left:
            partial.write_bytes(b"half a file" * 100_000)

        assert run("spool.partition:1") != 0
        assert store.is_dir() and not any(partial.exists() for partial in left)
        # the run that completes needs no process of its own: only the killed ones do
        completed = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})
        assert completed.exit_code == 0, completed.output
