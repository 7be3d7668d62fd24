"""The synthetic history as the emulator serves it: planted copies, conflicts, late records.

Every record of the history is served as its original, then (by `RecordFaults`) an exact copy
and a conflicting version with the same `msg_id`; an edit of it re-sent an hour later
(`faults.resent_version`) is served by the next hour's file, timed in that hour. The ground
truth a client must end up with is the originals, conflicting and re-sent versions, never the
copies. Hour files are built once and cached as gzip bytes, since generating a record is the
expensive part.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import orjson

from auditor.emulator.dataset import SyntheticHistory
from auditor.emulator.faults import (
    RESEND_DELAY_MS,
    RecordFaults,
    conflicting_version,
    resent_version,
)
from auditor.partitions import HOUR_MS

ORIGINAL, COPY, CONFLICT = 0, 1, 2
CACHE_BYTES = 512 * 1024 * 1024
SHIFTING = 0x5F17  # `chance` salt of the hours whose file shifts (`shifted`)


class Feed:
    """Served items of a history, hour files (cached), and the matching ground truth."""

    def __init__(self, history: SyntheticHistory, faults: RecordFaults) -> None:
        self.history = history
        self.faults = faults
        self._files: OrderedDict[tuple[int, bool], bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()

    def items(self, index: int) -> list[tuple[int, dict[str, Any]]]:
        """What the server sends for record `index`, in order, each with its variant."""
        record = self.history.record(index)
        served = [(ORIGINAL, record)]
        if "msg_id" in record:
            if self.faults.duplicated(index):
                served.append((COPY, record))
            if self.faults.conflicting(index):
                served.append((CONFLICT, conflicting_version(record)))
        return served

    def expected(self, since_ms: int, until_ms: int) -> Iterator[dict[str, Any]]:
        """The distinct records of `[since_ms, until_ms)` a complete pull holds, in time order."""
        for index in self.history.index_range(since_ms, until_ms):
            for variant, record in self.items(index):
                if variant != COPY:
                    yield record
        yield from self.resent(since_ms, until_ms)

    def resent(self, since_ms: int, until_ms: int) -> Iterator[dict[str, Any]]:
        """The edits re-sent into `[since_ms, until_ms)` of records sent `RESEND_DELAY_MS`
        earlier (`RecordFaults.resent`)."""
        if not self.faults.any_resent:
            return
        earlier = self.history.index_range(since_ms - RESEND_DELAY_MS, until_ms - RESEND_DELAY_MS)
        for index in earlier:
            if self.faults.resent(index):
                version = resent_version(self.history.record(index))
                if version is not None:
                    yield version

    def hour_file(self, start_ms: int, with_late: bool) -> bytes:
        """Gzip of the hour's served records a line each; `with_late=False` leaves out late ones."""
        key = (start_ms, with_late or not self.faults.any_late)
        with self._lock:
            cached = self._files.get(key)
            if cached is not None:
                self._files.move_to_end(key)
                return cached
        with self._build_lock:
            with self._lock:
                cached = self._files.get(key)
            if cached is None:
                built = self.build(start_ms)
                self.store(start_ms, built)
                cached = built[key[1]]
        return cached

    def has(self, start_ms: int) -> bool:
        with self._lock:
            return (start_ms, True) in self._files

    def store(self, start_ms: int, built: dict[bool, bytes]) -> None:
        """Caches what `build` returned (possibly in another process)."""
        for late, data in built.items():
            self._remember((start_ms, late), data)

    def build(self, start_ms: int) -> dict[bool, bytes]:
        """Both versions of an hour's file from one pass: with late records and (if any) without."""
        everything: list[bytes] = []
        on_time: list[bytes] = []
        for index in self.history.index_range(start_ms, start_ms + HOUR_MS):
            lines = [orjson.dumps(record) for _variant, record in self.items(index)]
            if self.faults.mangled(index):
                lines.append(mangled_line(lines[0]))
            everything += lines
            if not self.faults.late(index):
                on_time += lines
        for version in self.resent(start_ms, start_ms + HOUR_MS):
            everything.append(orjson.dumps(version))
            on_time.append(everything[-1])
        built = {True: _gzip_lines(everything)}
        if self.faults.any_late:
            built[False] = _gzip_lines(on_time)
        return built

    def _remember(self, key: tuple[int, bool], data: bytes) -> None:
        with self._lock:
            self._files[key] = data
            self._cached += len(data)
            while self._cached > CACHE_BYTES and len(self._files) > 1:
                _, dropped = self._files.popitem(last=False)
                self._cached -= len(dropped)


def shifted(data: bytes, look: int) -> bytes:
    """The hour file `data` as its `look`-th download serves it when the hour shifts: its line
    `look - 1` (counted round) cut to its first half (`mangled_line`), so that every download is a
    different file with a line that is not a record, and the record of that line is only in the
    others: a server that lies differently each time, whose files only together hold the hour."""
    lines = gzip.decompress(data).splitlines()
    if not lines:
        return data
    at = (look - 1) % len(lines)
    lines[at] = mangled_line(lines[at])
    return _gzip_lines(lines)


def mangled_line(line: bytes) -> bytes:
    """The first half of a record's line: what a server that lies might store."""
    return line[: len(line) // 2]


def _gzip_lines(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=6, mtime=0)
