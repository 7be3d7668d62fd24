"""The run's memory between invocations: SQLite tables of runs, partitions and archived messages,
and the lock that keeps two runs off one state.

Runs chain to each other through this database: the next run's previous-tagmanifest hash and
sequence number come from the last completed run. The message index (`msg_id`, content hash, first
and last run seen) lets a run archive a message once across overlapping windows and notice a
message whose content changed, or that disappeared, at the source.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePath

from auditor import crashpoints, state_verbatim
from auditor.errors import ConfigError, LockHeldError, os_reason
from auditor.file_access import conform
from auditor.fsutil import fsync_ancestors, fsync_dir, fsync_path
from auditor.state_index import INDEX_TABLE, is_table, lay_out
from auditor.state_schema import SCHEMA_VERSION, mark_current, refuse_newer

GENESIS = "0" * 64

_SCHEMA = """
-- runs: `outcome` is the finished run's summary, JSON; `relook_*` the hours it fetched a second
-- time for records that reached the source late; `settled_until_ms` the end of the chain's hours
-- fetched for good after it.
CREATE TABLE IF NOT EXISTS runs (
    sequence INTEGER PRIMARY KEY,
    status TEXT NOT NULL,               -- running | completed | failed
    since_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    record_count INTEGER,
    finding_count INTEGER,
    tree_size INTEGER,
    merkle_root TEXT,
    tagmanifest_sha256 TEXT,
    previous_tagmanifest_sha256 TEXT NOT NULL,
    bag_path TEXT,
    config_digest TEXT NOT NULL,
    outcome TEXT,
    relook_since_ms INTEGER,
    relook_until_ms INTEGER,
    settled_until_ms INTEGER,
    policy_sha256 TEXT                  -- the policy the run applied: its Policy-SHA256, or with
                                        -- term files one digest over it and them
);
CREATE TABLE IF NOT EXISTS partitions (
    sequence INTEGER NOT NULL REFERENCES runs(sequence),
    start_ms INTEGER NOT NULL,
    status TEXT NOT NULL,               -- done
    record_count INTEGER NOT NULL,
    spool_sha256 TEXT NOT NULL,
    PRIMARY KEY (sequence, start_ms)
);
CREATE TABLE IF NOT EXISTS unidentified (
    content_hash TEXT PRIMARY KEY,      -- a record without a msg_id, by its content
    first_run INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Columns later versions added to a table, for a state database an earlier version made.
_ADDED_COLUMNS = {
    "runs": (
        "relook_since_ms INTEGER",
        "relook_until_ms INTEGER",
        "settled_until_ms INTEGER",
        "policy_sha256 TEXT",
    ),
    "messages": ("hour_ms INTEGER", "action TEXT", "rule TEXT", "seq INTEGER"),  # schema 0
}


@dataclass(frozen=True, slots=True)
class RunRecord:
    sequence: int
    status: str
    since_ms: int
    until_ms: int
    previous_tagmanifest_sha256: str
    config_digest: str
    tagmanifest_sha256: str | None = None
    bag_path: str | None = None
    record_count: int | None = None
    started_at_ms: int = 0
    relook_since_ms: int | None = None
    relook_until_ms: int | None = None
    settled_until_ms: int | None = None
    policy_sha256: str | None = None

    def bag_in(self, out_dir: Path) -> Path | None:
        """Where this run's bag is, in the folder of bags `out_dir`: the state keeps the bag's
        name only (older versions kept the absolute path, which broke when the folder moved)."""
        return Path(out_dir) / PurePath(self.bag_path).name if self.bag_path else None

    @property
    def relook(self) -> tuple[int, int] | None:
        """The hours this run fetches again for records that reached the source late."""
        if self.relook_since_ms is None or self.relook_until_ms is None:
            return None
        return self.relook_since_ms, self.relook_until_ms


# Beside the bags of a folder, as `<state>.lock` is beside its state database.
BAG_FOLDER_LOCK = ".auditor-run.lock"


class StateLock:
    """An exclusive `flock` on `<state>.lock` (or on `lock_path`, for what else a run must own
    alone); the kernel frees it when its holder dies, so a lock left by a killed run is taken over
    at once, and the file says who holds a live one."""

    def __init__(self, state_path: Path, lock_path: Path | None = None) -> None:
        self.path = lock_path or state_path.with_name(state_path.name + ".lock")
        self.locked = state_path
        self._handle = None

    @classmethod
    def of_bag_folder(cls, out_dir: Path) -> StateLock:
        """The lock on a folder of bags: two runs (of two state databases) writing bags into one
        folder at once would race for the same names and leave neither bag."""
        return cls(out_dir, out_dir / BAG_FOLDER_LOCK)

    def acquire(self) -> None:
        make_folder_of(self.path)
        try:
            handle = open(self.path, "a+")  # noqa: SIM115 - held for the life of the run
        except OSError as error:  # a folder this user may not write: Python's line names no why
            raise ConfigError(
                f"{self.path}: cannot open it to lock {self.locked} ({os_reason(error)})"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LockHeldError(
                f"another run holds the lock on {self.locked} ({holder}); wait for it to finish"
            ) from None
        try:
            _say_who_holds(handle)
        except OSError as error:  # a full disk: the write names no file
            with suppress(OSError):  # closing flushes the same write and fails again
                handle.close()
            raise OSError(error.errno, os_reason(error), str(self.path)) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            # Clearing who held it is a courtesy: on a disk turned read-only it fails, and from
            # `__exit__` that error would replace the one that stopped the run.
            with suppress(OSError):
                self._handle.seek(0)
                self._handle.truncate()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            with suppress(OSError):
                self._handle.close()
            self._handle = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


def _say_who_holds(handle) -> None:
    handle.seek(0)
    handle.truncate()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
    handle.flush()


def roll_back(db: sqlite3.Connection) -> None:
    """Rolls back the open transaction, if any, on the way out of an error. SQLite has rolled
    back already after some errors (a full disk, its temporary files' disk included), and a
    second ROLLBACK would fail and replace the error that matters."""
    if db.in_transaction:
        with suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def make_folder_of(path: Path) -> None:
    """Creates the folder `path` goes in. A file where a folder is needed is named as such:
    mkdir says only "File exists" or "Not a directory", of a path that is not the culprit."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        files = (p for p in reversed(path.parents) if p.exists() and not p.is_dir())
        blocker = next(files, path.parent)
        raise ConfigError(
            f"{path}: cannot create its folder: {blocker} is a file, not a folder"
        ) from None
    except OSError as error:  # a folder this user may not write: Python's line names no why
        raise ConfigError(f"{path}: cannot create its folder ({os_reason(error)})") from None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


class State:
    """The SQLite state database of one source's chain of runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        make_folder_of(self.path)
        if self.path.is_dir():
            raise ConfigError(f"{self.path}: is a folder, not a state database file")
        for suffix in ("", "-journal", "-wal", "-shm"):  # SQLite gives new journals the file's mode
            conform(self.path.with_name(self.path.name + suffix))
        try:
            # `completing_run` hands the connection to one thread of its own for a while.
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Exclusive locking keeps the WAL index in this process's memory, not in a mapped
            # `-shm` file: on a nearly full disk, a page of that file that could not be allocated
            # killed the run with SIGBUS (exit 135) instead of SQLite's "disk is full". The cost:
            # no other program may have the file open during a run.
            self.db.executescript(
                "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            )
            refuse_newer(self.db, self.path)
            self.db.executescript(_SCHEMA)
            _add_columns(self.db)
            moved = lay_out(self.db, SCHEMA_VERSION)
            self.db.executescript(state_verbatim.TABLE)
            _relative_bag_paths(self.db)
            mark_current(self.db)
            if moved:
                self.db.execute("VACUUM")  # the earlier table's pages, back to the file system
        except sqlite3.OperationalError as error:  # the file system refused, not the file
            if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:  # "database is locked"
                raise LockHeldError(
                    f"{self.path}: another program has the state database open (an sqlite3 "
                    "shell, a backup or monitoring script?); a run needs it alone: close that "
                    "program, or copy the file to read it, and run again"
                ) from None
            raise ConfigError(
                f"{self.path}: cannot open the state database for writing ({error}): is its disk "
                "full or read-only, or its folder not writable by this user?"
            ) from None
        except sqlite3.DatabaseError as error:
            raise ConfigError(f"{self.path}: not a usable state database ({error})") from None
        self._identity = _identity(self.path)

    def close(self) -> None:
        self.db.close()

    def committed_durably(self, sequence: int) -> None:
        """Flushes the commit that completed run `sequence` to disk, then checks the file is
        still the state (`ensure_in_place`). With `synchronous=NORMAL` a WAL commit is written,
        not synced: a power cut after the bag is published lost it, and every later run then
        refused the folder, whose newest bag the state did not hold. The folder is synced too,
        with those above it: a file's fsync does not make its name durable, and the WAL is made
        anew each run (the state's own folder may be new as well)."""
        with suppress(FileNotFoundError):  # no WAL: a checkpoint synced it all
            fsync_path(f"{self.path}-wal")
        folder = self.path.parent
        fsync_dir(folder)
        fsync_ancestors(folder)
        self.ensure_in_place(sequence)

    def ensure_in_place(self, sequence: int) -> None:
        """Refuses to go on when the file at `path` is no longer the one this connection writes:
        a state deleted or replaced during run `sequence` holds none of it, and publishing its
        bag would have the next run number a second bag `sequence`."""
        if _identity(self.path) != self._identity:
            raise ConfigError(
                f"{self.path}: the state database was deleted or replaced during run {sequence}, "
                "so the run is recorded nowhere and its bag was not published; put back the state "
                "database (a backup taken after the out folder's newest run was published) and "
                "run again, or start a new chain, with a new out folder and a new state database"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            roll_back(self.db)
            raise
        self.db.execute("COMMIT")

    # -- runs ---------------------------------------------------------------------------------

    def last_completed(self) -> RunRecord | None:
        row = self.db.execute(
            "SELECT * FROM runs WHERE status = 'completed' ORDER BY sequence DESC LIMIT 1"
        ).fetchone()
        return self._run(row)

    def unfinished(self) -> RunRecord | None:
        row = self.db.execute(
            "SELECT * FROM runs WHERE status = 'running' ORDER BY sequence DESC LIMIT 1"
        ).fetchone()
        return self._run(row)

    def run(self, sequence: int) -> RunRecord | None:
        return self._run(
            self.db.execute("SELECT * FROM runs WHERE sequence = ?", (sequence,)).fetchone()
        )

    def _run(self, row) -> RunRecord | None:
        if row is None:
            return None
        names = [column[0] for column in self.db.execute("SELECT * FROM runs LIMIT 0").description]
        values = dict(zip(names, row, strict=True))
        return RunRecord(
            sequence=values["sequence"],
            status=values["status"],
            since_ms=values["since_ms"],
            until_ms=values["until_ms"],
            previous_tagmanifest_sha256=values["previous_tagmanifest_sha256"],
            config_digest=values["config_digest"],
            tagmanifest_sha256=values["tagmanifest_sha256"],
            bag_path=values["bag_path"],
            record_count=values["record_count"],
            started_at_ms=values["started_at"],
            relook_since_ms=values["relook_since_ms"],
            relook_until_ms=values["relook_until_ms"],
            settled_until_ms=values["settled_until_ms"],
            policy_sha256=values["policy_sha256"],
        )

    def begin_run(
        self,
        since_ms: int,
        until_ms: int,
        config_digest: str,
        planned: Callable[[RunRecord | None, int], tuple[tuple[int, int] | None, int | None]]
        | None = None,
        now_ms: int | None = None,
        policy_sha256: str | None = None,
    ) -> RunRecord:
        """Starts the next run of the chain at `now_ms` (this machine's clock by default), or
        resumes an unfinished one with the same window and settings. An unfinished run with other
        settings is abandoned; one with other bounds only (an `--incremental` run started again
        later) is replaced by a run that keeps its start, as its spooled hours are reused: they
        were fetched, and judged, then.

        `planned(last_completed, started_at_ms)` gives a new run its re-looked hours and the
        chain's settled end after it; a resumed run keeps the ones it began with, so it fetches
        the hours it spooled before."""
        with self.transaction() as db:
            pending = self.unfinished()
            if pending and (pending.since_ms, pending.until_ms, pending.config_digest) == (
                since_ms,
                until_ms,
                config_digest,
            ):
                return pending
            if pending:
                db.execute("DELETE FROM partitions WHERE sequence = ?", (pending.sequence,))
                db.execute("DELETE FROM runs WHERE sequence = ?", (pending.sequence,))
            last = self.last_completed()
            sequence = last.sequence + 1 if last else 1
            previous = last.tagmanifest_sha256 if last else GENESIS
            started = now_ms if now_ms is not None else int(time.time() * 1000)
            if pending and pending.config_digest == config_digest:
                started = min(started, pending.started_at_ms)
            relook, settled = planned(last, started) if planned else (None, None)
            db.execute(
                "INSERT INTO runs (sequence, status, since_ms, until_ms, started_at,"
                " previous_tagmanifest_sha256, config_digest, relook_since_ms, relook_until_ms,"
                " settled_until_ms, policy_sha256)"
                " VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sequence,
                    since_ms,
                    until_ms,
                    started,
                    previous,
                    config_digest,
                    *(relook or (None, None)),
                    settled,
                    policy_sha256,
                ),
            )
        return self.run(sequence)  # type: ignore[return-value]

    @contextmanager
    def completing_run(
        self,
        sequence: int,
        messages_table: str,
        unidentified_table: str | None = None,
        *,
        in_key_order: bool = False,
        verdicts: Iterable[tuple[int, str | None, str | None]] = (),
        verbatim: Iterable[tuple] = (),
    ) -> Iterator[RunCompletion]:
        """Opens the transaction that completes run `sequence` and copies the messages it archived
        into the index, in the background, while the caller finishes its bag; the caller then
        calls `commit` on what it yields. Leaving the block without it rolls everything back.

        `messages_table` is the connection's temporary table of `(msg_id, content_hash,
        timestamp_ms, retain_until_ms, hour_ms, verdict, seq)`, the hash as its 32 bytes and the
        verdict an id in `verdicts` (`state_index.RunVerdicts`), that the run filled while
        archiving; `verdicts` the (id, rule, action) rows new to `verdicts` that it names; and
        `unidentified_table` one of the `(content_hash)` of records without a msg_id. Copying is one
        SQL statement, which SQLite runs without Python's GIL, so it costs the run no time while
        the caller renders the report; the state still changes in one transaction, committed
        only once the bag is signed. `verbatim` holds the rows of `state_verbatim.TABLE_NAME`
        of the messages the run kept verbatim (rare), added in the same transaction.

        The rows are copied in the index's key order (msg_id, content hash), so that each one
        lands beside the one before in the index's B-tree rather than on a random page; a caller
        whose table, read in its own order, is already in that order says `in_key_order` and
        saves SQLite the sort.
        """
        completion = RunCompletion(
            self.db,
            sequence,
            messages_table,
            lambda: self.committed_durably(sequence),
            unidentified_table,
            in_key_order,
            verdicts,
            verbatim,
        )
        try:
            yield completion
        finally:
            completion.close()

    def completed_outcome(self, since_ms: int, until_ms: int, digest: str) -> dict | None:
        """The outcome of a completed run of exactly this window and these settings, if any."""
        row = self.db.execute(
            "SELECT outcome FROM runs WHERE status = 'completed' AND since_ms = ? AND until_ms = ?"
            " AND config_digest = ? ORDER BY sequence DESC LIMIT 1",
            (since_ms, until_ms, digest),
        ).fetchone()
        if not (row and row[0]):
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return {}  # `RunOutcome.from_dict` reports the damage

    # -- partitions ---------------------------------------------------------------------------

    def done_partitions(self, sequence: int) -> dict[int, tuple[int, str]]:
        rows = self.db.execute(
            "SELECT start_ms, record_count, spool_sha256 FROM partitions WHERE sequence = ?",
            (sequence,),
        )
        return {start: (count, digest) for start, count, digest in rows}

    def partition_done(self, sequence: int, start_ms: int, record_count: int, digest: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO partitions VALUES (?, ?, 'done', ?, ?)",
            (sequence, start_ms, record_count, digest),
        )

    # -- message index ------------------------------------------------------------------------

    def messages_before(self, before_ms: int, due_on_ms: int) -> tuple[int, int, int]:
        """How many index entries are of messages sent before `before_ms`: those `prune` may
        forget (`_FORGOTTEN`), and of the others those `auditor due` still needs on `due_on_ms`
        (`_NEEDED_BY_DUE`) and those it lists then for deletion or review."""
        forgotten = _FORGOTTEN.format(action="action")
        needed = _NEEDED_BY_DUE.format(action="action")
        found = [
            self.db.execute(
                f"SELECT count(*) FILTER (WHERE {forgotten}),"
                f" count(*) FILTER (WHERE NOT {forgotten} AND {needed}),"
                f" count(*) FILTER (WHERE NOT {forgotten} AND NOT {needed})"
                f" FROM {table} WHERE timestamp_ms < :before",
                {"before": before_ms, "on": due_on_ms},
            ).fetchone()
            for table in ("messages", _VERBATIM_ROWS)  # the index's, and those kept verbatim
        ]
        forgettable, needed_, pending = (sum(column) for column in zip(*found, strict=True))
        return forgettable, needed_, pending

    def archived_id_range(self) -> tuple[str | None, str | None]:
        """The least and greatest msg_id in the index ((None, None) when it is empty), read at
        the two ends of its key: asked as one `min(), max()`, SQLite scans the whole index, a
        cost that grew with every run of a chain."""
        least, greatest = self.db.execute(
            "SELECT (SELECT min(msg_id) FROM messages), (SELECT max(msg_id) FROM messages)"
        ).fetchone()
        return least, greatest

    def prune_messages(self, before_ms: int, due_on_ms: int) -> int:
        """Forgets the messages sent before `before_ms` that `_FORGOTTEN` names on `due_on_ms`,
        and returns how many (see `prune`)."""
        with self.transaction() as db:
            return sum(
                db.execute(
                    f"DELETE FROM {table} WHERE timestamp_ms < :before"
                    f" AND {_FORGOTTEN.format(action=_ACTION_OF_ROW)}",
                    {"before": before_ms, "on": due_on_ms},
                ).rowcount
                for table in (INDEX_TABLE, state_verbatim.TABLE_NAME)
            )

    def unidentified_archived(self, contents: list[str]) -> set[str]:
        """Which of these contents of records without a msg_id an earlier run archived."""
        found: set[str] = set()
        for start in range(0, len(contents), 500):
            batch = contents[start : start + 500]
            found.update(
                row[0]
                for row in self.db.execute(
                    "SELECT content_hash FROM unidentified"
                    f" WHERE content_hash IN ({','.join('?' * len(batch))})",
                    batch,
                )
            )
        return found

    def runs(self) -> list[dict]:
        cursor = self.db.execute("SELECT * FROM runs ORDER BY sequence")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]


def _add_columns(db: sqlite3.Connection) -> None:
    """Adds the columns a state database made by an earlier version lacks (NULL in old rows)."""
    for table, columns in _ADDED_COLUMNS.items():
        if not is_table(db, table):  # `messages` since schema 2: a view (`state_index`)
            continue
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


def _relative_bag_paths(db: sqlite3.Connection) -> None:
    """Keeps, of the bag paths an earlier version stored absolute, the bag's name: a bag is
    always in its chain's out folder, and an absolute path broke when that folder moved."""
    rows = db.execute("SELECT sequence, bag_path FROM runs WHERE bag_path LIKE '%/%'").fetchall()
    if rows:
        db.executemany(
            "UPDATE runs SET bag_path = ? WHERE sequence = ?",
            [(PurePath(path).name, sequence) for sequence, path in rows],
        )


def config_digest(settings: dict) -> str:
    """A stable digest of the settings that shape a run's bytes (not of secrets)."""
    import hashlib

    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


_NEEDED_BY_DUE = "coalesce(retain_until_ms > :on, retain_until_ms IS NULL AND {action} IS 'hold')"
"""An index entry `auditor due` lists or will list after `:on`: its retention (or hold) has not
ended, or an open-ended hold holds it. `due` answers from the index alone, so an entry pruned
before its retention ends is never listed for deletion, and a held one drops out of the holds
(probe months25 #2: the README's monthly prune at 200 days hid every one-year rule's deletions).
0 or 1, never NULL: `NOT` of a NULL kept a row neither counted nor forgotten. `{action}` is the
row's action: the view's column, or `_ACTION_OF_ROW` in `INDEX_TABLE`."""
_FORGOTTEN = (
    f"((NOT {_NEEDED_BY_DUE} AND retain_until_ms IS NOT NULL AND {{action}} IS 'keep')"
    " OR (msg_id IN (SELECT msg_id FROM temp.carried_out)"
    " AND coalesce(retain_until_ms <= :on, 1)))"
)
"""An entry `prune` forgets: one `due` no longer lists on `:on` (its retention has ended and
its rule says keep), or one the listing given as carried out named for deletion or review whose
retention has ended (or that has none). Any other whose retention has ended is due for deletion
or review, and forgetting it would drop from `due` a deletion not yet done (probe months25 #2).
A named one the index holds under a hold without an end is forgotten too: only `due --policy`
with that hold released lists it so."""
_ACTION_OF_ROW = "(SELECT action FROM verdicts v WHERE v.id = verdict)"  # in `INDEX_TABLE`
_VERBATIM_ROWS = (
    f"(SELECT x.msg_id, x.timestamp_ms, x.retain_until_ms, v.action FROM"
    f" {state_verbatim.TABLE_NAME} x LEFT JOIN verdicts v ON v.id = x.verdict)"
)
"""The messages kept verbatim (`state_verbatim`) with the columns `_FORGOTTEN` reads."""


@dataclass(frozen=True, slots=True)
class PruneOutcome:
    before_ms: int
    messages: int
    kept: int
    dry_run: bool
    needed: int = 0
    """Of the messages sent before `before_ms`, those kept because `due` still needs them."""
    pending: int = 0
    """Of the messages sent before `before_ms`, those kept because `due` lists them for deletion
    or review and no listing given as carried out names them."""


def prune(
    state_path: Path,
    before_ms: int,
    dry_run: bool = False,
    due_on_ms: int | None = None,
    carried_out: Iterable[str] = (),
) -> PruneOutcome:
    """Forgets, in the message index, every message sent before `before_ms` but those `auditor
    due` still lists on `due_on_ms` (default now): retention not ended, held, or due for
    deletion or review, unless `carried_out` (the msg_ids of the listing the officer acted on)
    names it.

    The index keeps a message from being archived by two runs and tells which ones changed or
    vanished at the source; it grows by about 180 B a message and is never needed for a message
    the source no longer serves. The bags keep every message whatever is pruned; runs, chain and
    checkpoints are untouched. A message without a timestamp is kept. Pruned messages that the
    source still serves would be archived again by a run over their window. Takes the run lock,
    so it never races a run, and gives the freed pages back to the file system.
    """
    if not Path(state_path).exists():
        raise ConfigError(f"{state_path}: no state database there")
    with StateLock(Path(state_path)):
        state = State(Path(state_path))
        try:
            on_ms = int(time.time() * 1000) if due_on_ms is None else due_on_ms
            state.db.execute(
                "CREATE TABLE temp.carried_out (msg_id TEXT PRIMARY KEY) WITHOUT ROWID"
            )
            state.db.executemany(
                "INSERT OR IGNORE INTO temp.carried_out VALUES (?)", ((i,) for i in carried_out)
            )
            total = state.db.execute("SELECT count(*) FROM messages").fetchone()[0]
            total += state_verbatim.count(state.db)
            count, needed, pending = state.messages_before(before_ms, on_ms)
            if not dry_run and count:
                state.prune_messages(before_ms, on_ms)
                state.db.execute("VACUUM")
        finally:
            state.close()
    return PruneOutcome(before_ms, count, total - count, dry_run, needed, pending)


# SQLite's page cache while a run's index is copied in msg_id order (`RunCompletion`). At a
# million rows in random order the copy took 16.8-21.4 s of CPU with the default 2 MB, 10.7 with
# 16 MiB, 10.0 with 32 and 12.0 with 64, the process's peak growing by about twice the cache
# (the sorter works in as much memory): +36, +70, +140 MB.
_SORTED_COPY_CACHE_KIB = 16 * 1024


def _rollback_journal(db: sqlite3.Connection) -> bool:
    """Puts the state in rollback-journal mode with full syncs for the transaction that completes
    a run; whether it is. Under the write-ahead log the index's pages were written twice, into
    the log and by the checkpoint into the database (at a million messages 280 MB each, the
    commit's checkpoint 0.8-0.9 s of CPU and 4-4.5 s of wall time beside the copy's 2.8 s of
    CPU), while a rollback journal keeps only the pages the transaction changes that existed
    before it: an ordered run's new pages are written once, into the database. `FULL` syncs the
    journal before the database is written and the database before the journal is truncated,
    so the commit is durable when COMMIT returns (`committed_durably` then syncs the folder).
    A run killed meanwhile leaves a hot journal, which the next opening of the state rolls back
    (`state_reading` does for a reader). Only the main database: the run's tables are `temp`."""
    mode = db.execute("PRAGMA main.journal_mode = TRUNCATE").fetchone()[0]
    if mode != "truncate":
        return False
    db.execute("PRAGMA main.synchronous = FULL")
    return True


def _write_ahead_log(db: sqlite3.Connection) -> None:
    """The state's usual mode again, as `State` opens it."""
    db.execute("PRAGMA main.journal_mode = WAL")
    db.execute("PRAGMA main.synchronous = NORMAL")


_ADD_VERDICT = "INSERT INTO verdicts (id, rule, action) VALUES (?, ?, ?)"


class RunCompletion:
    """The transaction that completes a run: the message index copied by a thread of its own
    (`State.completing_run`), then the run's row updated and everything committed by `commit`.

    The connection belongs to that thread until `commit` or `close` joins it; the caller must
    not use the state meanwhile.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        sequence: int,
        messages_table: str,
        in_place: Callable[[], None] = lambda: None,
        unidentified_table: str | None = None,
        in_key_order: bool = False,
        verdicts: Iterable[tuple[int, str | None, str | None]] = (),
        verbatim: Iterable[tuple] = (),
    ) -> None:
        self.db = db
        self._verdicts = list(verdicts)
        self._verbatim = list(verbatim)
        self._order = "" if in_key_order else " ORDER BY msg_id, content_hash"
        self._cache_was: int | None = None
        self.sequence = int(sequence)
        self._in_place = in_place
        self.committed = False
        self._error: BaseException | None = None
        self._journalled = _rollback_journal(db)
        self.db.execute("BEGIN IMMEDIATE")
        self._copy = threading.Thread(
            target=self._index,
            args=(messages_table, unidentified_table),
            name="state-index",
            daemon=True,
        )
        self._copy.start()

    def _index(self, messages_table: str, unidentified_table: str | None) -> None:
        try:
            if self._order:
                # Rows in msg_id order are in no order of time, so each lands on a random page
                # of the time index's newest part, about 40 bytes a row: with SQLite's
                # default 2 MB cache nearly every row read and wrote a page (its sorter, too,
                # works in no more memory than the cache)
                self._cache_was = self.db.execute("PRAGMA cache_size").fetchone()[0]
                self.db.execute(f"PRAGMA cache_size = -{_SORTED_COPY_CACHE_KIB}")
            if unidentified_table:
                self.db.execute(
                    "INSERT OR IGNORE INTO unidentified (content_hash, first_run)"
                    f" SELECT content_hash, {self.sequence} FROM {unidentified_table}"
                )
            self.db.executemany(_ADD_VERDICT, self._verdicts)
            self.db.executemany(state_verbatim.INSERT, self._verbatim)
            self.db.execute(
                f"INSERT INTO {INDEX_TABLE} (msg_id, content_hash, timestamp_ms, retain_until_ms,"
                " first_run, last_run, hour_ms, verdict, seq) SELECT msg_id, content_hash,"
                f" timestamp_ms, retain_until_ms, {self.sequence}, {self.sequence}, hour_ms,"
                f" verdict, seq FROM {messages_table}"
                f" WHERE true{self._order} ON CONFLICT (msg_id, content_hash) DO UPDATE"
                " SET last_run = excluded.last_run"
            )
            crashpoints.reached("state.indexed")
        except BaseException as error:  # re-raised by `commit`, in the caller's thread
            self._error = error

    def _join(self) -> None:
        self._copy.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def commit(
        self,
        *,
        record_count: int,
        finding_count: int,
        tree_size: int,
        merkle_root: str,
        tagmanifest_sha256: str,
        bag_path: str,
        outcome: dict,
    ) -> None:
        """Marks the run completed, with the messages it indexed, in one commit; raises when the
        state database was deleted or replaced meanwhile, the commit then being lost with it."""
        self._join()
        self.db.execute(
            "UPDATE runs SET status = 'completed', finished_at = ?, record_count = ?,"
            " finding_count = ?, tree_size = ?, merkle_root = ?, tagmanifest_sha256 = ?,"
            " bag_path = ?, outcome = ? WHERE sequence = ?",
            (
                int(time.time() * 1000),
                record_count,
                finding_count,
                tree_size,
                merkle_root,
                tagmanifest_sha256,
                bag_path,
                json.dumps(outcome),
                self.sequence,
            ),
        )
        self.db.execute("COMMIT")
        self.committed = True
        self._restore_cache()
        self._restore_wal()
        self._in_place()

    def _restore_wal(self) -> None:
        """Back to the write-ahead log; a failure leaves the connection journalled, as safe
        and only slower, and `State` opens the next run in WAL anyway."""
        if self._journalled:
            self._journalled = False
            with suppress(sqlite3.Error):
                _write_ahead_log(self.db)

    def _restore_cache(self) -> None:
        if self._cache_was is not None:
            self.db.execute(f"PRAGMA cache_size = {int(self._cache_was)}")
            self._cache_was = None

    def close(self) -> None:
        """Rolls back what was not committed, stopping the copy if it still runs."""
        if self.committed:
            return
        if self._copy.is_alive():
            self.db.interrupt()
        self._copy.join()
        roll_back(self.db)
        self._restore_cache()
        self._restore_wal()
