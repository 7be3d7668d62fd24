"""History already on disk: `.jsonl`/`.json`/`.gz` files, such as Easemob's own `YYYYMMDDHH.gz`
downloads or the folder an earlier `auditor pull` wrote.

A record belongs to the hour of its timestamp, whatever file holds it. A record without a usable
timestamp stays with its file: the hour in the file's name when it is named like an hour file
(in the configured zone), else the hour of the nearest record before it. Unlike `validate`, this
source is strict about syntax by default: a line that is not JSON stops `pull --from`, naming
file and line. `auditor run --from` keeps such a line instead (`keep_unreadable`), placed as a
record without a timestamp is, so the run archives it verbatim with a finding.

Each file is read once: its records are sorted into one temporary file per hour (under
`TMPDIR`, or the folder given; removed when the source closes), from which the hours are served
(`read_sorted_hour`, which a run's workers call on the folder the coordinator sorted into). Read
once per hour it held, an export of a month was parsed 721 times; and a file cut short between
two readings let the hours it no longer held pass as pulled with no records. A file that changes
while it is read (still being written, replaced) stops the run in one line.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, timezone
from pathlib import Path
from typing import BinaryIO

import orjson

from auditor.archive.untrusted import shown
from auditor.errors import ConfigError, InputError, os_reason
from auditor.jsonl import INPUT_FILE, expand_inputs, read_file, record_line
from auditor.partitions import Partition, format_instant
from auditor.records import Record, timestamp_ms
from auditor.sources.interface import Source, Unreadable

HOUR_FILE_NAME = re.compile(r"(\d{10})(?:\.jsonl|\.json)?(?:\.gz)?")

# Written by `auditor pull` beside the hour files; not records.
PULL_METADATA = frozenset({"checkpoint.json", "conflicts.jsonl"})

# The sorted files of an hour: its records, and what was kept as unreadable (`keep_unreadable`).
RECORDS = ".jsonl"
UNREADABLE = ".unreadable.jsonl"

# What tells a file from itself changed: size, mtime_ns and inode.
Stamp = tuple[int, int, int]


def stamp(path: Path) -> Stamp:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{shown(path)}: no such {INPUT_FILE}") from None
    except OSError as error:
        raise InputError(f"{shown(path)}: cannot read ({os_reason(error)})") from None
    return status.st_size, status.st_mtime_ns, status.st_ino


def changed(path: Path, detail: str) -> InputError:
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


def sorted_path(folder: Path, hour: Partition, kind: str = RECORDS) -> Path:
    return folder / f"{hour.start_ms}{kind}"


def read_sorted_hour(folder: Path, hour: Partition) -> Iterator[Record | Unreadable]:
    """The hour's records as sorted into `folder`, file by file in the order the files were
    named, each file's in its own order; then what was kept as unreadable, in the same order."""
    records = sorted_path(folder, hour)
    if records.exists():
        for parsed in read_file(records):
            if parsed.record is None:  # written by `record_line`, read back the same
                raise InputError(f"{shown(records)}, line {parsed.line}: {parsed.error}")
            yield parsed.record
    pieces = sorted_path(folder, hour, UNREADABLE)
    if pieces.exists():
        with pieces.open("rb") as handle:
            for line in handle:
                where, error, raw = orjson.loads(line)
                yield Unreadable(where, error, raw.encode("latin-1"))


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record was read (file and line) and its timestamp (None without one): what a
    window that the inputs' hours stretch too far names."""

    where: str
    timestamp: int | None

    def __str__(self) -> str:
        if self.timestamp is None:
            return self.where
        shown_at = f"{self.where} (timestamp {self.timestamp}, {format_instant(self.timestamp)}"
        if not in_seconds(self.timestamp):
            return shown_at + ")"
        return (
            f"{shown_at}: it looks like seconds, not milliseconds, which would be "
            f"{format_instant(self.timestamp * 1000)})"
        )


