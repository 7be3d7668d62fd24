"""A cluster at `--scheduler` keeps its own settings: one whose worker-ttl is off never takes a
hung worker's hour away, and the run waited for it for ever. The run's own `auditor.hour-timeout`
ends it with exit 3, after a warning naming the cluster's setting. Against a real `dask scheduler`
and `dask worker` on loopback, the worker frozen with SIGSTOP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dask
import psutil
import pytest
import run_support
from distributed import Client

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.partitions import HOUR_MS, partitions_between

SECRET = "dask-external-test-secret"
DASK = str(Path(sys.executable).with_name("dask"))


emulator = run_support.emulator_fixture(SECRET, messages=240)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="dask-external-test")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _cluster(env: dict[str, str], umask: int = -1):
    """`dask scheduler` and one `dask worker` (a nanny and its worker process), started with
    `env` and `umask`; yields the address and the worker process, and kills all of them after."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    quiet = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, umask=umask)
    started = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
             "--dashboard-address", ":0"],
            **quiet,
        ),
    ]  # fmt: skip
    try:
        started.append(
            subprocess.Popen(
                [DASK, "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard"],
                **quiet,
            )
        )  # fmt: skip
        with Client(address, set_as_default=False, timeout=30) as client:
            client.wait_for_workers(1, timeout=30)
        (worker,) = [
            child
            for child in psutil.Process(started[1].pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        yield address, worker
    finally:
        for process in reversed(started):
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


@pytest.fixture
def cluster_without_worker_ttl():
    """A cluster whose worker-ttl is off: it never takes a hung worker's tasks away."""
    with _cluster({**os.environ, "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "None"}) as started:
        yield started


def _first_task(client: Client, run: subprocess.Popen) -> float:
    """The moment the scheduler gave a task of `run` to a worker (or `run` ended without)."""
    deadline = time.monotonic() + 60
    while not any(client.processing().values()) and run.poll() is None:
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(run.args, 60)
        time.sleep(0.05)
    return time.monotonic()


def test_a_worker_hung_on_a_cluster_that_never_drops_it_ends_the_run_at_the_hour_timeout(
    cluster_without_worker_ttl, emulator, keys, tmp_path
):
    address, worker = cluster_without_worker_ttl
    worker.send_signal(signal.SIGSTOP)
    args = run_support.run_args(
        emulator, keys, tmp_path, "--executor", "dask", "--scheduler", address, hours=2
    )
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, "DASK_AUDITOR__HOUR_TIMEOUT": "4s"}
    run = subprocess.Popen(
        [sys.executable, "-m", "auditor", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        # Timed from the hour's task reaching the scheduler: timed from the command's start, a
        # loaded machine spent 31 s of a 30 s bound starting Python, the auditor and Dask.
        with Client(address, set_as_default=False, timeout=30) as client:
            submitted = _first_task(client, run)
        _stdout, stderr = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the run still waited for the hung worker's hour after 60 s")
    finally:
        run.kill()
    waited = time.monotonic() - submitted

    lines = stderr.splitlines()
    assert run.returncode == 3, stderr
    assert waited < 30, "the hour timeout of 4 s, not a Dask timeout of 30 s, ended the run"
    assert "distributed.scheduler.worker-ttl (off)" in lines[0] and address in lines[0]
    assert lines[-1].startswith("auditor: error: hour 2026-11-01T00:00:00Z: not done 4 s after")
    assert "auditor.hour-timeout" in lines[-1] and len(lines) == 2


def test_a_bad_hour_timeout_is_one_line_and_exit_2(emulator, keys, tmp_path):
    """The values refused are `test_dasks_hour_timeout_refuses_what_the_option_refuses`'s."""
    value = "soon"
    args = run_support.run_args(emulator, keys, tmp_path, "--executor", "dask", hours=1)
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, "DASK_AUDITOR__HOUR_TIMEOUT": value}
    result = subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, env=env
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "auditor: error: Dask setting auditor.hour-timeout (DASK_AUDITOR__HOUR_TIMEOUT) must be a "
        f"duration from 1s to 7d such as 30m or 3600s, not {value!r}"
    ]
    assert not (tmp_path / "state.db").exists()  # refused before a run began in the state


# every value `--hour-timeout` refuses (tests/test_hour_timeout_local.py), and Dask's own words
REFUSED_BY_THE_OPTION = [
    "soon", "0", "0.5s", "8d", "30d", "-1m", "1 hour", "60 minutes", "True", "１h", "１２０",
    "1h30m", "٣s", "500ms", "1w",
]  # fmt: skip


@pytest.mark.parametrize("value", REFUSED_BY_THE_OPTION)
def test_dasks_hour_timeout_refuses_what_the_option_refuses(monkeypatch, value):
    """One parser and one range for both: `0.5s`, `30d` and `60 minutes` were taken here."""
    from auditor.errors import ConfigError
    from auditor.executors.dask import dask_hour_timeout

    monkeypatch.setenv("DASK_AUDITOR__HOUR_TIMEOUT", value)
    dask.config.refresh()
    try:
        read = dask.config.get("auditor.hour-timeout")  # as Dask reads it: "0" is the number 0
        with pytest.raises(ConfigError) as refused:
            dask_hour_timeout()
    finally:
        monkeypatch.delenv("DASK_AUDITOR__HOUR_TIMEOUT")
        dask.config.refresh()

    assert str(refused.value) == (
        "Dask setting auditor.hour-timeout (DASK_AUDITOR__HOUR_TIMEOUT) must be a duration from "
        f"1s to 7d such as 30m or 3600s, not {read!r}"
    )


@pytest.mark.parametrize(("value", "seconds"), [("90", 90.0), ("30m", 1800.0), ("1.5h", 5400.0)])
def test_dasks_hour_timeout_takes_what_the_option_takes(monkeypatch, value, seconds):
    from auditor.executors import parse_hour_timeout
    from auditor.executors.dask import dask_hour_timeout

    monkeypatch.setenv("DASK_AUDITOR__HOUR_TIMEOUT", value)
    dask.config.refresh()
    try:
        read = dask_hour_timeout()
    finally:
        monkeypatch.delenv("DASK_AUDITOR__HOUR_TIMEOUT")
        dask.config.refresh()

    assert read == parse_hour_timeout(value) == seconds


def test_the_runs_hour_timeout_wins_over_dasks_config_and_means_the_same(monkeypatch):
    """One setting for both executors: `--hour-timeout` (`hour_timeout:`), which a Dask run
    takes from Dask's config only when the run does not set it."""
    from auditor.executors import executor_options, make_executor

    monkeypatch.setenv("DASK_AUDITOR__HOUR_TIMEOUT", "1h")
    dask.config.refresh()
    try:
        given = make_executor("dask", 1, **executor_options("dask", None, "4s"))
        unset = make_executor("dask", 1, **executor_options("dask", None, None))
        local = make_executor("local", 2, **executor_options("local", None, "4s"))
    finally:
        monkeypatch.delenv("DASK_AUDITOR__HOUR_TIMEOUT")
        dask.config.refresh()

    assert (given.hour_timeout, unset.hour_timeout, local.hour_timeout) == (4.0, 3600.0, 4.0)


class _SchedulerWithTtl:
    """A client whose scheduler answers the one question the run asks it: its worker-ttl."""

    def __init__(self, ttl: float | None) -> None:
        self.ttl = ttl

    def run_on_scheduler(self, question):
        return self.ttl


@pytest.mark.parametrize(("ttl", "warned"), [(None, True), (40.0, True), (28.0, False)])
def test_the_warning_counts_the_schedulers_check_interval_and_the_nannys_grace(caplog, ttl, warned):
    """The scheduler looks for silent workers every worker-ttl and a nanny gives its worker 4 s:
    with a worker-ttl of 40 s a hung worker's hour may move only 84 s after it fell silent,
    past an hour timeout of 60 s, which the run said nothing of."""
    from auditor.executors.dask import _warn_of_a_late_worker_ttl

    with caplog.at_level("WARNING", logger="auditor.executors.dask"):
        _warn_of_a_late_worker_ttl(_SchedulerWithTtl(ttl), "tls://dask:8786", 60.0)

    assert bool(caplog.records) == warned


def test_a_worker_started_under_umask_000_writes_files_only_their_owner_may_read(
    emulator, tmp_path
):
    """`dask worker` keeps the umask it was started with, not the run's (`--file-access`): the
    spool of chat messages it wrote was 0666 under 000, readable by every user of the host."""
    from auditor.executors import make_executor
    from auditor.file_access import UMASKS

    settings = run_support.stage_settings(
        tmp_path, run_support.source_of(emulator, SECRET), fetch_attachments=True
    )
    hours = list(partitions_between(DEFAULT_START_MS, DEFAULT_START_MS + HOUR_MS))
    with _cluster(dict(os.environ), umask=0) as (address, _worker):
        executor = make_executor("dask", 1, scheduler=address)
        before = os.umask(UMASKS["owner"])  # as `auditor run` sets its own
        try:
            outcomes = [outcome for _hour, outcome in executor.run(hours, settings)]
        finally:
            os.umask(before)
    written = {
        str(path.relative_to(tmp_path)): oct(path.stat().st_mode & 0o777)
        for path in [tmp_path / "spool", *(tmp_path / "spool").rglob("*")]
    }

    assert sum(outcome.records for outcome in outcomes) > 0
    assert any(name.endswith(".jsonl") for name in written)
    assert any("attachments/" in name for name in written)
    assert {name: mode for name, mode in written.items() if int(mode, 8) & 0o077} == {}
