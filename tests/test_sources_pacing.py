"""Pacing Easemob's hour-file requests: even slots, shared across processes, within the limit."""

import dataclasses
import itertools
import logging
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import ConfigError, SourceError
from auditor.partitions import HOUR_MS
from auditor.pipeline import Progress, run_audit
from auditor.sources import pace_file
from auditor.sources.pacing import Pacer, PacingStopped, machine_slots, release_unused, stop_marker
from auditor.sources.pull import pull
from auditor.sources.settings import (
    ConnectionSettings,
    load_settings,
    make_client,
    make_source,
)
from auditor.stages import PACE_FILE

SECRET = "pacing-secret"


class FakeTime:
    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_pacer_spaces_calls_evenly_and_lets_the_first_through_at_once():
    fake = FakeTime(1000.0)
    pacer = Pacer(12, clock=fake.clock, sleep=fake.sleep)  # one every 5 s

    slots = [pacer.wait() for _ in range(3)]
    fake.now += 60  # idle for a minute: the next call owes nothing
    slots.append(pacer.wait())

    assert slots == [1000.0, 1005.0, 1010.0, 1070.0]
    assert fake.slept == [5.0, 5.0]


def _reserve(slots_file, count, results):
    pacer = Pacer(1200, slots_file)  # one every 50 ms
    results.put([pacer.wait() for _ in range(count)])


def test_processes_sharing_a_slot_file_never_get_slots_closer_than_the_interval(tmp_path):
    slots_file = tmp_path / "pace"
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_reserve, args=(slots_file, 5, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    slots = sorted(slot for _ in workers for slot in results.get(timeout=30))
    for worker in workers:
        worker.join(timeout=30)

    assert len(slots) == 15
    assert min(b - a for a, b in itertools.pairwise(slots)) >= 0.05 - 1e-6


def test_a_slot_file_cut_short_by_a_killed_writer_starts_afresh(tmp_path):
    slots_file = tmp_path / "pace"
    slots_file.write_bytes(b"1.7e+")  # a float's text cut inside its exponent
    fake = FakeTime(2000.0)

    first = Pacer(6, slots_file, clock=fake.clock, sleep=fake.sleep).wait()

    assert first == 2000.0 and fake.slept == []
    assert last_slot(slots_file) == 2000.0


def test_the_slots_a_stopped_run_gave_up_are_released_but_not_the_interval_after_the_last_used(
    tmp_path, no_hang
):
    slots_file = tmp_path / "pace"
    fake = FakeTime(3000.0)
    pacer = Pacer(12, slots_file, clock=fake.clock, sleep=lambda _: None)  # one every 5 s
    reserved = [pacer.wait() for _ in range(4)]  # four callers at once
    fake.now = 3001.0  # the last three give their slots up

    release_unused(slots_file, 12, clock=fake.clock)

    assert reserved == [3000.0, 3005.0, 3010.0, 3015.0]
    assert Pacer(12, slots_file, clock=fake.clock, sleep=fake.sleep).wait() == 3005.0  # not 3020


def last_slot(slots_file):
    return max(float(line.split()[0]) for line in slots_file.read_text().splitlines())


def paced_source(emulator):
    """The emulator's settings, not retrying a 429, paced at one hour file every 0.4 s."""
    source = run_support.source_of(emulator, SECRET)
    return dataclasses.replace(source, hour_files_per_minute=150, max_retries=0)


def test_the_emulator_refuses_hour_file_requests_beyond_its_limit():
    options = EmulatorOptions(messages=600, client_secret=SECRET, hour_file_limit=3)
    with run_emulator(options) as emulator:
        client = make_client(dataclasses.replace(paced_source(emulator), hour_files_per_minute=0))
        labels = [emulator.hour_label(DEFAULT_START_MS + n * HOUR_MS) for n in range(4)]
        for label in labels[:3]:
            assert client.hour_file_url(label)
        with pytest.raises(SourceError, match="HTTP 429 reach_limit"):
            client.hour_file_url(labels[3])


def test_a_paced_pull_stays_within_the_limit_and_gets_every_hour(tmp_path):
    # Four requests a second allowed, the client paced at one every 0.4 s: room for jitter.
    options = EmulatorOptions(
        messages=1200, client_secret=SECRET, hour_file_limit=4, hour_file_window=1.0
    )
    with run_emulator(options) as emulator:
        settings = paced_source(emulator)
        started = time.monotonic()
        summary = pull(
            make_source(settings), DEFAULT_START_MS, DEFAULT_START_MS + 8 * HOUR_MS, tmp_path
        )
        took = time.monotonic() - started
        refused = emulator.stats.requests[("hour", 429)]
        expected = emulator.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + 8 * HOUR_MS)

    assert refused == 0
    assert [hour.status for hour in summary.hours] == ["pulled"] * 8
    assert summary.records == sum(1 for _ in expected)
    assert took >= 7 * 0.4 - 0.05


