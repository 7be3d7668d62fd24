"""Findings waiting for their record, by the msg_id or line it is known by, in bounded memory.

A finding that comes before its record waits until the record dates it. Most wait moments (a
bag's findings just before their line, an hour's findings before its records), but a finding
about a message the run does not hold waits for ever: a `--recheck` of a window the source no
longer serves emits one for every message archived earlier, and 199,491 of them took a run from
94 to 144 MB (probe28). So past `IN_MEMORY` waiting findings they move to a private temporary
SQLite database on disk, deleted when it is closed, where each record arriving looks for its own.
"""

from __future__ import annotations

from auditor.report.scratch import Spilling

# Findings waiting in memory before they move to disk: about 3 MB.
IN_MEMORY = 10_000

Key = str | tuple[str, int]
Waiting = list[tuple[str, int]]


class WaitingFindings(Spilling):
    """(severity, number in the report's spool) of each finding waiting, by its record's key."""

    def __init__(self, in_memory: int | None = None) -> None:
        self._found: dict[Key, Waiting] = {}
        self._held = 0
        self._in_memory = IN_MEMORY if in_memory is None else in_memory
        self._on_disk = 0

    def __len__(self) -> int:
        return self._held + self._on_disk

    def __bool__(self) -> bool:
        return bool(self._found) or self._on_disk > 0

    def add(self, key: Key, severity: str, number: int) -> None:
        self._found.setdefault(key, []).append((severity, number))
        self._held += 1
        if self._held >= self._in_memory:
            self._spill()

    def pop(self, key: Key) -> Waiting:
        """The findings waiting for `key`, which wait no more."""
        found = self._found.pop(key, None)
        if found is not None:
            self._held -= len(found)
        if not self._on_disk:
            return found or []
        assert self._disk is not None
        stored = _stored(key)
        rows = self._disk.execute(
            "SELECT severity, number FROM waiting WHERE key = ?", (stored,)
        ).fetchall()
        if not rows:
            return found or []
        with self._disk:
            self._disk.execute("DELETE FROM waiting WHERE key = ?", (stored,))
        self._on_disk -= len(rows)
        return rows + (found or [])

    def _spill(self) -> None:
        disk = self._scratch(
            "CREATE TABLE waiting (key BLOB, severity TEXT, number INTEGER)",
            "CREATE INDEX waiting_by_key ON waiting (key)",
        )
        with disk:
            disk.executemany(
                "INSERT INTO waiting VALUES (?, ?, ?)",
                (
                    (_stored(key), severity, number)
                    for key, waiting in self._found.items()
                    for severity, number in waiting
                ),
            )
        self._on_disk += self._held
        self._found, self._held = {}, 0


def _stored(key: Key) -> bytes:
    """A key as a BLOB: a msg_id's UTF-8 bytes (lone surrogates kept) after `m`, a line's
    number after `s`, so no msg_id is ever taken for a line."""
    if isinstance(key, str):
        return b"m" + key.encode("utf-8", "surrogatepass")
    return b"s%d" % key[1]
