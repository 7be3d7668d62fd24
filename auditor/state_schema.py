"""The state database's schema version, SQLite's `PRAGMA user_version`, so a state written by a
later auditor is told apart from one this auditor can read.

Until version 1 the schema changed without a mark: columns and the `unidentified` table were
added by whichever version first opened an older state, and a reader met an older state only as
a missing table. Version 0 (SQLite's default) is any state written before the mark. Version 2
moved the message index into `message_index`, the hash as bytes and rules interned, behind a
view `messages` that reads as version 1's table did (`state_index`). Version 3 indexes by hour
only the rows served outside their timestamp's hour (`state_index.SERVED_ELSEWHERE`); its rows
are version 2's. `State` upgrades an earlier state in place (`_add_columns`,
`state_index.lay_out`, `_relative_bag_paths`) and marks it current; readers read it as it is. A
version above `SCHEMA_VERSION` was written by a later auditor: refused in one line (exit 2),
since its rows may mean what this one cannot know.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from auditor.errors import ConfigError

SCHEMA_VERSION = 3


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def refuse_newer(db: sqlite3.Connection, state_path: Path) -> None:
    """ConfigError (exit 2) for a state whose schema is newer than this auditor's."""
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{state_path}: the state database has schema version {version}, written by a later "
            f"auditor; this one reads versions up to {SCHEMA_VERSION}: run the auditor that "
            "wrote it (or a later one), or rebuild a state from the bags with it"
        )


def mark_current(db: sqlite3.Connection) -> None:
    """Marks a state this auditor has just created or upgraded as of its schema version."""
    if schema_version(db) != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def has_table(db: sqlite3.Connection, name: str) -> bool:
    """Whether the state holds table `name` (a state of version 0 may lack a later one)."""
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return db.execute(query, (name,)).fetchone() is not None
