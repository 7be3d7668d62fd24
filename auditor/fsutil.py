"""Durable writes: a file is either absent, the old one, or the whole new one, after any crash.

Shared by everything that must survive SIGKILL: the spool, `auditor pull`'s hour files and
checkpoint, and the bag writer.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from auditor.errors import InputError


def write_synced(path: Path, data: bytes) -> None:
    """Writes `data` to `path` and flushes it to disk (for files inside an unpublished folder)."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Makes a rename or a new entry in `folder` durable."""
    fsync_path(folder)


def fsync_path(path: str | Path) -> None:
    """Flushes what is written to the file or folder `path` to disk, whoever wrote it."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, chunks: bytes | Iterable[bytes]) -> str:
    """Writes `chunks` to `path` via a synced temporary file and a rename; returns the sha256."""
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
        raise OSError(error.errno, error.strerror, str(path)) from None  # a write names none
    os.replace(temporary, path)
    fsync_dir(path.parent)
    return digest.hexdigest()


def refuse_inside_bag(bag: str | Path, path: str | Path, what: str) -> None:
    """Refuses to write `what` at `path` when it lies in `bag`: a byte added or changed there
    makes the signed archive fail verification, and the command that did it would not say so."""
    inside = Path(bag).resolve()
    target = Path(path).resolve()
    if target == inside or inside in target.parents:
        raise InputError(
            f"{path} is inside the bag {bag}: writing {what} there would change a signed "
            "archive; choose a folder outside it"
        )
