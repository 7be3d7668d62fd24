"""The reservations a pace slot file holds, and the first slot free among them.

Each line is one reservation, `slot interval owner made`: when a caller may send its request,
the interval its process is paced at, which process holds it (`pid+start@host`, its start time
in clock ticks since boot from `/proc`, so that a pid reused since names another process;
`pid@host` where there is no `/proc`, and in an older version's lines), and when it was made.
Knowing the owner, a slot still ahead whose process is gone (a run killed, or stopped before its
hours were fetched) is not waited for; knowing each interval, the slowest pace any process of
the app is set to holds for every process until a minute after that one's last slot; knowing
when, slots made "later" than now are moved back with a clock set back.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

WINDOW_S = 60.0
"""Easemob counts the hour-file requests of a minute: a process's interval holds this long."""
LONGEST_INTERVAL_S = 6000.0
"""60 s at the slowest pace the settings allow (0.01 a minute); a longer one is damage."""
FARTHEST_S = 3600.0
"""A slot reserved further ahead than this (and than the callers waiting could push it) is
damage: at Easemob's pace, 600 callers waiting."""
CLOCK_SLACK_S = 1.0
"""A reservation made this much after now tells of a clock set back."""
MOST_BYTES = 1 << 20
"""More than any real file holds (a line for each caller waiting); the rest of a damaged one is
not read."""


def _host() -> str:
    """This machine and pid namespace: a pid is only checked where it means the same process."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}:{namespace}"


HOST = _host()


@dataclass(frozen=True, slots=True)
class Reservation:
    slot: float
    interval: float
    owner: str = ""
    made: float | None = None  # None on a line of an older version, or damaged

    def line(self) -> str:
        made = "" if self.made is None else f" {self.made!r}"
        return f"{self.slot!r} {self.interval!r} {self.owner or '-'}{made}\n"


def this_process() -> str:
    return _owner(os.getpid())


@lru_cache(maxsize=8)
def _owner(pid: int) -> str:
    """`pid+start@host`, or `pid@host` where the start time cannot be read; keyed by pid, as a
    forked worker is another process."""
    fields = _stat_fields(pid)
    start = fields[_START_TIME] if fields is not None and len(fields) > _START_TIME else b""
    return f"{pid}+{start.decode()}@{HOST}" if start.isdigit() else f"{pid}@{HOST}"


def read(handle: IO[bytes]) -> list[Reservation]:
    """The reservations of a slot file; a line that is not one (cut short by a killed writer,
    or damaged) is left out."""
    handle.seek(0)
    found = []
    for line in handle.read(MOST_BYTES).decode("utf-8", "replace").splitlines():
        fields = line.split()
        try:
            slot = float(fields[0])
            interval = float(fields[1]) if len(fields) > 1 else 0.0
            made: float | None = float(fields[3]) if len(fields) > 3 else None
        except (IndexError, ValueError):
            continue
        if made is not None and not math.isfinite(made):
            made = None
        owner = fields[2] if len(fields) > 2 and fields[2] != "-" else ""
        if math.isfinite(slot) and 0.0 <= interval <= LONGEST_INTERVAL_S:
            found.append(Reservation(slot, interval, owner, made))
    return found


def rebased(reservations: Iterable[Reservation], now: float) -> list[Reservation]:
    """Each reservation made after `now` (the clock was set back since) moved back as far, so
    that its slot is as far ahead as it was when made."""
    found = []
    for r in reservations:
        if r.made is not None and r.made > now + CLOCK_SLACK_S:
            r = Reservation(r.slot - (r.made - now), r.interval, r.owner, now)
        found.append(r)
    return found


def write(handle: IO[bytes], reservations: Iterable[Reservation]) -> None:
    """Written over the file's old text, then cut to length: a writer killed between the two
    leaves the old lines' tail, which reads as damage or as slots already past."""
    handle.seek(0)
    handle.write("".join(r.line() for r in sorted(reservations, key=_slot)).encode())
    handle.truncate()


def _slot(reservation: Reservation) -> float:
    return reservation.slot


def alive(owner: str) -> bool:
    """False only for a process of this host known to be gone: none by its pid, a zombie (a
    worker killed with its coordinator stays one where the init process does not reap it), or
    one started at another time than the owner's (its pid was reused); one of another host (a
    Dask worker sharing the run's file), or not named, may still use its slot."""
    process, _, host = owner.partition("@")
    pid, _, start = process.partition("+")
    if host != HOST or not pid.isdigit() or int(pid) <= 0:
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True
    fields = _stat_fields(int(pid))
    if fields is None:
        return True
    if fields[:1] in ([b"Z"], [b"X"]):
        return False
    return not start.isdigit() or fields[_START_TIME : _START_TIME + 1] == [start.encode()]


_START_TIME = 19
"""The index of field 22 of `/proc/PID/stat`, the start time, among `_stat_fields`."""


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of `/proc/PID/stat` from the third (the state) on, after the command name,
    which may hold spaces and parentheses; None where there is no such file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()
    except OSError:
        return None


def live(reservations: Iterable[Reservation], now: float) -> list[Reservation]:
    """Those past (their request may have been sent) and those ahead whose process may still
    use them."""
    return [r for r in reservations if r.slot <= now or alive(r.owner)]


def pace_in_force(reservations: Iterable[Reservation], now: float, interval: float) -> float:
    """The longest interval of the caller's and of every process with a slot within the last
    minute (or its own interval, if longer) or ahead: the tightest limit set holds for all."""
    return max(
        [interval] + [r.interval for r in reservations if now - r.slot < max(WINDOW_S, r.interval)]
    )


def kept(reservations: Iterable[Reservation], now: float, gap: float) -> set[Reservation]:
    """Of the `live` reservations, those that still bind a caller at `now`: every slot ahead
    not further from when it was made than callers waiting could have pushed it (unlike a
    damaged line), and of those past, the last one and each interval's last within its
    minute. A line that does not say when it was made is held to the callers now waiting."""
    ahead = [r for r in reservations if r.slot > now]
    reach = 2 * len(ahead) * gap  # each slot ahead moves the next by under 2 gaps
    binding = {
        r
        for r in ahead
        if (r.slot - now <= reach if r.made is None else r.slot - r.made <= max(FARTHEST_S, reach))
    }
    latest: dict[float, Reservation] = {}
    for r in sorted((r for r in reservations if r.slot <= now), key=_slot, reverse=True):
        if not latest or (r.interval not in latest and now - r.slot < max(WINDOW_S, r.interval)):
            latest[r.interval] = r
            binding.add(r)
    return binding


def first_free(reservations: Iterable[Reservation], now: float, gap: float) -> float:
    """The first slot from `now` at least `gap` from every reservation: a slot given up between
    two others is taken again."""
    slot = now
    for r in sorted(reservations, key=_slot):
        if r.slot - slot >= gap:
            break
        slot = max(slot, r.slot + gap)
    return slot
