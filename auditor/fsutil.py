"""Durable writes: a file is either absent, the old one, or the whole new one, after any crash.

Shared by everything that must survive SIGKILL: the spool, `auditor pull`'s hour files and
checkpoint, and the bag writer.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path

from auditor.errors import InputError, os_reason

# What makes a folder a bag (BagIt 1.0), as `archive.layout` names it; not imported from there,
# which this module of plain file helpers need not load.
BAGIT_TXT = "bagit.txt"


def _holds_bagit(folder: Path) -> bool:
    """Whether `folder` holds bagit.txt; one this user may not search is not a bag to it
    (`Path.is_file` lets a refused permission through)."""
    try:
        return (folder / BAGIT_TXT).is_file()
    except OSError:
        return False


def write_synced(path: Path, data: bytes) -> None:
    """Writes `data` to `path` and flushes it to disk (for files inside an unpublished folder)."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Makes a rename or a new entry in `folder` durable."""
    fsync_path(folder)


def make_folders(path: Path) -> list[Path]:
    """Creates `path` and its missing parents (`mkdir -p`); returns the folders it created,
    outermost first, for `fsync_folders` once their last entry is made."""
    created = []
    current = path
    while not os.path.lexists(current) and current != current.parent:
        created.append(current)
        current = current.parent
    path.mkdir(parents=True, exist_ok=True)
    return created[::-1]


def fsync_folders(created: Iterable[Path] = (), filled: Iterable[Path] = ()) -> None:
    """Makes new folders and new entries survive a power cut, a folder at a time (never a file
    at a time): each folder `make_folders` created and the parent holding its entry, and each
    folder in `filled`, is fsynced once, deepest first. A file's own fsync does not make its
    name durable, so a folder not synced after its last entry can lose names that synced
    manifests list."""
    created = list(created)
    folders = {*created, *(folder.parent for folder in created), *filled}
    for folder in sorted(folders, key=lambda folder: (-len(folder.parts), folder)):
        fsync_dir(folder)


def fsync_ancestors(folder: Path) -> None:
    """Makes `folder`'s own entry durable, however long ago it was made and by whom: each
    folder above it on the same file system is fsynced, up to the mount point (one not
    readable is passed over: it cannot be opened to sync, and was not made by this user). Used
    for the folder of bags, made by the first run of a chain (which may have been killed), a
    few fsyncs a run; a folder with nothing unsynced costs next to nothing."""
    device = folder.stat().st_dev
    for parent in folder.resolve().parents:
        if parent.stat().st_dev != device:
            break
        with suppress(PermissionError):
            fsync_dir(parent)


def sync_files(paths: Iterable[Path], folder: Path) -> None:
    """Makes the data of the files `paths`, all inside `folder`, durable at once: on Linux one
    `syncfs` of the file system holding `folder` (300 files of 20 KB measured here: 3-4 ms a
    file, against 10 for an fsync of each and 16-26 for one of each and of the folder after
    each); elsewhere, or should it fail, an fsync each."""
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is not None:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            if syncfs(descriptor) == 0:
                return
        finally:
            os.close(descriptor)
    for path in paths:
        fsync_path(path)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def fsync_path(path: str | Path) -> None:
    """Flushes what is written to the file or folder `path` to disk, whoever wrote it."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(
    path: Path,
    chunks: bytes | Iterable[bytes],
    before_rename: Callable[[str], object] | None = None,
) -> str:
    """Writes `chunks` to `path` via a synced temporary file and a rename; returns the sha256,
    given first to `before_rename`, if any, once the file is synced and not yet renamed."""
    # Named by process and thread: two writers of one path (two workers, or two downloads of
    # one content-addressed file) never share a temporary file; the last rename wins, whole.
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    digest = hashlib.sha256()
    try:
        with temporary.open("wb") as handle:
            for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename is not None:
            raise
        raise OSError(error.errno, os_reason(error), str(path)) from None  # a write names none
    if before_rename is not None:
        try:
            before_rename(digest.hexdigest())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    os.replace(temporary, path)
    fsync_dir(path.parent)
    return digest.hexdigest()


def refuse_inside_bag(bag: str | Path, path: str | Path, what: str) -> None:
    """Refuses to write `what` at `path` when it lies in `bag`, or in any other bag: a byte
    added or changed there makes the signed archive fail verification, and the command that did
    it would not say so."""
    inside = Path(bag).resolve()
    target = Path(path).resolve()
    if target == inside or inside in target.parents:
        raise InputError(
            f"{path} is inside the bag {bag}: writing {what} there would change a signed "
            "archive; choose a folder outside it"
        )
    refuse_inside_any_bag(path, what)


def refuse_inside_any_bag(path: str | Path, what: str) -> None:
    """Refuses to write `what` at `path` when it, or a folder above it, is a bag (holds
    bagit.txt): a report rendered again into the newest bag's `data/report`, or a scan's
    findings written over a bag's own `data/findings.jsonl`, broke a signed archive silently."""
    target = Path(path).resolve()
    for folder in (target, *target.parents):
        if _holds_bagit(folder):
            raise InputError(
                f"{path} is inside the bag {folder}: writing {what} there would change a "
                "signed archive; choose a folder outside it"
            )
