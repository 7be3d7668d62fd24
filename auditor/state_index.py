"""The message index's layout on disk (schema 3), and the upgrade of an earlier state's index.

Schema 1 kept the index as a table `messages` keyed by (msg_id, content hash as 64 hex
characters), with the rule and action spelled out on every row: about 270 bytes a message, 3 GB
a day for an app of 10 million messages a day. Schema 2 keeps the same facts in `message_index`:
the content hash as its 32 bytes, the (rule, action) pair as the id of a row of `verdicts`, and
an integer row id that the unique key and the time and hour indexes point to (without row ids,
each of those indexes would repeat msg_id and hash). `messages` is now a view of it with the
columns and values of schema 1's table, so every reader (`due`, `state show`, a run's look for
earlier versions) asks what it asked before, of a state of either schema.

Schema 3 indexes by hour only the rows whose hour is not their timestamp's (`SERVED_ELSEWHERE`:
strays, records without a timestamp, rows of a state older than the hour column): the others
are found by the time index. The full hour index was 18 % of the commit's copy, for one reader,
`--recheck`'s look for vanished messages (`pipeline._Archiver._disappeared`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from auditor import crashpoints

INDEX_TABLE = "message_index"
SERVED_ELSEWHERE = "{m}.hour_ms IS NOT {m}.timestamp_ms - {m}.timestamp_ms % 3600000"
"""Whether row `m`'s hour is not its timestamp's: the rows the hour index holds (a query must
name this condition, spelled as the index is, for SQLite to use that index)."""
_SCHEMA_2_INDEX = "DROP INDEX IF EXISTS message_index_by_hour;\n"
"""Schema 2's index of every row by hour."""
_UPGRADE_CACHE_KIB = 16 * 1024

TABLES = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY,
    rule TEXT,                          -- the retention rule or hold a run applied
    action TEXT,                        -- what that rule says once retention ends: delete |
                                        -- review | keep; hold while a hold applies
    UNIQUE (rule, action)
);
CREATE TABLE IF NOT EXISTS message_index (
    msg_id TEXT NOT NULL,
    content_hash BLOB NOT NULL CHECK (typeof(content_hash) = 'blob'),  -- its SHA-256's bytes
    timestamp_ms INTEGER,
    retain_until_ms INTEGER,
    first_run INTEGER NOT NULL,
    last_run INTEGER NOT NULL,
    hour_ms INTEGER,                    -- the hour whose file served it to its first run
    verdict INTEGER REFERENCES verdicts(id),  -- its first run's (rule, action)
    seq INTEGER,                        -- its line (Merkle leaf index) in its first run's bag
    UNIQUE (msg_id, content_hash)
);
CREATE INDEX IF NOT EXISTS message_index_by_time ON message_index (timestamp_ms);
CREATE INDEX IF NOT EXISTS message_index_served_elsewhere ON message_index (hour_ms)
    WHERE hour_ms IS NOT timestamp_ms - timestamp_ms % 3600000;
