"""Where the report moves what it counts once memory should no longer hold it."""

from __future__ import annotations

import sqlite3


def scratch_database(table: str) -> sqlite3.Connection:
    """SQLite's private temporary database (named ""): on disk, deleted when it is closed, so
    nothing is left behind by a run that dies; `table` is its one CREATE TABLE statement."""
    database = sqlite3.connect("")
    database.execute(table)
    return database