# A timestamp below this is before 1973-03-03 in ms; times 1000 from this one on, it is a
# time Easemob (founded 2013) may hold: then it was likely written in seconds.
_SECONDS_BELOW = 10**11
_SECONDS_FROM = 1_356_998_400  # 2013-01-01


def in_seconds(timestamp: int) -> bool:
    """Whether a millisecond `timestamp` looks like one written in seconds by mistake."""
    return _SECONDS_FROM <= timestamp < _SECONDS_BELOW


def _unreadable_line(piece: Unreadable) -> bytes:
    """A piece as one line of JSON; its bytes as Latin-1 text, which holds any byte."""
    return orjson.dumps([piece.where, piece.error, piece.raw.decode("latin-1")]) + b"\n"


class _HourSpool:
    """Records sorted into one file per hour in a temporary folder (in `parent`, else in
    `TMPDIR`), written through a few open files at a time: an export of a year holds 8,760
    hours, and a process may open about 1,000 files. An export in time order keeps writing to
    the file it has open."""

    OPEN_AT_ONCE = 64

    def __init__(self, parent: Path | None = None) -> None:
        self.parent = parent
        self._folder = tempfile.TemporaryDirectory(prefix="auditor-local-", dir=parent)
        self.folder = Path(self._folder.name)
        self._open: OrderedDict[Path, BinaryIO] = OrderedDict()
        self.hours: set[Partition] = set()
        self.origins: dict[Partition, Origin] = {}  # where each hour's first record was read

    def add(self, hour: Partition, line: bytes, kind: str = RECORDS) -> None:
        path = sorted_path(self.folder, hour, kind)
        handle = self._open.get(path)
        with self._naming_the_folder():
            if handle is None:
                self.hours.add(hour)
                if len(self._open) >= self.OPEN_AT_ONCE:
                    self._open.popitem(last=False)[1].close()
                handle = self._open[path] = path.open("ab")
            else:
                self._open.move_to_end(path)
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
            elsewhere = " or point TMPDIR at a larger disk" if self.parent is None else ""
            raise InputError(
                f"{self.folder}: cannot sort the exports by hour there ({os_reason(error)}); "
                f"free space{elsewhere}"
            ) from None

    def remove(self) -> None:
        self.finish()
        self._folder.cleanup()


