"""A time limit on what the run's own main thread does: `--hour-timeout` for an hour processed in
the run's process (`--workers 1`, or a window of one hour), where no worker can be killed.

Past the limit a timer thread sends SIGALRM to the main thread, whose handler raises `Overdue`:
a read, a sleep, a lock or a wait on another thread is interrupted (Python retries a system call
a signal interrupts only when the handler returns), so the hour is given up and the run stops
as for a hung worker. It is sent again every second, in case the first was swallowed where
exceptions are only printed (a finalizer). A hang in C code that never returns to Python is out
of its reach: worker processes, which can be killed, are (`local.LocalExecutor`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

RESEND_EVERY_S = 1.0


class Overdue(BaseException):
    """Raised in the main thread when its limit passed: a BaseException, so that no
    `except Exception` on the way (a retry loop) takes it for the operation's own failure."""


@contextmanager
def interrupted_after(seconds: float) -> Iterator[None]:
    """Raises `Overdue` in the block when it runs longer than `seconds`. Only the main thread
    takes signals: elsewhere (a test's thread) the block runs unbounded. Another SIGALRM handler
    (a test's own alarm) still gets the signals it did not send."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_kill"
    ):
        yield
        return
    main = threading.main_thread().ident
    assert main is not None
    passed = threading.Event()
    done = threading.Event()
    previous = signal.getsignal(signal.SIGALRM)

    def overdue(number: int, frame: FrameType | None) -> Any:
        if passed.is_set() and not done.is_set():
            raise Overdue
        if callable(previous):
            return previous(number, frame)
        return None

    def alarm() -> None:
        if done.wait(seconds):
            return
        passed.set()
        while not done.is_set():
            signal.pthread_kill(main, signal.SIGALRM)
            done.wait(RESEND_EVERY_S)

    signal.signal(signal.SIGALRM, overdue)
    timer = threading.Thread(target=alarm, name="hour-timeout", daemon=True)
    timer.start()
    try:
        yield
    finally:
        # One sent as the block ends may raise before `done` is set: set it again then, or the
        # timer would go on sending, its handler raising wherever the run then is.
        while True:
            try:
                done.set()
                break
            except Overdue:
                continue
        timer.join()
        signal.signal(signal.SIGALRM, previous)  # which takes any signal still pending first
