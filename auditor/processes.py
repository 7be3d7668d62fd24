"""Child processes of the coordinator that must not outlive it (workers, a forked report file),
and the stop signals (SIGINT, SIGTERM) around starting them."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def die_with_parent() -> bool:
    """Has the kernel SIGKILL this process when its parent dies (Linux); False where it cannot.

    A worker that cannot be tied still works: the coordinator's spool digest check keeps what
    an orphan writes out of any bag.
    """
    if not LINUX:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), 0, 0, 0) != 0:
        reason = os.strerror(ctypes.get_errno())
        log.warning(
            "process %d will outlive a killed coordinator: prctl failed (%s)", os.getpid(), reason
        )
        return False
    return True


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread while it forks workers and starts their pool's
    threads, then taken, at the end of the block.

    Taken during a fork, a stop signal's exception is raised in an at-fork hook (logging's),
    which Python only prints, so the run goes on without it; taken half way through starting a
    pool, it leaves a worker or a thread the pool cannot stop, which the interpreter then waits
    for at exit. Both were seen with SIGTERM sent to the whole process group, as systemd
    stops a unit. Children forked and threads started meanwhile inherit the block: a worker
    takes the signals when it is ready (`take_stop_signals`), so a signal sent to the group
    during its fork is not lost either.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = STOP_SIGNALS - signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def take_stop_signals() -> None:
    """In a child forked inside `stop_signals_held`: takes SIGINT and SIGTERM again, and with
    them any sent while it was being started."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextmanager
def stops_kept() -> Iterator[list[BaseException]]:
    """A list that receives the exception SIGINT's or SIGTERM's handler raises in this process
    while the block runs (the handlers are wrapped, main thread only).

    The exception can be lost on its way to the run (raised in a finalizer or a hook whose
    errors Python only prints), while the same signal, sent to the whole process group, kills
    the workers: the caller raises the kept exception again (`raise_kept`) at its next hour
    or phase, or when it finds its workers dead, so the run ends as stopped (130, 143), not
    as done or failed. Python's "Exception ignored" traceback of a kept one is not printed:
    the caller raises it again, and the run still ends in one line.
    """
    kept: list[BaseException] = []
    if threading.current_thread() is not threading.main_thread():
        yield kept
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number, handler in previous.items():
        if callable(handler):
            signal.signal(number, _keeping(handler, kept))
    printing = sys.unraisablehook
    sys.unraisablehook = _quiet_for(kept, printing)
    try:
        yield kept
    finally:
        sys.unraisablehook = printing
        for number, handler in previous.items():
            if callable(handler):
                signal.signal(number, handler)


def raise_kept(stops: list[BaseException]) -> None:
    """Raises again a stop kept by `stops_kept` whose handler ran where Python only prints what
    it raises (a finalizer, an at-fork hook): the run went on to archive every hour, or to
    sign and publish its bag, and exit 0."""
    if stops:
        raise stops[0] from None


def _quiet_for(kept: list[BaseException], printing: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def quiet(unraisable: Any) -> Any:
        if any(unraisable.exc_value is error for error in kept):
            log.debug("a stop signal's exception, raised in %r, is kept", unraisable.object)
            return None
        return printing(unraisable)

    return quiet


def _keeping(
    handler: Callable[[int, FrameType | None], Any], kept: list[BaseException]
) -> Callable[[int, FrameType | None], Any]:
    def keeping(number: int, frame: FrameType | None) -> Any:
        try:
            return handler(number, frame)
        except BaseException as error:
            kept.append(error)
            raise

    return keeping
