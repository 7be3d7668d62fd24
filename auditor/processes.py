"""Child processes of the coordinator that must not outlive it (workers, a forked report file)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

LINUX = sys.platform.startswith("linux")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