def test_two_pulls_of_one_app_at_once_share_its_pace(tmp_path):
    """Each pull paced alone, together they asked twice the limit: refused (429) and stopped."""
    options = EmulatorOptions(
        messages=600, client_secret=SECRET, hour_file_limit=4, hour_file_window=1.0
    )
    window = (DEFAULT_START_MS, DEFAULT_START_MS + 4 * HOUR_MS)
    with run_emulator(options) as emulator:
        settings = paced_source(emulator)
        with ThreadPoolExecutor(2) as pool:
            pulls = [
                pool.submit(pull, make_source(settings), *window, tmp_path / f"pull{n}")
                for n in range(2)
            ]
            summaries = [future.result() for future in pulls]
        served = emulator.stats.by_route("hour")

    assert served == {200: 8}
    assert [[hour.status for hour in summary.hours] for summary in summaries] == [
        ["pulled"] * 4
    ] * 2


def test_no_pace_is_shared_through_a_folder_others_may_write(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))

    assert machine_slots("https://a1.easemob.com", "org", "app") is None
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert machine_slots("https://a1.easemob.com", "org", "app") != machine_slots(
        "https://a1.easemob.com", "org", "other-app"
    )


@pytest.mark.parametrize(
    ("base_url", "setting", "rate"),
    [
        ("https://a1.easemob.com", None, 10.0),
        ("http://127.0.0.1:8080", None, 0.0),
        ("http://localhost:8080", None, 0.0),
        ("http://[::1]:8080", None, 0.0),
        ("https://a1.easemob.com", 0, 0.0),
        ("http://127.0.0.1:8080", 30, 30.0),
    ],
)
def test_hour_files_are_paced_at_easemobs_rate_unless_the_server_is_on_this_machine(
    base_url, setting, rate
):
    settings = ConnectionSettings(
        base_url, "org", "app", "id", "secret", hour_files_per_minute=setting
    )
    assert settings.hour_file_rate == rate


def test_the_pace_is_read_from_the_config_file_and_checked(tmp_path):
    config = tmp_path / "audit.yaml"
    environ = {"EASEMOB_CLIENT_SECRET": "s"}
    base = "source: {base_url: 'https://a1.easemob.com', org: o, app: a, client_id: c, "

    config.write_text(base + "hour_files_per_minute: 5}\n")
    assert load_settings(config_file=config, environ=environ).hour_file_rate == 5.0

    config.write_text(base + "hour_files_per_minute: -1}\n")
    with pytest.raises(ConfigError, match="hour_files_per_minute must be at least 0"):
        load_settings(config_file=config, environ=environ)


def test_the_workers_of_a_run_share_one_pace(tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="test-auditor")
    options = EmulatorOptions(
        messages=1200, client_secret=SECRET, hour_file_limit=4, hour_file_window=1.0
    )
    with run_emulator(options) as emulator:
        source = paced_source(emulator)
        outcome = run_audit(
            run_support.settings_for(
                emulator,
                keys,
                tmp_path,
                SECRET,
                source=source,
                workers=2,
                until_ms=DEFAULT_START_MS + 8 * HOUR_MS,
            )
        )
        refused = emulator.stats.requests[("hour", 429)]
        asked = emulator.stats.requests[("hour", 200)]

    assert refused == 0 and asked == 8
    assert outcome.records > 0


