"""A file hashed as it is read: a pull folder's hour file is checked against the pull's
checkpoint in the one read that archives it (`folder.LocalHoursSource`), not in a read of its
own before (a terabyte folder read twice)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from auditor.operator_files import open_operator_file

_BUFFER = 1 << 16  # hashed a buffer at a time, never a line at a time


@dataclass(frozen=True, slots=True)
class Digest:
    """A file as read: its SHA-256, its lines (a last one unended counts) and its bytes."""

    sha256: str
    lines: int
    size: int


class DigestedFile(io.RawIOBase):
    """A raw file whose bytes are hashed, and their lines counted, as the buffered reader above
    it reads them: each byte once, however often it is read (`jsonl.is_gzip` reads the first
    two again), and what the reader left unread is read by `digest`."""

    def __init__(self, raw: io.RawIOBase) -> None:
        super().__init__()
        self._raw = raw
        self._sha256 = hashlib.sha256()
        self._at = 0  # where the next read begins
        self._size = 0  # the bytes hashed, from the first
        self._newlines = 0
        self._last = b"\n"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._at = self._raw.seek(offset, whence)
        return self._at

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer) or 0
        start, self._at = self._at, self._at + count
        if start <= self._size < self._at:
            self._take(bytes(memoryview(buffer)[self._size - start : count]))
        return count

    def _take(self, block: bytes) -> None:
        self._sha256.update(block)
        self._newlines += block.count(b"\n")
        self._last = block[-1:]
        self._size += len(block)

    def digest(self) -> Digest:
        """The whole file's digest, the bytes past those read hashed first."""
        self.seek(self._size)
        while block := self._raw.read(1 << 20):
            self._at += len(block)
            self._take(block)
        lines = self._newlines + (self._last != b"\n")
        return Digest(self._sha256.hexdigest(), lines, self._size)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


@contextmanager
def digested(path: Path, what: str) -> Iterator[tuple[io.BufferedReader, DigestedFile]]:
    """`path` open for reading (`open_operator_file`, `what` naming it in errors), and the
    `DigestedFile` under the reader that hashes what it reads."""
    handle = open_operator_file(path, what)
    raw = DigestedFile(handle.detach())  # type: ignore[attr-defined]
    with io.BufferedReader(raw, _BUFFER) as reader:
        yield reader, raw
