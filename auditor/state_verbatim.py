"""The messages a bag keeps verbatim in `data/unreadable/`, in a table beside the message index.

A record with no RFC 8785 form (a lone surrogate: a client cut a message inside an emoji) has no
archived line and no Merkle leaf: its run judges it and keeps it as a line of
`data/unreadable/HOUR.txt`, which its `not-canonical-json` finding names (`verbatim_kept`). The
message index is keyed by content hash and leaf (`seq`), which such a message lacks, so it has
a table of its own, keyed by where the bag keeps it, with what its run decided (retention end,
rule and action as an id in `verdicts`): `auditor due` lists it beside the index's messages. A
state written before this table has none; readers take it as empty (`count`, `has_table`). The
table is new and older auditors ignore it, so the schema version stays.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

from auditor.state_schema import has_table

TABLE_NAME = "verbatim_messages"
TABLE = """CREATE TABLE IF NOT EXISTS verbatim_messages (
    run INTEGER NOT NULL,               -- the run whose bag keeps it
    file TEXT NOT NULL,                 -- data/unreadable/HOUR.txt in that bag
    line INTEGER NOT NULL,              -- its line there, from 1
    msg_id TEXT NOT NULL,               -- each lone surrogate as U+FFFD
    line_sha256 TEXT NOT NULL,          -- of the line's bytes, without its newline
    timestamp_ms INTEGER,
    retain_until_ms INTEGER,
    verdict INTEGER REFERENCES verdicts(id),  -- its run's (rule, action)
    PRIMARY KEY (run, file, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS verbatim_messages_by_id ON verbatim_messages (msg_id);"""
REJUDGED = "temp.rejudged_verbatim"
"""`(run, file, line, verdict, hold)`: what `due --policy` found of the messages kept verbatim
that it read again (`due_verbatim`)."""
INSERT = f"INSERT OR REPLACE INTO {TABLE_NAME} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def add(db: sqlite3.Connection, run: int, kept: Iterable, verdict_id: Callable[..., int]) -> int:
    """Adds a run's messages kept verbatim, each (rule, action) as its id from `verdict_id`;
    how many."""
    rows = [row(run, one, verdict_id(one.rule, one.action)) for one in kept]
    db.executemany(INSERT, rows)
    return len(rows)


def row(run: int, kept, verdict: int) -> tuple:
    """The table's row of a message kept verbatim (`verbatim_kept.Kept`) by run `run`."""
    return (run, kept.file, kept.line, kept.msg_id, kept.line_sha256, kept.timestamp_ms,
            kept.retain_until_ms, verdict)  # fmt: skip


def count(db: sqlite3.Connection) -> int:
    """How many messages the state holds as kept verbatim (0 for a state without the table)."""
    if not has_table(db, TABLE_NAME):
        return 0
    return int(db.execute(f"SELECT count(*) FROM {TABLE_NAME}").fetchone()[0])


def any_in(db: sqlite3.Connection) -> bool:
    """Whether the state holds a message kept verbatim (none for a state without the table)."""
    if not has_table(db, TABLE_NAME):
        return False
    return db.execute(f"SELECT 1 FROM {TABLE_NAME} LIMIT 1").fetchone() is not None
