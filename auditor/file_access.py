"""Who may read what the auditor writes: its owner alone (the default), or the owner's group too.

Bags, reports, the state, the spool and a pull's folder quote chat messages, which are personal
data: made under the usual umask 022 they were readable by every user of the host. As borg does
(umask 0077 unless told otherwise), each command sets its own umask before it writes anything,
so the umask it was started with (022, or 000 under some schedulers) never widens them; the
process's children (workers, an app's run) inherit it. A Dask worker the run did not start
(`dask worker`) has a umask of its own: each task is run under the coordinator's
(`umask_while`). A file made before, by an older version (a state database), is brought to the
same mode when the auditor opens it again.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ENVVAR = "AUDITOR_FILE_ACCESS"
OWNER = "owner"
GROUP = "group"
# Never others: "group" lets a legal team's group read (and enter folders), never write.
UMASKS = {OWNER: 0o077, GROUP: 0o027}
ACCESS = tuple(UMASKS)


def restrict(access: str) -> None:
    """Makes every file and folder this process (and what it starts) creates from now on
    readable by its owner alone, or by its group too (`access`: "owner" or "group")."""
    os.umask(UMASKS[access])


def current_umask() -> int:
    """The process's umask, which can only be read by setting it: set to 077 meanwhile, so a
    file another thread makes in that instant is, at worst, its owner's alone."""
    with _masks_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


_masks_lock = threading.Lock()
_masks: Counter[int] = Counter()  # the umasks of the `umask_while` blocks under way
_umask_before: list[int] = []  # the process's own, while any is under way


@contextmanager
def umask_while(mask: int) -> Iterator[None]:
    """Runs its block under `mask` at least, for every thread of the process: a Dask worker's
    umask (022, or 000 under some schedulers) is one for all its threads and tasks. Blocks under
    way together get the bits of all their masks, so a file is at worst more private than its
    run asked (an owner-only run's beside a group one's); the process's own umask is put back
    when the last ends."""
    with _masks_lock:
        if not _masks:
            _umask_before.append(os.umask(mask))
        _masks[mask] += 1
        os.umask(_joined(_masks))
    try:
        yield
    finally:
        with _masks_lock:
            _masks[mask] -= 1
            if not _masks[mask]:
                del _masks[mask]
            os.umask(_joined(_masks) if _masks else _umask_before.pop())


def _joined(masks: Counter[int]) -> int:
    joined = 0
    for mask in masks:
        joined |= mask
    return joined


def conform(path: Path) -> None:
    """Gives `path`, an existing file of this user made before (an older version's state
    database, its journal), the mode the umask `restrict` set gives a new one, so that reopening
    it does not leave it readable by others. A file missing or of another owner is left alone."""
    try:
        found = os.stat(path)
        mode = (0o777 if stat.S_ISDIR(found.st_mode) else 0o666) & ~current_umask()
        if found.st_uid == os.geteuid() and stat.S_IMODE(found.st_mode) != mode:
            os.chmod(path, mode)
    except OSError:
        return
