"""Client-side pacing of Easemob's rate-limited call, shared by every process of a run.

Easemob allows 10 hour-file requests (`GET /{org}/{app}/chatmessages/{YYYYMMDDHH}`) a minute per
AppKey and answers more with 429 `reach_limit`, without a Retry-After. Retrying with backoff
would get every hour in the end, but a backfill of months would spend most of its requests being
refused. A `Pacer` spaces the requests evenly instead: each caller reserves the next free slot,
`60 / per_minute` seconds after the last one reserved, and sleeps until it. Workers of one run
(processes, or Dask workers sharing the spool volume) reserve their slots in one small file under
an exclusive `flock`, so the limit holds for the app, not per process.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable
from pathlib import Path

EASEMOB_HOUR_FILES_PER_MINUTE = 10.0


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

    def wait(self) -> float:
        """Sleeps until this caller's slot and returns it (seconds since the epoch)."""
        with self._lock:
            now = self._clock()
            slot = self._reserve(now)
        if slot > now:
            self._sleep(slot - now)
        return slot

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
