"""Client-side pacing of Easemob's rate-limited call, shared by every process of a run.

Easemob allows 10 hour-file requests (`GET /{org}/{app}/chatmessages/{YYYYMMDDHH}`) a minute per
AppKey and answers more with 429 `reach_limit`, without a Retry-After. Retrying with backoff
would get every hour in the end, but a backfill of months would spend most of its requests being
refused. A `Pacer` spaces the requests evenly instead: each caller reserves the next free slot,
`60 / per_minute` seconds after the last one reserved, and sleeps until it. Workers of one run
(processes, or Dask workers sharing the spool volume) reserve their slots in one small file under
an exclusive `flock`, so the limit holds for the app, not per process. Every process of this
user on this machine that calls the same app, whatever run or pull it belongs to, also reserves
its slots in one more file (`machine_slots`, under `$XDG_RUNTIME_DIR` or a private folder of the
temporary directory): two `auditor pull`s, or a pull beside a run, each paced alone, together
asked twice the limit and were refused.

A run that stops (Ctrl-C, SIGTERM) lets its hours in progress finish, and at Easemob's pace an
hour can wait a minute for its slot: the coordinator then leaves a `stop_marker` beside the
slots, and a caller still waiting gives up (`PacingStopped`) rather than fetch an hour the run
will not archive. The next run fetches it, and waits for none of the slots given up: a caller
giving up frees its own, in the run's file and the machine's, the coordinator frees the run's
slots still ahead once it stopped (`release_unused`), and since each slot names its process
(`pace_file`), one ahead whose process is gone (killed before it could) is free again.

Processes set to different paces for one app all keep the slowest of those that took a slot in
the last minute: a lower `hour_files_per_minute` is a share of the limit someone chose, and a
faster process must not spend it. A damaged slot file, one that is not this user's, a folder it
cannot be made in, or a clock set back never stop a pull nor make it wait longer than the
callers ahead of it could: at worst the pace is kept by this process alone, with a warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import IO

from auditor.sources import pace_file

log = logging.getLogger(__name__)

EASEMOB_HOUR_FILES_PER_MINUTE = 10.0
STOP_POLL_S = 0.25
"""How often a caller waiting for its slot looks for the run's stop marker."""


class PacingStopped(Exception):
    """The run is stopping: the hour waiting for its slot is left to the next run."""


