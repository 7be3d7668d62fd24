"""Where the report moves what it counts once memory should no longer hold it."""

from __future__ import annotations

import errno
import sqlite3

from auditor.disks import temporary_folder


class _Scratch(sqlite3.Connection):
    """A scratch database whose failures name its folder: SQLite's "database or disk is full"
    names no file, and the run would call it an error of its state database."""

    def execute(self, *args):
        try:
            return super().execute(*args)
        except sqlite3.Error as error:
            raise _refused(error) from error

    def executemany(self, *args):
        try:
            return super().executemany(*args)
        except sqlite3.Error as error:
            raise _refused(error) from error


def _refused(error: sqlite3.Error) -> OSError:
    full = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    number = errno.ENOSPC if full else errno.EIO
    return OSError(number, f"the report's scratch database: {error}", temporary_folder())


def scratch_database(table: str) -> sqlite3.Connection:
    """SQLite's private temporary database (named ""): on disk, deleted when it is closed, so
    nothing is left behind by a run that dies; `table` is its one CREATE TABLE statement."""
    database = sqlite3.connect("", factory=_Scratch)
    database.execute(table)
    return database


class Spilling:
    """What each of the report's bounded tallies shares: its scratch database (`scratch_database`),
    made at its first spill past what memory holds, and deleted by `close`, after which reading
    it fails loudly rather than count fewer."""

    _disk: sqlite3.Connection | None = None

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()

    def _scratch(self, table: str, *indexes: str) -> sqlite3.Connection:
        """The scratch database, made with `table` and `indexes` at the first call."""
        if self._disk is None:
            self._disk = scratch_database(table)
            for index in indexes:
                self._disk.execute(index)
        return self._disk
