"""Secrets given in environment variables, kept out of the environment of a run's children.

A worker needs the client secret, and has it in the settings it is handed; it does not need it
in its environment, where any process of the same user reads it (`/proc/<pid>/environ`, `ps e`)
and where every program it starts inherits it. Removing a variable from `os.environ` is not
enough on Linux: `/proc/<pid>/environ` shows the block of bytes a process was started with,
which `unsetenv` leaves in place and a forked worker inherits as it is. So while a run lasts its
secrets are removed from `os.environ` (a spawned or exec'd child never gets them) and their
bytes in that block are overwritten (a forked one, and this process, no longer show them);
`os.environ` gets them back when the run ends, for a next run in the same process.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

log = logging.getLogger(__name__)

# Always secret when set; a variable an app's `client_secret_env` names is found by its value.
SECRET_VARIABLES = ("EASEMOB_CLIENT_SECRET", "AUDITOR_KEY_PASSPHRASE")


@contextmanager
def secrets_hidden(values: Iterable[str | None] = ()) -> Iterator[None]:
    """The variables of `SECRET_VARIABLES`, and any whose value is one of `values` (the
    secrets already read), out of the environment until the block ends."""
    secrets = {value for value in values if value}
    hidden = {
        name: value
        for name, value in os.environ.items()
        if name in SECRET_VARIABLES or value in secrets
    }
    for name in hidden:
        del os.environ[name]
    _overwrite_initial_block(hidden)
    try:
        yield
    finally:
        for name, value in hidden.items():
            os.environ.setdefault(name, value)


def _overwrite_initial_block(hidden: dict[str, str]) -> None:
    """Zeroes the `NAME=value` entries of `hidden` in the block `/proc/self/environ` reads.

    The block is found from the kernel's own account of it (`env_start`, `env_end` in
    `/proc/self/stat`) and written only when its bytes there are exactly what
    `/proc/self/environ` shows, so a block moved or reused by something else is left alone.
    Nothing points into an entry once `unsetenv` removed it from `environ`."""
    if not hidden:
        return
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/self/environ", "rb") as environ:
            shown = environ.read()
    except OSError:
        return  # not Linux: no such block to read
    # Fields 50 and 51 of stat(5), counted after the command name's closing parenthesis.
    start, end = int(fields[47]), int(fields[48])
    if end - start != len(shown) or ctypes.string_at(start, len(shown)) != shown:
        log.debug("the process's initial environment is not where the kernel says; left as is")
        return
    wanted = {f"{name}={value}".encode(errors="surrogateescape") for name, value in hidden.items()}
    offset = 0
    for entry in shown.split(b"\0"):
        if entry in wanted:
            with suppress(ValueError):
                ctypes.memset(start + offset, 0, len(entry))
        offset += len(entry) + 1
