"""Stops the run when a module compiled by setup.py is older than its source (the compiled
module would be imported instead of the edited file, and the tests would test old code), and
gives tests of files that may block (FIFOs) a `no_hang` fixture."""

from __future__ import annotations

import signal

import pytest
from compiled_support import stale_modules


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = stale_modules()
    if stale:
        pytest.exit(
            f"{', '.join(stale)} changed since it was compiled; rebuild with `make test` "
            "(or `.venv/bin/pip install -e .`) before running the tests",
            returncode=2,
        )


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
