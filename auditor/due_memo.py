"""What `due --policy` learnt reading the bags of runs that did not apply a hold, kept beside the
state (`STATE.due-holds`) so that a daily `due --policy` reads each such bag once, not every day.

A run that did not apply one of today's holds has every message whose retention still runs read
again, since that hold may cover it (`due_holds.runs_without`). Over a year of daily bags before
a hold was added, that was the whole year re-read every day (probe due27 #1: 3,765 of a chain's
5,385 messages read on every call). Which hold scopes cover a record depends on the record
alone, and a run's messages never change once it is committed (its bag is named by its
tagmanifest SHA-256, which the chain fixes). So what one reading found is kept, by bag and
scope: which holds the bag's own policy applied (`applied`: each distinct policy was loaded
again on every call), that every message of the bag not held by its own run was judged against
the scope (`checked`), and which of them it covers (`covered`, a hold's few custodians: small).
A later call whose open holds' scopes were all checked for a bag takes its kept and keep
messages from here; what `due` lists to act on (delete, review, expired, no-retention, a
released hold) is still read from the bag each time, so a bag changed since is still caught
before anything is deleted.

It is a cache, never the only copy of anything: deleted, unwritable (a read-only folder, a copy
of the state elsewhere) or from another version of the auditor, it is rebuilt by reading the
bags, as before. The state database itself stays read-only to `due`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

from auditor import __version__
from auditor.file_access import conform
from auditor.policies.scope import IdPattern, Scope

log = logging.getLogger(__name__)

FORMAT = "1"
"""Raised when what a scope covers, or what is kept here, changes meaning: a memo of another
format or auditor version is emptied, not trusted."""

_TABLES = """
CREATE TABLE IF NOT EXISTS about (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checked (bag TEXT NOT NULL, scope TEXT NOT NULL,
    PRIMARY KEY (bag, scope)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS policies (bag TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied (bag TEXT NOT NULL, scope TEXT NOT NULL,
    PRIMARY KEY (bag, scope)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS covered (bag TEXT NOT NULL, msg_id TEXT NOT NULL,
    content_hash TEXT NOT NULL, scope TEXT NOT NULL,
    PRIMARY KEY (bag, msg_id, content_hash, scope)) WITHOUT ROWID;
"""


_DAMAGED = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        db.executescript(_TABLES)
        version = f"{FORMAT}:{__version__}"
        found = db.execute("SELECT value FROM about WHERE key = 'version'").fetchone()
        if found is None or found[0] != version:
            db.executescript(
                "BEGIN; DELETE FROM checked; DELETE FROM covered; DELETE FROM policies;"
                " DELETE FROM applied; COMMIT;"
            )
            db.execute("INSERT OR REPLACE INTO about VALUES ('version', ?)", (version,))
    except sqlite3.Error:
        db.close()
        raise
    return db


def memo_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".due-holds")


def scope_key(scope: Scope) -> str:
    """A digest of what a scope covers, the same in every process (Python's hash is not)."""

    def ids(pattern: IdPattern | None) -> list | None:
        return None if pattern is None else [sorted(pattern.exact), sorted(pattern.globs)]

    def names(values: frozenset[str] | None) -> list | None:
        return None if values is None else sorted(values)

    text = json.dumps(
        [
            names(scope.chat_types),
            ids(scope.senders),
            ids(scope.receivers),
            ids(scope.groups),
            names(scope.message_types),
            scope.sent_since_ms,
            scope.sent_until_ms,
            ids(scope.participants),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def bag_key(sequence: int, tagmanifest_sha256: str | None) -> str | None:
    """A run's bag as the memo knows it; None for one without a tagmanifest (not completed)."""
    return f"{sequence}:{tagmanifest_sha256}" if tagmanifest_sha256 else None


class HoldsMemo:
    """The memo file, open for one `due` call."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @classmethod
    def open(cls, state_path: Path) -> HoldsMemo | None:
        """The memo beside `state_path`, made if missing, emptied if of another version, made
        anew if damaged; None (said with -v) when it cannot be opened or written: the bags are
        then read as before."""
        path = memo_path(state_path)
        conform(path)
        for attempt in (1, 2):
            try:
                return cls(_connect(path))
            except sqlite3.DatabaseError as error:
                if attempt == 1 and error.sqlite_errorcode in _DAMAGED:
                    log.info("%s: damaged (%s), made anew", path, error)
                    with suppress(OSError):
                        path.unlink(missing_ok=True)
                    continue
                log.info("%s: not used (%s): bags are read as if it were not there", path, error)
            except OSError as error:
                log.info("%s: not used (%s): bags are read as if it were not there", path, error)
            return None
        return None

    def checked(self, bags: Iterable[str], scopes: Iterable[str]) -> set[str]:
        """Of `bags`, those whose every message was judged against every scope of `scopes`."""
        wanted = sorted(set(scopes))
        if not wanted:
            return set()
        found = set()
        for bag in bags:
            count = self._db.execute(
                "SELECT count(*) FROM checked WHERE bag = ? AND scope IN"
                " (SELECT value FROM json_each(?))",
                (bag, json.dumps(wanted)),
            ).fetchone()[0]
            if count == len(wanted):
                found.add(bag)
        return found

    def covered(self, bag: str) -> dict[tuple[str, str], set[str]]:
        """The messages of `bag` a checked scope covers: `(msg_id, content_hash)` to scopes."""
        found: dict[tuple[str, str], set[str]] = {}
        for msg_id, content_hash, scope in self._db.execute(
            "SELECT msg_id, content_hash, scope FROM covered WHERE bag = ?", (bag,)
        ):
            found.setdefault((msg_id, content_hash), set()).add(scope)
        return found

    def remember(
        self, bag: str, scopes: Iterable[str], covered: Iterable[tuple[str, str, str]]
    ) -> None:
        """Keeps that every message of `bag` was judged against `scopes`, and which of them
        covers which (`(msg_id, content_hash, scope)`), in one transaction."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO covered VALUES (?, ?, ?, ?)",
                ((bag, *row) for row in covered),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO checked VALUES (?, ?)", ((bag, s) for s in scopes)
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            log.info("what due learnt of %s is not kept (%s)", bag, error)

    def applied(self, bag: str) -> set[str] | None:
        """The scopes of the holds `bag`'s run applied, None when its policy was never read."""
        if self._db.execute("SELECT 1 FROM policies WHERE bag = ?", (bag,)).fetchone() is None:
            return None
        return {
            row[0] for row in self._db.execute("SELECT scope FROM applied WHERE bag = ?", (bag,))
        }

    def remember_applied(self, bag: str, scopes: Iterable[str]) -> None:
        """Keeps the scopes of the holds `bag`'s run applied (open at its reference time)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO applied VALUES (?, ?)", ((bag, s) for s in scopes)
            )
            self._db.execute("INSERT OR IGNORE INTO policies VALUES (?)", (bag,))
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            log.info("which holds %s applied is not kept (%s)", bag, error)

    def close(self) -> None:
        self._db.close()
