"""Client-side pacing of Easemob's rate-limited call, shared by every process of a run.

Easemob allows 10 hour-file requests (`GET /{org}/{app}/chatmessages/{YYYYMMDDHH}`) a minute per
AppKey and answers more with 429 `reach_limit`, without a Retry-After. Retrying with backoff
would get every hour in the end, but a backfill of months would spend most of its requests being
refused. A `Pacer` spaces the requests evenly instead: each caller reserves the next free slot,
`60 / per_minute` seconds after the last one reserved, and sleeps until it. Workers of one run
(processes, or Dask workers sharing the spool volume) reserve their slots in one small file under
an exclusive `flock`, so the limit holds for the app, not per process.

A run that stops (Ctrl-C, SIGTERM) lets its hours in progress finish, and at Easemob's pace an
hour can wait a minute for its slot: the coordinator then leaves a `stop_marker` beside the
slots, and a caller still waiting gives up (`PacingStopped`) rather than fetch an hour the run
will not archive. The next run fetches it, and does not wait for the slots given up
(`release_unused`).
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

EASEMOB_HOUR_FILES_PER_MINUTE = 10.0
STOP_POLL_S = 0.25
"""How often a caller waiting for its slot looks for the run's stop marker."""


class PacingStopped(Exception):
    """The run is stopping: the hour waiting for its slot is left to the next run."""


def stop_marker(slots: Path) -> Path:
    """The file whose presence tells every caller sharing `slots` that the run is stopping."""
    return slots.with_name(slots.name + ".stop")


class Pacer:
    """At most `per_minute` calls a minute across everyone sharing `slots` (or this process)."""

    def __init__(
        self,
        per_minute: float,
        slots: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("a pacer needs a rate above 0 a minute")
        self.interval = 60.0 / per_minute
        self.slots = slots
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0
        self._since = clock()  # a stop marker older than this is a killed run's

    def wait(self) -> float:
        """Sleeps until this caller's slot and returns it (seconds since the epoch); raises
        `PacingStopped` if the run stops meanwhile."""
        with self._lock:
            now = self._clock()
            slot = self._reserve(now)
        poll = STOP_POLL_S if self.slots is not None else float("inf")
        while slot > now:
            if self._stopping():
                raise PacingStopped("the run is stopping")
            self._sleep(min(slot - now, poll))
            now = self._clock()
        return slot

    def _stopping(self) -> bool:
        """Whether this run's coordinator left the stop marker (one process without `slots`
        is stopped by the signal itself)."""
        if self.slots is None:
            return False
        try:
            return stop_marker(self.slots).stat().st_mtime >= self._since
        except FileNotFoundError:
            return False

    def _reserve(self, now: float) -> float:
        if self.slots is None:
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot
        with self.slots.open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            handle.seek(0)
            try:
                following = float(handle.read() or 0)
            except ValueError:  # a file cut short by a killed writer: start afresh
                following = 0.0
            slot = max(now, following)
            handle.seek(0)
            handle.truncate()
            handle.write(repr(slot + self.interval).encode())
            return slot


def release_unused(slots: Path, per_minute: float, clock: Callable[[], float] = time.time) -> None:
    """Once a stopped run's callers have all given up or finished, the slots reserved beyond one
    interval from now were never used: the next caller may have the first after now + interval,
    which is still an interval after every request made (each at a slot of now or before)."""
    if per_minute <= 0:
        return
    with suppress(OSError), slots.open("r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            following = float(handle.read() or 0)
        except ValueError:
            return
        soonest = clock() + 60.0 / per_minute
        if following > soonest:
            handle.seek(0)
            handle.truncate()
            handle.write(repr(soonest).encode())