def test_a_stopped_run_does_not_wait_for_the_hours_still_waiting_for_their_pace_slot(tmp_path):
    """At Easemob's pace an hour may wait a minute for its slot, and a stop waits for the hours
    in progress (they keep their spool): those still waiting give up at once instead, so a
    SIGTERM is answered within a container's grace period; the next run fetches them."""
    keys = generate_key_files(tmp_path / "keys", identity="test-auditor")
    stopped_at = []

    def stop_after_the_first_hour(partition, outcome):
        stopped_at.append(time.monotonic())
        raise KeyboardInterrupt

    with run_emulator(EmulatorOptions(messages=1200, client_secret=SECRET)) as emulator:
        source = dataclasses.replace(paced_source(emulator), hour_files_per_minute=12)  # 5 s
        settings = run_support.settings_for(
            emulator, keys, tmp_path, SECRET, source=source, workers=2,
            until_ms=DEFAULT_START_MS + 8 * HOUR_MS,
        )  # fmt: skip
        with pytest.raises(KeyboardInterrupt):
            run_audit(settings, Progress(partition_done=stop_after_the_first_hour))
        took = time.monotonic() - stopped_at[0]
        asked = emulator.stats.requests[("hour", 200)]
        leftover = list(tmp_path.rglob(f"{PACE_FILE}.stop"))
        (slots,) = tmp_path.rglob(PACE_FILE)  # under the run's work folder
        next_free = last_slot(slots) + 5.0 - time.time()
        # the rerun unpaced, to take seconds rather than eight slots of 5 s
        unpaced = dataclasses.replace(source, hour_files_per_minute=0)
        resumed = run_audit(dataclasses.replace(settings, source=unpaced))

    assert took < 3.0  # the next slots were 5 and 10 s after the first
    assert asked <= 2 and leftover == []
    assert next_free <= 5.0  # the slots given up are released: one interval from the stop
    assert resumed.records == sum(
        1 for _ in emulator.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + 8 * HOUR_MS)
    )


def _hold_slots(machine, callers):
    """A process whose callers each reserve a slot in the machine's file, then wait for it."""
    pacer = Pacer(120, machine=machine)  # one every 0.5 s
    threads = [threading.Thread(target=pacer.wait) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("reaped", [True, False])  # a zombie where init does not reap
def test_the_slots_of_a_killed_process_are_not_waited_for(tmp_path, reaped):
    """Before, the next process waited for the slots a killed one had reserved: 2.5 s here,
    a minute for ten workers at Easemob's pace."""
    machine = tmp_path / "machine-pace"
    holder = multiprocessing.get_context("fork").Process(target=_hold_slots, args=(machine, 6))
    holder.start()
    deadline = time.monotonic() + 10
    while not machine.exists() or len(machine.read_text().splitlines()) < 6:
        assert time.monotonic() < deadline, "the holder did not reserve its slots"
        time.sleep(0.02)
    reserved = last_slot(machine)
    os.kill(holder.pid, signal.SIGKILL)
    if reaped:
        holder.join(timeout=10)
    while not reaped and b") Z " not in Path(f"/proc/{holder.pid}/stat").read_bytes():
        assert time.monotonic() < deadline, "the holder did not die"
        time.sleep(0.02)

    started = time.time()
    slot = Pacer(120, machine=machine).wait()
    waited = time.time() - started
    holder.join(timeout=10)

    assert reserved - started > 1.5  # what it would have waited for
    assert waited < 1.0  # at most one interval (0.5 s) from a slot the killed process used
    assert slot < reserved


def test_a_live_process_keeps_the_slots_it_reserved(tmp_path):
    machine = tmp_path / "machine-pace"
    fake = FakeTime(4000.0)
    machine.write_text(f"4003.0 5.0 {os.getppid()}@{pace_file.HOST}\n4008.0 5.0 1@elsewhere\n")

    assert Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep).wait() == 4013.0


def test_a_pid_reused_by_another_process_frees_the_slot_its_old_owner_reserved(tmp_path):
    """A slot named its process by pid alone: a killed run's pid taken by any process since (a
    shell, a cron job) kept the slot live until it passed. The process is named by its pid and
    its start time, which the new one does not share."""
    machine = tmp_path / "machine-pace"
    fake = FakeTime(4000.0)
    machine.write_text(f"4003.0 5.0 {os.getppid()}+1@{pace_file.HOST}\n")

    assert Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep).wait() == 4000.0