def machine_slots(base_url: str, org: str, app: str) -> Path | None:
    """The slot file every process of this user on this machine shares for the app at
    `base_url`, in a folder only this user may write (`$XDG_RUNTIME_DIR`, else one made in the
    temporary directory and refused unless it is a folder of this user's that no one else may
    write: another user's file could hold a slot far ahead); None where there is none, which
    leaves the pace to each run or process as before."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    folder = (
        Path(runtime) if runtime else Path(tempfile.gettempdir()) / f"easemob-auditor-{os.getuid()}"
    )
    try:
        if not runtime:
            with suppress(FileExistsError):
                folder.mkdir(mode=0o700)
        found = os.lstat(folder)
    except OSError as error:
        _warn_unshared(folder, str(error))
        return None
    private = stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid()
    if not private or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        _warn_unshared(folder, f"{folder} is not a folder of this user's alone")
        return None
    app_key = hashlib.sha256(f"{base_url.rstrip('/')}\0{org}\0{app}".encode()).hexdigest()
    return folder / f"easemob-auditor-hour-file-pace-{app_key[:32]}"


def stop_marker(slots: Path) -> Path:
    """The file whose presence tells every caller sharing `slots` that the run is stopping."""
    return slots.with_name(slots.name + ".stop")


class Pacer:
    """At most `per_minute` calls a minute across everyone sharing `slots` (or this process) and,
    given one, `machine` (`machine_slots`)."""

    def __init__(
        self,
        per_minute: float,
        slots: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        machine: Path | None = None,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("a pacer needs a rate above 0 a minute")
        self.interval = 60.0 / per_minute
        self.slots = slots
        self.machine = machine
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0
        self._since = clock()  # a stop marker older than this is a killed run's

    def wait(self) -> float:
        """Sleeps until this caller's slot and returns it (seconds since the epoch); raises
        `PacingStopped` if the run stops meanwhile. The time to wait is counted from the
        reservation, so a clock set back meanwhile does not lengthen it."""
        with self._lock:
            now = self._clock()
            mine = self._reserve(now)
        poll = STOP_POLL_S if self.slots is not None else float("inf")
        left = mine.slot - now
        while left > 0:
            if self._stopping():
                self._give_up(mine)
                raise PacingStopped("the run is stopping")
            step = min(left, poll)
            self._sleep(step)
            left -= step
        return mine.slot

    def _stopping(self) -> bool:
        """Whether this run's coordinator left the stop marker (one process without `slots`
        is stopped by the signal itself)."""
        if self.slots is None:
            return False
        try:
            return stop_marker(self.slots).stat().st_mtime >= self._since
        except FileNotFoundError:
            return False

    def _reserve(self, now: float) -> pace_file.Reservation:
        """The first slot free in every file shared, written to each; this process's own next
        slot without one."""
        with self._locked() as handles:
            if not handles:
                slot = max(now, self._next)
                self._next = slot + self.interval
                return pace_file.Reservation(slot, self.interval, made=now)
            held = [
                pace_file.live(pace_file.rebased(pace_file.read(handle), now), now)
                for handle in handles
            ]
            every = [r for reservations in held for r in reservations]
            binding = pace_file.kept(every, now, pace_file.pace_in_force(every, now, self.interval))
            gap = pace_file.pace_in_force(binding, now, self.interval)  # not a damaged line's
            slot = pace_file.first_free(binding, now, gap)
            mine = pace_file.Reservation(slot, self.interval, pace_file.this_process(), now)
            for handle, reservations in zip(handles, held, strict=True):
                pace_file.write(handle, [r for r in reservations if r in binding] + [mine])
            return mine

    def _give_up(self, mine: pace_file.Reservation) -> None:
        """The slot of a caller that stops waiting is free at once, also in the machine's file,
        whose other processes would otherwise wait for it while this one lives (a Dask worker)."""
        with suppress(OSError), self._locked() as handles:
            for handle in handles:
                pace_file.write(handle, [r for r in pace_file.read(handle) if r != mine])

    @contextmanager
    def _locked(self) -> Iterator[list[IO[bytes]]]:
        """The files shared, each locked (the run's, then the machine's: always in that order,
        so that no two callers each hold the lock the other waits for)."""
        with ExitStack() as stack:
            handles = [stack.enter_context(_opened(self.slots))] if self.slots else []
            if self.machine is not None:
                try:
                    handles.append(stack.enter_context(_opened_private(self.machine)))
                except OSError as error:  # a pace shared with fewer beats a pull that fails
                    self._unshared(error)
            for handle in handles:
                fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            yield handles

    def _unshared(self, error: OSError) -> None:
        _warn_unshared(self.machine, str(error))


def _warn_unshared(path: Path | None, reason: str) -> None:
    """One warning a process and file or folder: the pace is still kept, by fewer processes."""
    if path not in _UNSHARED:
        _UNSHARED.add(path)
        log.warning(
            "the hour-file pace is not shared with this machine's other processes (%s): "
            "pulls or runs of the app at once may together exceed Easemob's limit",
            reason,
        )


_UNSHARED: set[Path | None] = set()


def _opened(path: Path) -> IO[bytes]:
    """The run's slot file, opened to read and write, and created if missing."""
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o666), "r+b")


def _opened_private(path: Path) -> IO[bytes]:
    """The machine's slot file, opened to read and write, created only this user may read; one
    of another user, or not a regular file (a FIFO would block its reader), is refused."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    found = os.fstat(descriptor)
    if not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid():
        os.close(descriptor)
        raise PermissionError(f"{path} is not a file of this user's")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "r+b")


def release_unused(slots: Path, per_minute: float, clock: Callable[[], float] = time.time) -> None:
    """Once a stopped run's callers have all given up or finished, its slots still ahead were
    never used: the next caller may have the first an interval after the last one used."""
    if per_minute <= 0:
        return
    with suppress(OSError), slots.open("r+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        now = clock()
        pace_file.write(handle, [r for r in pace_file.read(handle) if r.slot <= now])
