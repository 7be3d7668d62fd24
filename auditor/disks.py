"""Which of a run's disks refused a write that named no file.

A full disk or a read-only file system fails a `write` on a file opened long before, and the
error carries no file name: the run's bag and spool, its state database, and the temporary
files of the report and of SQLite may each live on another disk, so naming one of them by
default sent operators to free the wrong disk.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

# Below this, a disk is called full: a failed write of a buffer leaves some space behind.
NEARLY_FULL_BYTES = 1 << 20


def temporary_folder() -> str:
    """Where SQLite's temporary files go (SQLITE_TMPDIR first), else Python's (TMPDIR ...)."""
    return os.environ.get("SQLITE_TMPDIR") or tempfile.gettempdir()


def _existing(path: Path) -> Path:
    """`path`, or the nearest folder above it that exists (a folder not made yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def refusing(number: int, folders: dict[str, Path]) -> list[str]:
    """The names, among `folders` (what each holds -> its folder), of those on a disk that
    refuses writes for the reason `number` (ENOSPC or EROFS): full (less than 1 MiB
    left), or mounted read-only. Folders on one disk are named together. Empty when no
    folder's disk shows the reason: the error then came from elsewhere."""
    found = []
    for what, folder in folders.items():
        try:
            disk = os.statvfs(_existing(Path(folder)))
        except OSError:
            continue
        if number == errno.EROFS:
            refuses = bool(disk.f_flag & os.ST_RDONLY)
        else:
            refuses = disk.f_bavail * disk.f_frsize < NEARLY_FULL_BYTES
        if refuses:
            found.append(what)
    return found


def note_refusing(error: OSError, folders: dict[str, Path]) -> str | None:
    """A note naming the folders whose disk caused `error`, if it names no file and is a full
    or read-only disk that one of `folders` is on; None otherwise."""
    if error.filename is not None or error.errno not in (errno.ENOSPC, errno.EROFS):
        return None
    named = refusing(error.errno, folders)
    if not named:
        return None
    state = "read-only" if error.errno == errno.EROFS else "full"
    return f"the disk is {state} under {' and '.join(named)}"
