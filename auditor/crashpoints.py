"""Named points where a test can have the process killed, to prove a run survives SIGKILL.

`AUDITOR_CRASH_AT=name:n` makes the process SIGKILL itself the n-th time it reaches the point
`name`; `name:n:raise` raises `CrashPointError` there instead, a bug's plain exception. Unset
(always, outside tests), `reached` is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import signal

_TARGET = os.environ.get("AUDITOR_CRASH_AT", "")
_NAME, _, _REST = _TARGET.partition(":")
_COUNT, _, _HOW = _REST.partition(":")
_counts: dict[str, int] = {}


class CrashPointError(RuntimeError):
    """What `name:n:raise` raises: not an `AuditorError`, so it takes a bug's path."""


def reached(name: str) -> None:
    if not _TARGET or name != _NAME:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(_COUNT or 1):
        if _HOW == "raise":
            raise CrashPointError(f"crash point {name} reached")
        os.kill(os.getpid(), signal.SIGKILL)
