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
the scope (`checked`), and which of them it covers (`covered`), as ranges of their lines
(`seq`) in the bag: a hold over a whole bag is one row, not one a message (a hold over a million
messages took 216 MB here, now 28 KB; the call that answered from it 73 s of CPU and 777 MB,
now 40 s and 68 MB, of which 6.6 s and 63 MB a `due` without --policy takes). A later call
whose open holds' scopes were all checked for a bag takes its kept and keep messages from here
(SQLite finds those a range covers by their seq); what `due` lists to act on (delete, review,
expired, no-retention, a released hold) is still read from the bag each time, so a bag changed
since is still caught before anything is deleted.

It is a cache, never the only copy of anything: deleted, unwritable (a read-only folder, a copy
of the state elsewhere) or written by other code, it is rebuilt by reading the bags, as before.
Other code is told by a digest of the source of the modules that decide what a scope covers and
what is learnt here (`MATCHING`), not by a number raised by hand: the auditor's version stays
0.1.0 across sessions, and a change to how scopes match would otherwise answer from entries
the old code learnt. Any edit of them empties it, a comment's too: that costs one reading of the
bags, as the first call did, and a narrower key (their code without comments, a list of the
functions that matter) would either cost a parse each call or miss a change. The state database
itself stays read-only to `due`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import suppress
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from auditor import __version__
from auditor.file_access import conform
from auditor.policies.scope import IdPattern, Scope

log = logging.getLogger(__name__)

MATCHING = (
    "auditor.records",
    "auditor.policies.reading",
    "auditor.policies.scope",
    "auditor.due_holds",
    "auditor.due_memo",
)
"""The modules whose code decides what the memo holds: a record's facts and which scopes cover
them (the first three, which import no other module of the auditor), how a bag's lines are read
and judged, and what is kept of them. A memo written by other code of any of them is emptied."""

_TABLES = """
CREATE TABLE IF NOT EXISTS checked (id INTEGER PRIMARY KEY, bag TEXT NOT NULL,
    scope TEXT NOT NULL, UNIQUE (bag, scope));
CREATE TABLE IF NOT EXISTS policies (bag TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied (bag TEXT NOT NULL, scope TEXT NOT NULL,
    PRIMARY KEY (bag, scope)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS covered (checked INTEGER NOT NULL REFERENCES checked (id),
    first INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (checked, first)) WITHOUT ROWID;
"""
"""`covered` holds, for each bag and scope `checked`, the seqs the scope covers as ranges from
`first` to `last`, both included."""


_DAMAGED = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS about (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            " WITHOUT ROWID"
        )
        version = f"{__version__}:{code_key()}"
        found = db.execute("SELECT value FROM about WHERE key = 'version'").fetchone()
        if found is None or found[0] != version:  # other code's tables, perhaps laid out so too
            dropped = "".join(
                f"DROP TABLE {name};"
                for (name,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'about'"
                )
            )
            db.executescript(f"BEGIN; {dropped} {_TABLES} COMMIT;")
            db.execute("INSERT OR REPLACE INTO about VALUES ('version', ?)", (version,))
    except sqlite3.Error:
        db.close()
        raise
    return db


def sources() -> list[Path]:
    """The source files of `MATCHING`. A compiled module is read as its source beside it (its
    own file is mypyc's small stub, the same whatever the code); one installed without its
    source, as the file Python loaded."""
    found = []
    for name in MATCHING:
        spec = find_spec(name)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is not None:
            source = origin.with_name(name.rpartition(".")[2] + ".py")
            found.append(source if source.is_file() else origin)
    return found


@cache
def code_key() -> str:
    """A digest of `sources()`, which changes by itself when their code does: about 60 KB read
    once a call, well under a millisecond."""
    digest = hashlib.sha256()
    for path in sources():
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


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


class Coverage:
    """The ranges of seqs each scope covers in the bags `rejudge` reads, built as their lines
    come, in order of seq. A range runs over consecutive lines read: the lines between them
    that were not read are those the bag's own run held (listed `hold` on any day, never asked
    of the memo) or without a msg_id (not in the index), so a scope covering every message
    read is one range a bag."""

    def __init__(self, scopes: list[str]) -> None:
        self.scopes = scopes
        self._open: dict[int, dict[int, list[int]]] = {}
        self._ranges: dict[int, dict[str, list[tuple[int, int]]]] = {}

    def see(self, run: int, seq: int, mask: int) -> None:
        """The line `seq` of `run`'s bag read, covered by the scopes whose bit `mask` sets.
        Only the bits set and the ranges open are visited: a line of a policy with hundreds of
        holds costs what one with a few does."""
        current = self._open.get(run)
        if current is None:
            current = self._open[run] = {}
            self._ranges[run] = {scope: [] for scope in self.scopes}
        for bit in [bit for bit in current if not mask >> bit & 1]:
            first, last = current.pop(bit)
            self._ranges[run][self.scopes[bit]].append((first, last))
        while mask:
            low = mask & -mask
            bit = low.bit_length() - 1
            span = current.get(bit)
            if span is None:
                current[bit] = [seq, seq]
            else:
                span[1] = seq
            mask ^= low

    def of(self, run: int) -> dict[str, list[tuple[int, int]]]:
        """Each scope's ranges in `run`'s bag (none for one it covered nowhere)."""
        ranges = self._ranges.get(run, {scope: [] for scope in self.scopes})
        for bit, (first, last) in sorted(self._open.pop(run, {}).items()):
            ranges[self.scopes[bit]].append((first, last))
        return ranges


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

    def ranges_of(self, bag: str) -> Iterator[tuple[str, int, int]]:
        """`(scope, first, last)`: the ranges of seqs of `bag` that each scope checked covers,
        one query a bag however many holds are open."""
        return self._db.execute(
            "SELECT k.scope, c.first, c.last FROM covered c JOIN checked k ON k.id = c.checked"
            " WHERE k.bag = ?",
            (bag,),
        )

    def remember(self, bag: str, covered: dict[str, list[tuple[int, int]]]) -> None:
        """Keeps that every message of `bag` was judged against each scope of `covered`, and
        the ranges of seqs it covers, in one transaction."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for scope, ranges in covered.items():
                self._db.execute(
                    "INSERT OR IGNORE INTO checked (bag, scope) VALUES (?, ?)", (bag, scope)
                )
                (checked,) = self._db.execute(
                    "SELECT id FROM checked WHERE bag = ? AND scope = ?", (bag, scope)
                ).fetchone()
                self._db.executemany(
                    "INSERT OR IGNORE INTO covered VALUES (?, ?, ?)",
                    ((checked, first, last) for first, last in ranges),
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
