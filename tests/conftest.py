"""Stops the run when a module compiled by setup.py is older than its source (the compiled
module would be imported instead of the edited file, and the tests would test old code), and
gives tests of files that may block (FIFOs) a `no_hang` fixture, tests of a full disk a
`full_disk` one and each test an hour-file pace of its own; bag_fixtures.py holds the keys and
the bag that several archive tests share."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from compiled_support import stale_modules

pytest_plugins = ["bag_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker (`make test` runs two) ignores SIGINT, and a program started with SIGINT
    ignored keeps ignoring it: Python then installs no KeyboardInterrupt, so the runs the
    Ctrl-C tests start would never see their Ctrl-C. A handler of the worker's own is reset to
    the default in the programs it starts."""
    if hasattr(config, "workerinput"):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = stale_modules()
    if stale:
        pytest.exit(
            f"{', '.join(stale)} changed since it was compiled; rebuild with `make test` "
            "(or `.venv/bin/pip install -e .`) before running the tests",
            returncode=2,
        )


@pytest.fixture(autouse=True)
def _pace_of_this_test_alone(monkeypatch, tmp_path_factory):
    """The machine's hour-file slot file (`pacing.machine_slots`) in a folder of the test's own:
    a later test whose emulator was given the same port would wait for an earlier one's slots."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))


@pytest.fixture
def no_hang(request):
    """A blocking read (a FIFO waiting for a writer) fails the test after the module's
    `HANG_SECONDS` (10 unless it says) instead of blocking the whole suite."""

    def _hung(_signum, _frame):
        raise TimeoutError(f"hung for {seconds} s: a blocking open or read")

    seconds = getattr(request.module, "HANG_SECONDS", 10)
    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(seconds)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs with about 8 KiB left; skipped where mounting needs rights the tests lack."""
    mount = tmp_path / "full"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        os.truncate(filler, max(filler.stat().st_size - 8192, 0))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
