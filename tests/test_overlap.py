"""The coordinator archives each hour while the workers go on with later ones, and dies safely."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import run_support
from run_support import payload

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import InputError
from auditor.partitions import HOUR_MS, Partition
from auditor.pipeline import Progress, run_audit
from auditor.stages import checkpoint_path, spool_paths
from auditor.state import BAG_FOLDER_LOCK

SECRET = "overlap-test-secret"
HOURS = 8


@pytest.fixture(scope="module")
def emulator():
    # Every answer is slow, so workers are still busy when a test kills the coordinator after
    # the first hours are in (attachments are skipped: their downloads would be slow too).
    options = EmulatorOptions(
        messages=1200,
        days=1,
        client_secret=SECRET,
        slow_rate=1.0,
        slow_seconds=0.2,
        max_consecutive_faults=1_000_000,
    )
    with run_emulator(options) as running:
        yield running


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="overlap-test")


def settings_for(emulator, keys, folder: Path, **overrides):
    overrides.setdefault("until_ms", DEFAULT_START_MS + HOURS * HOUR_MS)
    overrides.setdefault("fail_on", "none")
    overrides.setdefault("workers", 2)
    overrides.setdefault("attachments", "skip")
    return run_support.settings_for(emulator, keys, folder, SECRET, **overrides)


@pytest.fixture(scope="module")
def reference_bag(emulator, keys, tmp_path_factory) -> Path:
    return run_audit(settings_for(emulator, keys, tmp_path_factory.mktemp("reference"))).bag_path


def hour_labels() -> list[str]:
    return [Partition(DEFAULT_START_MS + hour * HOUR_MS).label() for hour in range(HOURS)]


def test_each_hour_is_in_the_bag_before_the_next_one_is_reported_spooled(emulator, keys, tmp_path):
    archive = tmp_path / "archive"
    events: list[tuple[str, ...]] = []

    def partition_done(partition, outcome):
        archived = sorted(path.stem for path in archive.glob(".*.partial/data/records/*.jsonl"))
        events.append(("spooled", partition.label(), *archived))

    run_audit(
        settings_for(emulator, keys, tmp_path),
        Progress(partition_done=partition_done, phase=lambda name: events.append((name,))),
    )

    labels = hour_labels()
    expected = [("spooled", label, *labels[:hour]) for hour, label in enumerate(labels)]
    assert events == [*expected, ("archive",)]


def test_a_pool_starts_no_more_workers_than_the_window_has_hours(emulator, keys, tmp_path):
    """A fork pool starts all its workers at once, each building its stages (~100 MB): sized by
    `--workers` alone, a short window with many workers would fork them all for nothing."""
    started: list[int] = []

    def partition_done(partition, outcome):
        started.append(len(multiprocessing.active_children()))

    outcome = run_audit(
        settings_for(emulator, keys, tmp_path, workers=64, until_ms=DEFAULT_START_MS + 3 * HOUR_MS),
        Progress(partition_done=partition_done),
    )

    assert started[0] == 3
    assert outcome.records > 0


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that may never reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cli_args(emulator, keys, folder: Path) -> list[str]:
    run = run_support.run_args(
        emulator,
        keys,
        folder,
        "--workers", "2",
        "--attachments", "skip",
        "--fail-on", "none",
        "--quiet",
        hours=HOURS,
    )  # fmt: skip
    return [sys.executable, "-m", "auditor", *run]


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, **extra}
    if "AUDITOR_CRASH_AT" not in extra:
        env.pop("AUDITOR_CRASH_AT", None)
    return env


def published(archive: Path) -> list[Path]:
    return [path for path in archive.iterdir() if not path.name.startswith(".")]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_the_coordinator_takes_its_busy_workers_with_it_and_a_rerun_gives_the_bag(
    emulator, keys, reference_bag, tmp_path
):
    args = cli_args(emulator, keys, tmp_path)
    first_hour = checkpoint_path(tmp_path / "archive" / ".work", Partition(DEFAULT_START_MS))
    coordinator = subprocess.Popen(args, env=environment(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any((tmp_path / "archive" / ".work").glob(f"run-*/{first_hour.name}")):
        assert coordinator.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    workers = children_of(coordinator.pid)
    busy = {pid for pid in workers if alive(pid)}

    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {pid for pid in workers if alive(pid)}
    for pid in left:  # orphans would hang on forever: never leave them behind
        os.kill(pid, signal.SIGKILL)
    rerun = subprocess.run(args, env=environment(), capture_output=True, timeout=120)

    assert len(busy) == 2 and coordinator.returncode == -signal.SIGKILL
    assert left == set()
    assert rerun.returncode == 0, rerun.stderr.decode()
    [bag] = published(tmp_path / "archive")
    assert payload(bag) == payload(reference_bag)


def test_a_worker_dying_mid_run_is_exit_3_in_one_line_and_nothing_is_signed(
    emulator, keys, reference_bag, tmp_path
):
    args = cli_args(emulator, keys, tmp_path)
    died = subprocess.run(
        args, env=environment(AUDITOR_CRASH_AT="spool.record:80"), capture_output=True, timeout=120
    )
    archive = tmp_path / "archive"
    left = sorted(
        path.name for path in archive.iterdir() if path.name not in (".work", BAG_FOLDER_LOCK)
    )
    rerun = subprocess.run(args, env=environment(), capture_output=True, timeout=120)

    assert died.returncode == 3
    assert died.stderr.decode().startswith("auditor: error: a worker process died")
    assert died.stderr.decode().count("\n") == 1
    assert left == []
    assert rerun.returncode == 0, rerun.stderr.decode()
    [bag] = published(archive)
    assert payload(bag) == payload(reference_bag)


def test_a_spool_rewritten_after_its_worker_finished_is_never_signed(
    emulator, keys, reference_bag, tmp_path
):
    settings = settings_for(emulator, keys, tmp_path)

    def rewrite_the_third_hour(partition, outcome):
        if partition.start_ms == DEFAULT_START_MS + 2 * HOUR_MS:
            spool = next((tmp_path / "archive" / ".work").glob("run-*"))
            records = spool_paths(spool, partition, outcome.attempt)["records"]
            records.write_bytes(records.read_bytes().replace(b'"txt"', b'"TXT"', 1))

    with pytest.raises(InputError, match=r"the spool of hour 2026110102 changed after its worker"):
        run_audit(settings, Progress(partition_done=rewrite_the_third_hour))
    left = sorted(
        path.name
        for path in (tmp_path / "archive").iterdir()
        if path.name not in (".work", BAG_FOLDER_LOCK)
    )
    rerun = run_audit(settings)

    assert left == []
    assert payload(rerun.bag_path) == payload(reference_bag)
