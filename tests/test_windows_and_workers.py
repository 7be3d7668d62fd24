"""Windows no run could mean, workers that run a bounded way ahead, errors that cross from a
worker to the coordinator, and Ctrl-C pressed twice."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pickle
import pkgutil
import signal
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

import pytest
import run_support
from click.testing import CliRunner

import auditor
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import EXIT_SOURCE, AuditorError, ConfigError
from auditor.executors import local
from auditor.executors.local import AHEAD_PER_WORKER, LocalExecutor
from auditor.partitions import (
    EARLIEST_WINDOW_MS,
    HOUR_MS,
    LATEST_WINDOW_MS,
    MAX_WINDOW_MS,
    Partition,
    check_window,
    parse_instant,
)
from auditor.sources.interface import HourExpired, PartitionNotReady

SECRET = "windows-test-secret"
NOV_1 = parse_instant("2026-11-01")


emulator = run_support.emulator_fixture(SECRET, messages=600)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


def invoke(args: list[str]):
    return CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})


# -- window bounds (#7) ------------------------------------------------------------------------


def test_the_hour_of_year_1_is_named_with_a_four_digit_year():
    assert Partition(parse_instant("0001-01-01T00:00Z")).label() == "0001010100"
    assert Partition(parse_instant("0999-03-04T05:00Z")).label() == "0999030405"


def test_every_hour_of_the_widest_window_has_a_label_in_any_hour_zone():
    for zone in ("-12", "UTC", "+14"):
        tz = auditor.partitions.parse_hour_timezone(zone)
        assert len(Partition(EARLIEST_WINDOW_MS).label(tz)) == 10
        assert len(Partition(LATEST_WINDOW_MS).label(tz)) == 10


def test_ten_years_is_the_longest_window_one_run_audits():
    check_window(NOV_1 - MAX_WINDOW_MS, NOV_1)
    check_window(EARLIEST_WINDOW_MS, EARLIEST_WINDOW_MS + HOUR_MS)
    check_window(LATEST_WINDOW_MS - HOUR_MS, LATEST_WINDOW_MS)
    with pytest.raises(ConfigError, match="split the window into runs of at most ten years"):
        check_window(NOV_1 - MAX_WINDOW_MS - HOUR_MS, NOV_1)


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (
            "9999-12-30T22:00Z",
            "9999-12-31T23:59:59.999999Z",
            "auditor: error: --until must lie between 1970-01-01T00:00Z and 9999-12-31T00:00Z, "
            "where every hour of history has a YYYYMMDDHH name\n",
        ),
        (
            "0001-01-01T00:00Z",
            "0001-01-01T03:00Z",
            "auditor: error: --since must lie between 1970-01-01T00:00Z and 9999-12-31T00:00Z, "
            "where every hour of history has a YYYYMMDDHH name\n",
        ),
        (
            "1970-01-01",
            "2026-11-01",
            "auditor: error: the window 1970-01-01T00:00:00Z .. 2026-11-01T00:00:00Z holds "
            "498,192 hours, more than the 87,672 (ten years) one run may audit: check the "
            "years, or split the window into runs of at most ten years each\n",
        ),
    ],
)
def test_run_and_pull_refuse_a_window_no_run_could_mean_in_one_line(
    emulator, keys, tmp_path, since, until, expected
):
    window = ["--since", since, "--until", until]
    run = invoke([*run_support.run_args(emulator, keys, tmp_path), *window, "--workers", "2"])
    pull = invoke(["pull", "--from", str(tmp_path), *window, "--out", str(tmp_path / "pulled")])
    for result in (run, pull):
        assert (result.exit_code, result.stderr) == (2, expected)
    assert not (tmp_path / "state.db").exists() and not (tmp_path / "pulled").exists()


def test_an_incremental_run_checks_its_instants_at_once_and_its_span_once_it_is_known(
    emulator, keys, tmp_path
):
    """Its window starts where the last run ended, known only from the state."""
    args = run_support.run_args(emulator, keys, tmp_path, "--incremental")
    early = invoke([*args, "--since", "1969-12-31T23:00Z"])
    assert early.exit_code == 2 and "--since must lie between" in early.stderr
    assert not (tmp_path / "state.db").exists()
    decades = invoke([*args, "--since", "2010-01-01", "--until", "2026-11-01T02:00Z"])
    assert decades.exit_code == 2
    assert decades.stderr.startswith("auditor: error: the window 2010-01-01T00:00:00Z .. ")
    assert "split the window into runs of at most ten years each" in decades.stderr


def test_an_incremental_window_off_the_hour_is_widened_to_whole_hours_as_a_fixed_one_is(
    emulator, keys, tmp_path
):
    args = run_support.run_args(emulator, keys, tmp_path, "--incremental", "--json")
    args += ["--since", "2026-11-01T00:30Z", "--until", "2026-11-01T02:10Z", "--fail-on", "none"]
    result = invoke(args)

    assert result.exit_code == 0, result.stderr
    window = json.loads(result.stdout)["window"]
    assert (window["since"], window["until"]) == ("2026-11-01T00:00:00Z", "2026-11-01T03:00:00Z")


# -- a bounded number of partitions in flight (#7) ---------------------------------------------


class CountingPool(ThreadPoolExecutor):
    """A pool of threads standing in for the processes, counting what is handed to it."""

    instances: ClassVar[list[CountingPool]] = []

    def __init__(self, max_workers, mp_context=None, initializer=None, initargs=()):
        super().__init__(max_workers)
        self.submitted = 0
        CountingPool.instances.append(self)

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def _slow_for_some(partition: Partition) -> str:
    time.sleep(0.002 if partition.start_ms // HOUR_MS % 3 == 0 else 0)
    return f"outcome of {partition.start_ms}"


def spooling_in(folder):
    """All the fake pool's coordinator reads of a worker's settings: where the spool is, and
    the hour-file pace (none)."""
    return types.SimpleNamespace(
        spool_dir=str(folder), source=types.SimpleNamespace(hour_file_rate=0.0)
    )


def test_workers_run_a_bounded_number_of_partitions_ahead_and_outcomes_keep_their_order(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(local, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(local, "_work", _slow_for_some)
    CountingPool.instances.clear()
    partitions = [Partition(NOV_1 + n * HOUR_MS) for n in range(5_000)]
    outcomes = LocalExecutor(workers=3).run(partitions, settings=spooling_in(tmp_path))

    first = next(outcomes)
    assert CountingPool.instances[0].submitted <= AHEAD_PER_WORKER * 3
    rest = list(outcomes)
    assert [first, *rest] == [(p, f"outcome of {p.start_ms}") for p in partitions]


def test_a_failed_partition_stops_the_run_at_its_turn_and_later_ones_are_not_started(
    monkeypatch, tmp_path
):
    def fail_on_the_tenth(partition: Partition) -> str:
        if partition.start_ms == NOV_1 + 9 * HOUR_MS:
            raise PartitionNotReady("2026110109", "expired or unstored")
        return "ok"

    monkeypatch.setattr(local, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(local, "_work", fail_on_the_tenth)
    CountingPool.instances.clear()
    partitions = [Partition(NOV_1 + n * HOUR_MS) for n in range(1_000)]
    done = []
    with pytest.raises(PartitionNotReady, match="hour 2026110109 is not available"):
        for partition, _outcome in LocalExecutor(workers=2).run(partitions, spooling_in(tmp_path)):
            done.append(partition)
    assert done == partitions[:9]
    assert CountingPool.instances[0].submitted <= 9 + AHEAD_PER_WORKER * 2


# -- errors a worker raises survive the trip to the coordinator (#8) --------------------------


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found.union(*(_all_subclasses(sub) for sub in found))


def _import_every_module() -> None:
    """All of auditor but the entry point (which runs the CLI) and Dask (an optional extra)."""
    for module in pkgutil.walk_packages(auditor.__path__, "auditor."):
        if module.name not in ("auditor.__main__", "auditor.executors.dask"):
            importlib.import_module(module.name)


def test_every_auditor_error_survives_pickling_with_its_message_attributes_and_exit_code():
    _import_every_module()
    errors = [
        cls("something went wrong")
        for cls in _all_subclasses(AuditorError) | {AuditorError}
        if cls not in (PartitionNotReady, HourExpired)
    ]
    errors.append(HourExpired("2026110101", "maybe expired or unstored", 3, NOV_1 + 4 * 86_400_000))
    errors.append(PartitionNotReady("2026110102", "maybe expired or unstored"))
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error) and copy.exit_code == error.exit_code
        assert vars(copy) == vars(error)
    assert pickle.loads(pickle.dumps(errors[-1])).label == "2026110102"


def test_the_other_errors_raised_in_sources_and_archives_survive_pickling():
    from auditor.archive.merkle import InvalidInclusionProofError
    from auditor.archive.sshsig import SshSigError
    from auditor.archive.untrusted import UnsafeFile
    from auditor.jsonl import RepeatedKey
    from auditor.sources.easemob import UrlExpired, _Retry
    from auditor.sources.hourfiles import _Damaged

    for cls in (InvalidInclusionProofError, SshSigError, UnsafeFile, RepeatedKey):
        assert str(pickle.loads(pickle.dumps(cls("why")))) == "why"
    for cls in (UrlExpired, _Retry, _Damaged):
        assert str(pickle.loads(pickle.dumps(cls("why")))) == "why"


@pytest.fixture
def early_emulator():
    """An emulator whose clock stands a day after 2026-10-31: the source has no files for that
    day, and its hours are too young to be taken for expired ones, so they are not ready."""
    options = EmulatorOptions(messages=600, days=1, client_secret=SECRET, clock_start=NOV_1 / 1000)
    with run_emulator(options) as running:
        yield running


def test_with_two_workers_an_hour_not_ready_is_reported_as_such_with_exit_3(
    early_emulator, keys, tmp_path
):
    window = ["--since", "2026-10-31T00:00Z", "--until", "2026-10-31T02:00Z"]
    args = [*run_support.run_args(early_emulator, keys, tmp_path), *window, "--workers", "2"]
    result = invoke(args)
    assert result.exit_code == EXIT_SOURCE
    assert result.stderr.startswith("auditor: error: hour 2026103100 is not available yet or ")
    assert "worker process died" not in result.stderr and result.stderr.count("\n") == 1


# -- Ctrl-C twice (#11) ------------------------------------------------------------------------


# How late the source answers once the first hour is done: the hours running then outlast any
# stop that does not wait for them by far.
HOURS_LEFT_SECONDS = 20.0


@pytest.fixture
def slow_emulator():
    """Every answer 1 s late, until the test makes them later: a first hour is done in seconds,
    and the hours after it are still running when the test stops the run."""
    options = EmulatorOptions(
        messages=600, days=1, client_secret=SECRET, slow_rate=1.0, slow_seconds=1.0
    )
    with run_emulator(options) as running:
        yield running


def _start(args: list[str]) -> tuple[subprocess.Popen, threading.Event, list[str]]:
    """The command in a subprocess, with an event set at its first finished hour."""
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "auditor", *args], env=env, stderr=subprocess.PIPE, text=True
    )
    first_hour, lines = threading.Event(), []

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if line.startswith("hour "):
                first_hour.set()

    threading.Thread(target=read, daemon=True).start()
    return process, first_hour, lines


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_ctrl_c_twice_while_workers_finish_ends_quietly_and_a_rerun_completes(
    slow_emulator, keys, tmp_path
):
    args = run_support.run_args(slow_emulator, keys, tmp_path, "--workers", "2", hours=8)
    process, first_hour, lines = _start([*args, "--fail-on", "none"])
    try:
        assert first_hour.wait(60), "".join(lines)
        slow_emulator.options = dataclasses.replace(
            slow_emulator.options, slow_seconds=HOURS_LEFT_SECONDS
        )
        started = slow_emulator.stats.started
        # an hour is running that needs an answer from the slower source: the first hour's
        # neighbour may end just after it, and the run submits its next hours only as others end
        assert wait_until(lambda: slow_emulator.stats.started > started, 60)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert process.poll() is None, "the first Ctrl-C should wait for the running hours"
        process.send_signal(signal.SIGINT)
        assert process.wait(HOURS_LEFT_SECONDS) == 130
        # A wall-clock bound on the stop failed on a loaded machine (2.13 s against 2 s): the
        # source's answers to the killed workers, still under way, show it did not wait for them.
        assert slow_emulator.stats.in_flight() > 0, "the second Ctrl-C should not wait for them"
    finally:
        process.kill()
    time.sleep(0.1)
    stderr = "".join(lines)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.endswith("auditor: interrupted\n"), stderr

    slow_emulator.options = dataclasses.replace(slow_emulator.options, slow_seconds=0.0)
    rerun = invoke([*args, "--fail-on", "none", "--quiet"])
    assert rerun.exit_code == 0, rerun.output
    bags = [p for p in (tmp_path / "archive").iterdir() if not p.name.startswith(".")]
    verify = invoke(["verify", str(bags[0]), "--pubkey", str(keys.public_key)])
    assert len(bags) == 1 and verify.exit_code == 0, verify.output
