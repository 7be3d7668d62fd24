"""History already on disk: `.jsonl`/`.json`/`.gz` files, such as Easemob's own `YYYYMMDDHH.gz`
downloads or the folder an earlier `auditor pull` wrote.

A record belongs to the hour of its timestamp, whatever file holds it. A record without a usable
timestamp stays with its file: the hour in the file's name when it is named like an hour file
(in the configured zone), else the hour of the nearest record before it. Unlike `validate`, this
source is strict about syntax: a line that is not JSON stops the run, naming file and line.

Each file is read once to index the hours it holds, then again for each of them. A file that
changes in between (cut short, replaced, still being written) stops the run in one line: read
on, the hours it no longer held would pass as pulled with no records.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, timezone
from pathlib import Path

from auditor.archive.untrusted import shown
from auditor.errors import ConfigError, InputError
from auditor.jsonl import INPUT_FILE, expand_inputs, read_file
from auditor.partitions import Partition
from auditor.records import Record, timestamp_ms
from auditor.sources.interface import Source

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


class LocalFileSource(Source):
    """Hours read from local files; each file is read once to index which hours it holds (and
    how many records of each), then once for each of them."""

    name = "local"

    def __init__(self, inputs: Iterable[str | Path], hour_timezone: timezone = UTC) -> None:
        self.inputs = [str(item) for item in inputs]
        self.hour_timezone = hour_timezone
        self.files = local_files(self.inputs)
        if not self.files:
            named = ", ".join(shown(item) for item in self.inputs)
            raise InputError(f"no .jsonl, .json or .gz files in {named}")
        self._index: dict[Partition, list[Path]] | None = None
        self._stamps: dict[Path, Stamp] = {}
        self._counts: dict[tuple[Path, Partition], int] = {}
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
        for path in self._hours().get(partition, ()):
            yield from self._served_from(path, partition)

    def _served_from(self, path: Path, partition: Partition) -> Iterator[Record]:
        """The hour's records in `path`, refused unless the file is still the one indexed."""
        self._check_unchanged(path)
        count = 0
        for home, record in self._placed(path):
            if home == partition:
                count += 1
                yield record
        self._check_unchanged(path)
        indexed = self._counts[path, partition]
        if count != indexed:
            label = partition.label(self.hour_timezone)
            detail = f"hour {label}: {count:,} records, {indexed:,} when indexed"
            raise _changed(path, detail)

    def _check_unchanged(self, path: Path) -> None:
        if _stamp(path) != self._stamps[path]:
            raise _changed(path, "its size, time or inode differ from when indexed")

    def _hours(self) -> dict[Partition, list[Path]]:
        with self._lock:
            if self._index is None:
                index: dict[Partition, list[Path]] = {}
                for path in self.files:
                    for home in self._indexed(path):
                        index.setdefault(home, []).append(path)
                self._index = index
            return self._index

    def _indexed(self, path: Path) -> Counter[Partition]:
        """The records of each hour in `path`, with the file's stamp kept to check it by."""
        self._stamps[path] = _stamp(path)
        counts = Counter(home for home, _ in self._placed(path))
        self._check_unchanged(path)
        for home, count in counts.items():
            self._counts[path, home] = count
        return counts

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
