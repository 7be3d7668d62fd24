"""History already on disk: `.jsonl`/`.json`/`.gz` files, such as Easemob's own `YYYYMMDDHH.gz`
downloads or the folder an earlier `auditor pull` wrote.

A record belongs to the hour of its timestamp, whatever file holds it. A record without a usable
timestamp stays with its file: the hour in the file's name when it is named like an hour file
(in the configured zone), else the hour of the nearest record before it. Unlike `validate`, this
source is strict about syntax: a line that is not JSON stops the run, naming file and line.

Each file is read once: its records are sorted into one temporary file per hour (under
`TMPDIR`, removed when the source closes), from which the hours are served. Read once per hour
it held, an export of a month was parsed 721 times; and a file cut short between two readings
let the hours it no longer held pass as pulled with no records. A file that changes while it
is read (still being written, replaced) stops the run in one line.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, timezone
from pathlib import Path
from typing import BinaryIO

from auditor.archive.untrusted import shown
from auditor.errors import ConfigError, InputError
from auditor.jsonl import INPUT_FILE, expand_inputs, read_file
from auditor.partitions import Partition
from auditor.records import Record, timestamp_ms
from auditor.sources.interface import Source
from auditor.sources.pull import record_line

HOUR_FILE_NAME = re.compile(r"(\d{10})(?:\.jsonl|\.json)?(?:\.gz)?")

# Written by `auditor pull` beside the hour files; not records.
PULL_METADATA = frozenset({"checkpoint.json", "conflicts.jsonl"})

# What tells a file from itself changed: size, mtime_ns and inode.
Stamp = tuple[int, int, int]


def _stamp(path: Path) -> Stamp:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{shown(path)}: no such {INPUT_FILE}") from None
    except OSError as error:
        raise InputError(f"{shown(path)}: cannot read ({error.strerror})") from None
    return status.st_size, status.st_mtime_ns, status.st_ino


def _changed(path: Path, detail: str) -> InputError:
    return InputError(
        f"{shown(path)}: the file changed while being read ({detail}); "
        "run again once nothing writes to it"
    )


def local_files(inputs: Iterable[str | Path]) -> list[Path]:
    """The files named, and the record files inside named folders (not `pull`'s own metadata)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(p for p in expand_inputs([path]) if p.name not in PULL_METADATA)
        else:
            found.extend(expand_inputs([path]))
    return found


class _HourSpool:
    """Records sorted into one file per hour in a temporary folder, written through a few open
    files at a time: an export of a year holds 8,760 hours, and a process may open about 1,000
    files. An export in time order keeps writing to the file it has open."""

    OPEN_AT_ONCE = 64

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="auditor-local-")
        self._open: OrderedDict[Partition, BinaryIO] = OrderedDict()
        self.hours: dict[Partition, Path] = {}

    def add(self, hour: Partition, line: bytes) -> None:
        handle = self._open.get(hour)
        with self._naming_the_folder():
            if handle is None:
                name = f"{hour.start_ms}.jsonl"
                path = self.hours.setdefault(hour, Path(self._folder.name) / name)
                if len(self._open) >= self.OPEN_AT_ONCE:
                    self._open.popitem(last=False)[1].close()
                handle = self._open[hour] = path.open("ab")
            else:
                self._open.move_to_end(hour)
            handle.write(line)

    def finish(self) -> None:
        with self._naming_the_folder():
            while self._open:
                self._open.popitem()[1].close()

    @contextmanager
    def _naming_the_folder(self) -> Iterator[None]:
        """A write refused (a full disk) said only "No space left on device"."""
        try:
            yield
        except OSError as error:
            raise InputError(
                f"{self._folder.name}: cannot sort the exports by hour there ({error.strerror}); "
                "free space or point TMPDIR at a larger disk"
            ) from None

    def remove(self) -> None:
        self.finish()
        self._folder.cleanup()


class LocalFileSource(Source):
    """Hours read from local files, each file read once and sorted by hour (`_HourSpool`)."""

    name = "local"

    def __init__(self, inputs: Iterable[str | Path], hour_timezone: timezone = UTC) -> None:
        self.inputs = [str(item) for item in inputs]
        self.hour_timezone = hour_timezone
        self.files = local_files(self.inputs)
        if not self.files:
            named = ", ".join(shown(item) for item in self.inputs)
            raise InputError(f"no .jsonl, .json or .gz files in {named}")
        self._spool: _HourSpool | None = None
        self._lock = threading.Lock()

    def describe(self) -> dict[str, str]:
        return {
            "api": self.name,
            "inputs": ", ".join(self.inputs),
            "files": str(len(self.files)),
            "hour_timezone": self.hour_timezone.tzname(None) or "UTC",
        }

    def partitions(self) -> list[Partition]:
        """Every hour some file holds a record of, oldest first."""
        return sorted(self._hours())

    def served(self, partition: Partition) -> Iterator[Record]:
        """The hour's records, file by file in the order the files were named, each file's in
        its own order."""
        path = self._hours().get(partition)
        if path is None:
            return
        for parsed in read_file(path):
            if parsed.record is None:  # written by `record_line`, read back the same
                raise InputError(f"{shown(path)}, line {parsed.line}: {parsed.error}")
            yield parsed.record

    def close(self) -> None:
        with self._lock:
            if self._spool is not None:
                self._spool.remove()
                self._spool = None

    def _hours(self) -> dict[Partition, Path]:
        with self._lock:
            if self._spool is None:
                spool = _HourSpool()
                try:
                    for path in self.files:
                        self._sort(path, spool)
                    spool.finish()
                except BaseException:
                    spool.remove()
                    raise
                self._spool = spool
            return self._spool.hours

    def _sort(self, path: Path, spool: _HourSpool) -> None:
        """Every record of `path` into the spool file of its hour; refused when the file
        changed while it was read (its records would be some of one version, some of another)."""
        before = _stamp(path)
        for home, record in self._placed(path):
            spool.add(home, record_line(record))
        if _stamp(path) != before:
            raise _changed(path, "its size, time or inode changed as it was read")

    def _named_hour(self, path: Path) -> Partition | None:
        match = HOUR_FILE_NAME.fullmatch(path.name)
        if match is None:
            return None
        try:
            return Partition.from_label(match.group(1), self.hour_timezone)
        except ConfigError:
            return None

    def _placed(self, path: Path) -> Iterator[tuple[Partition, Record]]:
        """Each record of the file with the hour it belongs to."""
        named = self._named_hour(path)
        current = named
        waiting: list[Record] = []
        for parsed in read_file(path):
            if parsed.record is None:
                raise InputError(f"{shown(path)}, line {parsed.line}: {parsed.error}")
            instant = timestamp_ms(parsed.record)
            if instant is None:
                if current is None:
                    waiting.append(parsed.record)
                else:
                    yield current, parsed.record
                continue
            home = Partition.containing(instant)
            if named is None:
                current = home
                for record in waiting:
                    yield home, record
                waiting.clear()
            yield home, parsed.record
        if waiting:
            raise InputError(
                f"{shown(path)}: no record has a timestamp and the file is not named for an hour "
                "(like 2026110100.jsonl), so its records belong to no hour"
            )