"""

# A join, not a subquery a column: `due` reads `action` up to four times a row (`VERDICT_SQL`),
# and each read was a lookup (at a million messages `due` spent 18.7 s of CPU with subqueries,
# 17.3 with the join, 15.3 on schema 1's table).
VIEW = """CREATE VIEW IF NOT EXISTS messages AS SELECT m.msg_id,
    lower(hex(m.content_hash)) AS content_hash, m.timestamp_ms, m.retain_until_ms, m.first_run,
    m.last_run, m.hour_ms, v.rule AS rule, v.action AS action, m.seq
    FROM message_index m LEFT JOIN verdicts v ON v.id = m.verdict"""


def verdicts_of(table: str) -> str:
    """The statement that adds to `verdicts` the (rule, action) pairs of `table` it lacks."""
    return (
        f"INSERT INTO verdicts (rule, action) SELECT DISTINCT rule, action FROM {table} r"
        " WHERE NOT EXISTS (SELECT 1 FROM verdicts v WHERE v.rule IS r.rule"
        " AND v.action IS r.action)"
    )


VERDICT_OF_ROW = "(SELECT id FROM verdicts v WHERE v.rule IS r.rule AND v.action IS r.action)"
"""The id in `verdicts` of the (rule, action) of row `r`."""


def is_table(db: sqlite3.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return db.execute(query, (name,)).fetchone() is not None


def lay_out(db: sqlite3.Connection, version: int) -> bool:
    """Creates the index of schema 3 (a state of schema 2: its hour index replaced), moving into
    it the rows of an earlier state's `messages` table and marking the state as of schema
    `version`, in one transaction: a crash meanwhile leaves the earlier state as it was, which
    the next opening upgrades again. Whether it moved a table (whose pages the caller then gives
    back to the file system)."""
    if not is_table(db, "messages"):
        db.executescript(_SCHEMA_2_INDEX + TABLES + VIEW)
        return False
    db.create_function("from_hex", 1, _from_hex, deterministic=True)
    cache_was = db.execute("PRAGMA cache_size").fetchone()[0]
    # rows in msg_id order land on random pages of the time index (`RunCompletion`)
    db.execute(f"PRAGMA cache_size = -{_UPGRADE_CACHE_KIB}")
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in TABLES.split(";\n")[:-1]:  # (executescript would commit first)
            db.execute(statement)
        db.execute(verdicts_of("messages"))
        db.execute(
            f"INSERT INTO {INDEX_TABLE} (msg_id, content_hash, timestamp_ms, retain_until_ms,"
            " first_run, last_run, hour_ms, verdict, seq) SELECT msg_id, from_hex(content_hash),"
            f" timestamp_ms, retain_until_ms, first_run, last_run, hour_ms, {VERDICT_OF_ROW}, seq"
            " FROM messages r ORDER BY msg_id, content_hash"
        )
        db.execute("DROP TABLE messages")
        db.execute(VIEW)
        db.execute(f"PRAGMA user_version = {int(version)}")
        crashpoints.reached("state.upgraded")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.execute(f"PRAGMA cache_size = {int(cache_was)}")
    return True


def _from_hex(text):
    """A schema 1 content hash as its bytes; None (refused by NOT NULL) for one that is not
    hex, which no version wrote."""
    try:
        return bytes.fromhex(text)
    except (TypeError, ValueError):
        return None


def add_rows(db: sqlite3.Connection, rows: Iterable[tuple]) -> None:
    """Adds index rows spelled as schema 1's table held them: (msg_id, content hash in hex,
    timestamp_ms, retain_until_ms, first_run, last_run, hour_ms, action, rule, seq), read one by
    one. A pair the index holds already keeps its row, with the later `last_run`."""
    verdict_id = VerdictIds(db)
    db.executemany(
        f"INSERT INTO {INDEX_TABLE} (msg_id, content_hash, timestamp_ms, retain_until_ms,"
        " first_run, last_run, hour_ms, verdict, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (msg_id, content_hash) DO UPDATE SET last_run = excluded.last_run",
        (
            (identity, bytes.fromhex(content), *facts, verdict_id(rule, action), seq)
            for identity, content, *facts, action, rule, seq in rows
        ),
    )


class VerdictIds:
    """The ids in `verdicts` of (rule, action) pairs, a pair added as first met; for one
    transaction (a rolled back one takes its new ids with it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._ids = {(rule, action): id_ for id_, rule, action in db.execute(_ALL_VERDICTS)}

    def __call__(self, rule: str | None, action: str | None) -> int:
        found = self._ids.get((rule, action))
        if found is None:
            added = self._db.execute(_ADD_VERDICT, (rule, action)).lastrowid
            found = self._ids[rule, action] = int(added or 0)
        return found


class RunVerdicts:
    """The ids a run's index rows carry for their (rule, action) pairs: those `verdicts` held
    as the run began, and new pairs numbered after them as first met, which the commit adds
    (`RunCompletion`). The run holds the state's lock, so no other writer can take those ids;
    if one did, the commit's insert would fail rather than name the wrong pair. With the id in
    the run's table the commit copies a column, where a subquery a row for the id, after a scan
    of the run's rows for new pairs, was a third of the copy's instructions."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.ids = {(rule, action): id_ for id_, rule, action in db.execute(_ALL_VERDICTS)}
        self._next = max(self.ids.values(), default=0) + 1
        self.added: list[tuple[int, str | None, str | None]] = []
        """(id, rule, action) of the pairs new to `verdicts`, for the commit to insert."""

    def add(self, rule: str | None, action: str | None) -> int:
        """The id of a pair not in `ids`, numbered and remembered."""
        found = self.ids[rule, action] = self._next
        self.added.append((found, rule, action))
        self._next += 1
        return found


_ALL_VERDICTS = "SELECT id, rule, action FROM verdicts"
_ADD_VERDICT = "INSERT INTO verdicts (rule, action) VALUES (?, ?)"
