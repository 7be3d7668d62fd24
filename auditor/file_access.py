"""Who may read what the auditor writes: its owner alone (the default), or the owner's group too.

Bags, reports, the state, the spool and a pull's folder quote chat messages, which are personal
data: made under the usual umask 022 they were readable by every user of the host. As borg does
(umask 0077 unless told otherwise), each command sets its own umask before it writes anything,
so the umask it was started with (022, or 000 under some schedulers) never widens them; the
process's children (workers, an app's run) inherit it. A file made before, by an older version
(a state database), is brought to the same mode when the auditor opens it again.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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


def _umask() -> int:
    """The process's umask, which can only be read by setting it: set to 077 meanwhile, so a
    file another thread makes in that instant is, at worst, its owner's alone."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def conform(path: Path) -> None:
    """Gives `path`, an existing file of this user made before (an older version's state
    database, its journal), the mode the umask `restrict` set gives a new one, so that reopening
    it does not leave it readable by others. A file missing or of another owner is left alone."""
    try:
        found = os.stat(path)
        mode = (0o777 if stat.S_ISDIR(found.st_mode) else 0o666) & ~_umask()
        if found.st_uid == os.geteuid() and stat.S_IMODE(found.st_mode) != mode:
            os.chmod(path, mode)
    except OSError:
        return