def test_a_process_named_by_its_pid_and_start_time_keeps_its_slots(tmp_path):
    machine = tmp_path / "machine-pace"
    fake = FakeTime(4000.0)
    owner = pace_file.this_process()
    machine.write_text(f"4003.0 5.0 {owner}\n")

    assert re.fullmatch(rf"{os.getpid()}\+[0-9]+@{re.escape(pace_file.HOST)}", owner)
    assert Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep).wait() == 4008.0


def test_a_runtime_folder_that_does_not_exist_is_said_once_as_a_warning(
    tmp_path, monkeypatch, caplog
):
    """README says a pace file that cannot be made leaves each process to its own pace "with a
    warning"; a `$XDG_RUNTIME_DIR` naming no folder (a `su` session, a container) said so only
    at debug level, unseen without -vv."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "gone"))

    with caplog.at_level("DEBUG", logger="auditor.sources.pacing"):
        found = [machine_slots("https://a1.easemob.com", "org", app) for app in ("a", "b", "a")]

    assert found == [None, None, None]
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(said) == 1 and said[0][0] == "WARNING", said
    assert str(tmp_path / "gone") in said[0][1]


def test_a_run_says_once_that_its_workers_cannot_share_the_machines_pace(tmp_path):
    """Each worker process finds the machine's slot file for itself: with no runtime folder,
    `--workers 2` said the same warning twice."""
    keys = generate_key_files(tmp_path / "keys", identity="test-auditor")
    with run_emulator(EmulatorOptions(messages=120, client_secret=SECRET)) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--workers", "2", hours=2)
        config = tmp_path / "auditor.yaml"
        config.write_text(config.read_text() + "  hour_files_per_minute: 6000\n")
        env = {
            **os.environ,
            "EASEMOB_CLIENT_SECRET": SECRET,
            "XDG_RUNTIME_DIR": str(tmp_path / "gone"),
        }
        result = subprocess.run(
            [sys.executable, "-m", "auditor", *args, "--fail-on", "none"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "pace is not shared" in line]
    assert len(said) == 1, said
    assert str(tmp_path / "gone") in said[0]


def test_processes_set_to_different_paces_all_keep_the_slowest(tmp_path):
    """A faster process neither spends a slower one's share nor lets it exceed its own: every
    two slots are the slowest interval apart until a minute after that one's last slot."""
    machine = tmp_path / "machine-pace"
    fake = FakeTime(5000.0)
    fast = Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep)  # one every 5 s
    slow = Pacer(6, machine=machine, clock=fake.clock, sleep=fake.sleep)  # one every 10 s

    slots = [fast.wait(), slow.wait(), fast.wait(), fast.wait()]
    fake.now += 60  # a minute after the slow one's last slot
    slots += [fast.wait(), fast.wait()]

    assert slots == [5000.0, 5010.0, 5020.0, 5030.0, 5090.0, 5095.0]


def test_a_slot_left_far_ahead_by_callers_that_gave_up_is_still_kept(tmp_path):
    """Reserved behind callers who since gave up, a slot is further ahead than those now waiting
    could have pushed it, yet as real: before, it was taken for damage and given again."""
    machine = tmp_path / "machine-pace"
    owner = pace_file.this_process()
    machine.write_text(f"1018.0 5.0 {owner} 1000.0\n1033.0 5.0 {owner} 1010.0\n")
    fake = FakeTime(1019.2)
    pacer = Pacer(12, machine=machine, clock=fake.clock, sleep=lambda _: None)

    assert [pacer.wait() for _ in range(3)] == [1023.0, 1028.0, 1038.0]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        (b"9e15", 6000.0),  # before, a wait of 285 million years
        (b"\xff\x00 garbage\nnan 5.0\n9e15 5.0\n1e300 1e300 x\n6000.0 5.0 7@", 6005.0),
        (b"6000.0 5.0\n9e15 6000.0\n", 6005.0),  # not paced at the damaged line's interval
    ],
)
def test_a_damaged_slot_file_neither_stops_nor_stalls_a_pull(tmp_path, text, first):
    machine = tmp_path / "machine-pace"
    machine.write_bytes(text)
    fake = FakeTime(6000.0)

    slot = Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep).wait()

    assert slot == first  # an interval after a slot readable; one far ahead ignored