class LocalFileSource(Source):
    """Hours read from local files, each file read once and sorted by hour (`_HourSpool`).

    `keep_unreadable` keeps a line that is not a record as an unreadable piece of its hour
    instead of stopping; `spool_parent` is where the sorted files go instead of `TMPDIR`.
    """

    name = "local"

    def __init__(
        self,
        inputs: Iterable[str | Path],
        hour_timezone: timezone = UTC,
        *,
        keep_unreadable: bool = False,
        spool_parent: Path | None = None,
    ) -> None:
        self.inputs = [str(item) for item in inputs]
        self.hour_timezone = hour_timezone
        self.keep_unreadable = keep_unreadable
        self.spool_parent = spool_parent
        self.files = local_files(self.inputs)
        if not self.files:
            named = ", ".join(shown(item) for item in self.inputs)
            raise InputError(f"no .jsonl, .json or .gz files in {named}")
        # Each file as it was read: what a run's inputs are known by (`folder.py`).
        self.stamps: dict[Path, Stamp] = {}
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
        """Every hour some file holds a record (or a kept unreadable line) of, oldest first."""
        return sorted(self._sorted().hours)

    def sorted_folder(self) -> Path:
        """The folder of the sorted hours (`read_sorted_hour`), sorting first if need be; it
        lives as long as the source."""
        return self._sorted().folder

    def served(self, partition: Partition) -> Iterator[Record | Unreadable]:
        """The hour's records, file by file in the order the files were named, each file's in
        its own order."""
        return read_sorted_hour(self._sorted().folder, partition)

    def close(self) -> None:
        with self._lock:
            if self._spool is not None:
                self._spool.remove()
                self._spool = None

    def _sorted(self) -> _HourSpool:
        with self._lock:
            if self._spool is None:
                spool = _HourSpool(self.spool_parent)
                try:
                    for path in self.files:
                        self._sort(path, spool)
                    spool.finish()
                except BaseException:
                    spool.remove()
                    raise
                self._spool = spool
            return self._spool

    def held_outside(self, since_ms: int, until_ms: int) -> str:
        hours = self.partitions()
        left_out = [hour for hour in hours if not since_ms <= hour.start_ms < until_ms]
        if not left_out:
            return ""
        edge = self.origin(hours[0] if left_out[0] == hours[0] else hours[-1])
        return (
            f"{len(left_out)} hour(s) the files hold lie outside the window "
            f"({format_instant(left_out[0].start_ms)} .. {format_instant(left_out[-1].end_ms)}) "
            "and are not pulled: give --since and --until around them to pull them"
            + ("" if edge is None else f"; the farthest was first read at {edge}")
        )

    def origin(self, hour: Partition) -> Origin | None:
        """Where the first record sorted into `hour` was read, and its timestamp."""
        return self._sorted().origins.get(hour)

    def _sort(self, path: Path, spool: _HourSpool) -> None:
        """Every record of `path` into the spool file of its hour; refused when the file
        changed while it was read (its records would be some of one version, some of another)."""
        before = stamp(path)
        origins = spool.origins
        for home, item, line in self._placed(path):
            if home not in origins:
                instant = None if type(item) is Unreadable else timestamp_ms(item)
                origins[home] = Origin(f"{shown(path)}, line {line}", instant)
            if type(item) is Unreadable:
                spool.add(home, _unreadable_line(item), UNREADABLE)
            else:
                spool.add(home, record_line(item))
        if stamp(path) != before:
            raise changed(path, "its size, time or inode changed as it was read")
        self.stamps[path] = before

    def _named_hour(self, path: Path) -> Partition | None:
        match = HOUR_FILE_NAME.fullmatch(path.name)
        if match is None:
            return None
        try:
            return Partition.from_label(match.group(1), self.hour_timezone)
        except ConfigError:
            return None

    def _placed(self, path: Path) -> Iterator[tuple[Partition, Record | Unreadable, int]]:
        """Each record of the file with the hour it belongs to and its line; a kept unreadable
        line is placed as a record without a timestamp."""
        named = self._named_hour(path)
        current = named
        waiting: list[tuple[Record | Unreadable, int]] = []
        for parsed in read_file(path):
            item: Record | Unreadable
            if parsed.record is None:
                if not self.keep_unreadable:
                    raise InputError(f"{shown(path)}, line {parsed.line}: {parsed.error}")
                error = parsed.error or "not a record"
                item, instant = (
                    Unreadable(f"{shown(path.name)}:{parsed.line}", error, parsed.raw),
                    None,
                )
            else:
                item = parsed.record
                instant = timestamp_ms(item)
            if instant is None:
                if current is None:
                    waiting.append((item, parsed.line))
                else:
                    yield current, item, parsed.line
                continue
            home = Partition.containing(instant)
            if named is None:
                current = home
                for early, line in waiting:
                    yield home, early, line
                waiting.clear()
            yield home, item, parsed.line
        if waiting and all(type(item) is Unreadable for item, _line in waiting):
            first = waiting[0][0]
            assert isinstance(first, Unreadable)
            line = first.where.rpartition(":")[2]
            raise InputError(
                f"{shown(path)}: no line of it is a record (line {line}: {first.error}): a file "
                "of records holds one JSON object a line (JSON Lines)"
            )
        if waiting:
            raise InputError(
                f"{shown(path)}: no record has a timestamp and the file is not named for an hour "
                "(like 2026110100.jsonl), so its lines belong to no hour"
            )
