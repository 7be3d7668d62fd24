"""A local worker that hangs (here frozen by SIGSTOP half way through an hour) held the whole run
for ever. `--hour-timeout` bounds the wait for each hour in order: past it the workers are
killed, none left behind, and the run stops with exit 3, keeping the hours finished, so that the
next run resumes to the bag of a run that never hung."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import run_support
from click.testing import CliRunner
from group_run import run_in_own_group
from run_support import payload

from auditor.archive.keys import generate_key_files
from auditor.cli import main

SECRET = "hour-timeout-local-secret"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork pool")

# The coordinator, whose first worker to reach a record stops itself with SIGSTOP, as a worker
# frozen by a debugger, a stuck NFS mount or `kill -STOP` would be (the file lets only one do it).
ONE_WORKER_STOPS = """
import os, signal
from auditor import crashpoints
from auditor.cli import main

def reached(name):
    if name != "spool.record":
        return
    try:
        os.close(os.open(os.environ["STOP_ONCE"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGSTOP)

crashpoints.reached = reached
main(prog_name="auditor")
"""


emulator = run_support.emulator_fixture(SECRET, messages=300)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="hour-timeout-test")


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, **extra}
    env.pop("EASEMOB_CLIENT_SECRET_FILE", None)
    env.pop("AUDITOR_CRASH_AT", None)
    return env


def test_a_stopped_worker_ends_the_run_at_the_hour_timeout_killed_and_the_rerun_resumes(
    emulator, keys, tmp_path
):
    args = run_support.run_args(
        emulator, keys, tmp_path / "hung", "--workers", "2", "--fail-on", "none", "--quiet", hours=4
    )
    run = run_in_own_group(
        [sys.executable, "-c", ONE_WORKER_STOPS, *args, "--hour-timeout", "3s"],
        environment(STOP_ONCE=str(tmp_path / "stopped-once")),
    )
    if run.hung:
        pytest.fail("the run still waited for the stopped worker's hour after 60 s")

    assert (tmp_path / "stopped-once").exists()  # a worker did stop
    assert run.returncode == 3, run.stderr
    assert run.seconds < 30
    (line,) = run.stderr.splitlines()
    assert line.startswith("auditor: error: hour 2026-11-01T0") and "not done 3 s after" in line
    assert "--hour-timeout" in line and "2 worker(s) were killed" in line
    assert run.left == []

    # the rerun and the run that never hung, in process: only the stopped run is about processes
    resumed = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})
    clean_args = run_support.run_args(
        emulator, keys, tmp_path / "clean", "--workers", "2", "--fail-on", "none", hours=4
    )
    clean = CliRunner().invoke(main, clean_args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert resumed.exit_code == clean.exit_code == 0, resumed.output
    (bag,) = (tmp_path / "hung" / "archive").glob("run-*")
    (clean_bag,) = (tmp_path / "clean" / "archive").glob("run-*")
    assert payload(bag) == payload(clean_bag)


@pytest.mark.parametrize(
    ("value", "seconds"), [("90", 90.0), ("30m", 1800.0), ("1.5h", 5400.0), (" 2 s ", 2.0)]
)
def test_the_hour_timeout_is_a_duration(value, seconds):
    from auditor.executors import parse_hour_timeout

    assert parse_hour_timeout(value) == seconds


@pytest.mark.parametrize("value", ["soon", "0", "0.5s", "8d", "-1m", "1 hour", "True"])
def test_a_bad_hour_timeout_is_one_line_and_exit_2_before_a_run_begins(
    emulator, keys, tmp_path, value
):
    """In process: the refusal is the claim, not the process, whose start and imports (~0.8 s
    of CPU) were nearly all of each case; the config-file case below runs `python -m auditor`."""
    args = run_support.run_args(emulator, keys, tmp_path, "--hour-timeout", value, hours=1)
    result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "auditor: error: --hour-timeout (hour_timeout: in the config) must be a duration from "
        f"1s to 7d such as 30m or 3600s, not {value!r}"
    ]
    assert not (tmp_path / "state.db").exists()


def test_the_config_file_sets_it_for_a_run(emulator, keys, tmp_path):
    args = run_support.run_args(emulator, keys, tmp_path, hours=1)
    config = tmp_path / "auditor.yaml"
    config.write_text(config.read_text() + "run:\n  hour_timeout: soon\n")
    result = subprocess.run(
        [sys.executable, "-m", "auditor", *args], capture_output=True, text=True, env=environment()
    )

    assert result.returncode == 2
    assert "--hour-timeout (hour_timeout: in the config)" in result.stderr
    assert "'soon'" in result.stderr


@pytest.fixture
def silent_server():
    """A loopback server that takes connections and never answers: a read stuck past the time
    any HTTP timeout below its `--timeout` would allow."""
    listener = socket.create_server(("127.0.0.1", 0))
    taken: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                taken.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in taken:
            connection.close()
        listener.close()


def test_an_hour_processed_in_the_runs_own_process_is_given_up_at_the_hour_timeout(
    silent_server, emulator, keys, tmp_path
):
    """`--workers 1` (and any window of one hour) runs the hour in the run's own process."""
    args = run_support.run_args(emulator, keys, tmp_path, "--fail-on", "none", hours=2)
    args[args.index("--base-url") + 1] = silent_server
    began = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "auditor", *args, "--timeout", "600", "--hour-timeout", "2"],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the run still waited on the silent server after 60 s")

    assert result.returncode == 3, result.stderr
    assert time.monotonic() - began < 30
    assert result.stderr.splitlines() == [
        "auditor: error: hour 2026-11-01T00:00:00Z: not done 2 s after the run began it "
        "(--hour-timeout): it hangs in a read, a lock or a download, and was given up; the "
        "hours finished so far are kept: run again to resume"
    ]


@pytest.mark.parametrize("value", ["１h", "１２０", "1h30m", "٣s"])
def test_an_hour_timeout_is_ascii_digits_and_one_unit(value):
    """Unicode digits passed (`１h` was an hour, `٣s` three seconds) while `keep_for:` refuses
    them; a compound duration neither it nor Dask's parse_timedelta takes is refused too."""
    from auditor.errors import ConfigError
    from auditor.executors import parse_hour_timeout

    with pytest.raises(ConfigError, match="must be a duration from 1s to 7d"):
        parse_hour_timeout(value)