class ClockSetBack(FakeTime):
    """A wall clock set back an hour during the first sleep."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if len(self.slept) == 1:
            self.now -= 3600


def test_a_clock_set_back_does_not_lengthen_the_wait(tmp_path):
    machine = tmp_path / "machine-pace"
    fake = ClockSetBack(7000.0)
    pacer = Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep)
    pacer.wait()
    pacer.wait()  # its slot 5 s ahead; an hour is taken from the clock while it waits

    later = pacer.wait()  # the slots reserved now lie an hour ahead of the clock

    assert sum(fake.slept) <= 3 * 5.0
    assert later <= fake.now + 2 * 5.0


def test_a_slot_file_of_another_user_is_not_used_and_says_so(tmp_path, caplog):
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")
    machine = tmp_path / "machine-pace"
    machine.write_text("9000.0 5.0\n")
    os.chown(machine, 65534, 65534)
    fake = FakeTime(8000.0)
    pacer = Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep)

    slots = [pacer.wait(), pacer.wait()]

    assert slots == [8000.0, 8005.0]
    assert machine.read_text() == "9000.0 5.0\n"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "not a file of this user's" in warnings[0]


def test_a_fifo_in_place_of_the_slot_file_does_not_block(tmp_path, no_hang, caplog):
    machine = tmp_path / "machine-pace"
    os.mkfifo(machine, 0o600)
    fake = FakeTime(9000.0)

    slot = Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep).wait()

    assert slot == 9000.0
    assert "not a file of this user's" in caplog.text


def _pace_as_nobody(runtime, results):
    os.setgid(65534)
    os.setuid(65534)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    caught = []
    logging.getLogger("auditor.sources.pacing").addHandler(CaughtWarnings(caught))
    machine = machine_slots("https://a1.easemob.com", "org", "app")
    pacer = Pacer(6000, machine=machine)
    started = time.monotonic()
    [pacer.wait() for _ in range(3)]
    results.put((machine is not None, time.monotonic() - started, caught))


class CaughtWarnings(logging.Handler):
    def __init__(self, caught):
        super().__init__(logging.WARNING)
        self.caught = caught

    def emit(self, record):
        self.caught.append(record.getMessage())


def test_a_runtime_folder_the_slot_file_cannot_be_made_in_keeps_the_pace_per_process(tmp_path):
    if os.getuid() != 0:
        pytest.skip("root makes the process of another user that cannot write its folder")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    with tempfile.TemporaryDirectory() as top:  # pytest's own folder is root's alone
        os.chmod(top, 0o755)
        runtime = Path(top) / "runtime"
        runtime.mkdir(mode=0o500)
        os.chown(runtime, 65534, 65534)
        nobody = context.Process(target=_pace_as_nobody, args=(runtime, results))
        nobody.start()
        shared, took, warnings = results.get(timeout=30)
        nobody.join(timeout=10)

    assert shared and nobody.exitcode == 0
    assert 0.02 - 1e-3 <= took < 1.0  # still paced, one every 10 ms, by the process alone
    assert len(warnings) == 1 and "Permission denied" in warnings[0]


def test_a_caller_that_gives_up_frees_its_slot_in_the_machines_file_at_once(tmp_path):
    """Before, a live process's slot given up (a Dask worker of a stopped run) was waited for by
    every other process of the app on the machine."""
    slots, machine = tmp_path / "run-pace", tmp_path / "machine-pace"
    fake = FakeTime(10000.0)

    def stopped_while_asleep(seconds):
        fake.sleep(seconds)
        stop_marker(slots).touch()

    pacer = Pacer(12, slots, machine=machine, clock=fake.clock, sleep=stopped_while_asleep)
    pacer.wait()
    with pytest.raises(PacingStopped):
        pacer.wait()  # its slot was 10005
    other = Pacer(12, machine=machine, clock=fake.clock, sleep=fake.sleep)

    assert other.wait() == 10005.0
