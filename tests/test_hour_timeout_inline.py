"""`deadline.interrupted_after`: what bounds an hour processed in the run's own process, where
there is no worker to kill. A wait the hour is stuck in (a sleep, a lock no one releases) ends
in `Overdue` at the limit; a block done in time is left alone, and another SIGALRM handler (a
test's own alarm) still gets the signals it did not send."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from auditor.executors.deadline import Overdue, interrupted_after

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")


def test_a_sleep_past_the_limit_is_interrupted_at_the_limit():
    began = time.monotonic()
    with pytest.raises(Overdue), interrupted_after(0.3):
        time.sleep(30)

    assert 0.3 <= time.monotonic() - began < 5


def test_a_lock_no_one_releases_is_interrupted():
    held = threading.Lock()
    held.acquire()
    with pytest.raises(Overdue), interrupted_after(0.3):
        held.acquire()


def test_a_block_done_in_time_keeps_the_handler_it_found_and_its_signals():
    told: list[int] = []

    def tell(number: int, _frame: object) -> None:
        told.append(number)

    previous = signal.signal(signal.SIGALRM, tell)
    try:
        with interrupted_after(0.3):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
            time.sleep(0.01)
        time.sleep(0.6)  # past the limit: nothing is sent any more
        assert told == [signal.SIGALRM]
        assert signal.getsignal(signal.SIGALRM) is tell
        signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
        time.sleep(0.01)
        assert told == [signal.SIGALRM] * 2
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_outside_the_main_thread_the_block_runs_unbounded():
    ended: list[str] = []

    def body() -> None:
        with interrupted_after(0.1):
            time.sleep(0.4)
        ended.append("done")

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(10)

    assert ended == ["done"]
