"""Reading the files of a bag that may have been crafted: regular files only, never through a
symbolic link, never more than a cap.

A bag is handed to legal by whoever made it, and `verify`, `report` and `prove` open its files.
Opened plainly, a FIFO named `bag-info.txt` hangs the reader for ever, a symlink reads a file
outside the bag (`/etc/passwd`), and `/dev/zero` or a 1 GB sparse line fills the memory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from auditor.archive import layout
from auditor.errors import InputError, os_reason

# Caps on a bag's files that the writer's own stay far below: a tag or signature file (a
# bag-info is about 2 KB, a signature 64 bytes), and one archived line (a record is capped at
# 64 MiB when it is downloaded).
TAG_FILE_LIMIT = 1 << 20
LINE_LIMIT = 64 << 20


class UnsafeFile(ValueError):
    """A bag file that is not a regular file, is reached through a symlink, or is too large;
    the message says which, without the path (the caller names it)."""


def open_regular(path: str | Path, follow_symlinks: bool = False) -> BinaryIO:
    """`path` opened for reading when it is a regular file and, unless `follow_symlinks`, not
    itself a symlink (a file the operator names may be one: Kubernetes mounts secrets so).

    Opened without blocking, so that a FIFO is seen for what it is instead of waiting for a
    writer; a folder, device or socket is refused too.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if not follow_symlinks and os.path.islink(path):
            raise UnsafeFile("is a symbolic link, not a file of the bag") from None
        raise error
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFile(f"is {_kind(mode)}, not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(path: str | Path, limit: int, follow_symlinks: bool = False) -> bytes:
    """The bytes of the regular file `path`, refused (`UnsafeFile`) past `limit` of them."""
    with open_regular(path, follow_symlinks) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeFile(f"is larger than the {limit:,} bytes such a file holds")
    return data


def read_bag_file(path: Path, limit: int) -> bytes | None:
    """The bytes of one file of a bag, None if it is not there; InputError naming it when it is
    a symlink, FIFO, device or folder, or larger than `limit`."""
    try:
        return read_regular(path, limit)
    except FileNotFoundError:
        return None
    except UnsafeFile as error:
        raise InputError(f"{shown(path)}: {error}") from None
    except OSError as error:
        raise InputError(f"{shown(path)}: cannot read ({os_reason(error)})") from None


def bag_lines(path: Path) -> Iterator[bytes]:
    """The lines of the bag file `path`, read as they are (never gunzipped), each refused
    past `LINE_LIMIT` bytes; InputError naming the file when it is missing or not regular."""
    limit = LINE_LIMIT
    try:
        handle = open_regular(path)
    except FileNotFoundError:
        raise InputError(f"{shown(path)}: no such file") from None
    except UnsafeFile as error:
        raise InputError(f"{shown(path)}: {error}") from None
    except OSError as error:
        raise InputError(f"{shown(path)}: cannot read ({os_reason(error)})") from None
    with handle:
        number = 0
        while True:
            try:
                line = handle.readline(limit + 1)
            except OSError as error:
                raise InputError(f"{shown(path)}: cannot read ({os_reason(error)})") from None
            if not line:
                return
            number += 1
            if len(line) > limit and not (len(line) == limit + 1 and line.endswith(b"\n")):
                raise InputError(
                    f"{shown(path)}:{number}: a line longer than {limit:,} bytes, which no "
                    "archived line is; run `auditor verify` on the bag"
                )
            yield line


def record_files(bag: Path) -> list[Path]:
    """The record files of `bag` in leaf order (their names sort by hour), its `data` and
    `data/records` refused when symlinked; every reader of a bag's lines starts here. A hidden
    name is none the writer makes: macOS adds `._2026110700.jsonl` beside each file it copies
    to a FAT or exFAT disk, and its bytes are no lines of the archive."""
    bag = Path(bag)
    refuse_linked_folders(bag, (layout.DATA, layout.RECORDS))
    return sorted(
        path
        for path in (bag / layout.RECORDS).glob(f"*{layout.RECORDS_SUFFIX}")
        if not path.name.startswith(".")
    )


def unreadable_files(bag: Path) -> list[Path]:
    """The files of `bag` that keep what its run could not archive as records (`HOUR.txt`, one
    piece a line: served garbage, or a record with no RFC 8785 form as JSON), by hour; refused
    when symlinked, hidden names skipped, as `record_files`."""
    bag = Path(bag)
    refuse_linked_folders(bag, (layout.DATA, layout.UNREADABLE))
    return sorted(
        path for path in (bag / layout.UNREADABLE).glob("*.txt") if not path.name.startswith(".")
    )


def refuse_linked_folders(bag: Path, relatives: Iterable[str]) -> None:
    """The folders of `bag` to be read in must be its own: a symlinked `data/records` would have
    files from anywhere on the machine read (and put into a report or a proof)."""
    for relative in relatives:
        if (bag / relative).is_symlink():
            raise InputError(
                f"{shown(bag / relative)}: is a symbolic link, not a folder of the bag"
            )


def shown(text: str | Path) -> str:
    """`text` (a name or value from a bag) as part of one line of output: every character a
    terminal would act on (newline, CR, ESC, bidi controls, undecodable bytes) written as a
    repr-style escape, so a crafted name cannot forge a line of its own; printable text comes
    back unchanged."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
