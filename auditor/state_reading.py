"""Reading a chain's state database without writing it, and without racing a run.

A run holds an exclusive `flock` on `<state>.lock` and opens the database with SQLite's exclusive
locking, so no other program may read it meanwhile. A reader takes a shared `flock` on the same
file (refused at once while a run, a prune or a rebuild holds it: exit 4, as a second run is),
then opens the database read-only. With no write-ahead log beside it, the database is whole and
opened `immutable` (SQLite then creates no `-wal` or `-shm` file beside it); with one (a run that
was killed), read-only, SQLite reading the log. A run killed while it committed leaves a hot
rollback journal instead (`state.RunCompletion`), which is rolled back first, as the next run
would.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from auditor.archive.untrusted import shown
from auditor.errors import ConfigError, InputError, LockHeldError
from auditor.state_schema import refuse_newer


@contextmanager
def reading_state(state_path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the state database at `state_path`, under a shared lock; a
    SQLite error while it is read is the state's damage (one line, exit 2), whichever query
    meets it."""
    state_path = Path(state_path)
    if not state_path.is_file():
        raise ConfigError(f"{state_path}: no state database there")
    lock_path = state_path.with_name(state_path.name + ".lock")
    with _shared_lock(lock_path, state_path):
        _roll_back_hot_journal(state_path)
        immutable = not Path(f"{state_path}-wal").exists()
        # the name's own bytes, percent-escaped: one that is not UTF-8 is still a name
        uri = f"file:{quote(os.fsencode(state_path.resolve()))}?mode=ro" + (
            "&immutable=1" if immutable else ""
        )
        try:
            db = sqlite3.connect(uri, uri=True)
            db.execute("SELECT count(*) FROM runs").fetchone()
            refuse_newer(db, state_path)
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
                raise _held_open(state_path) from None
            raise ConfigError(f"{state_path}: not a usable state database ({error})") from None
        except sqlite3.DatabaseError as error:
            raise ConfigError(f"{state_path}: not a usable state database ({error})") from None
        try:
            yield db
        except sqlite3.DatabaseError as error:
            raise damaged(state_path, str(error)) from None
        finally:
            db.close()


def _held_open(state_path: Path) -> LockHeldError:
    return LockHeldError(
        f"{state_path}: another program has the state database open; close it, or copy the "
        "file to read it, and run again"
    )


def _roll_back_hot_journal(state_path: Path) -> None:
    """Rolls back the transaction of a run killed while it committed. Read-only, SQLite refuses
    a database with a hot journal (it would have to roll it back), and opened `immutable` it
    reads that transaction's torn pages as if committed. The rollback restores what the state
    held before the transaction began, which is what the next run does first; no committed row
    changes."""
    journal = Path(f"{state_path}-journal")
    try:
        if journal.stat().st_size == 0:  # what a commit in TRUNCATE mode leaves
            return
    except FileNotFoundError:
        return
    try:
        db = sqlite3.connect(state_path, isolation_level=None)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            db.close()
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            raise _held_open(state_path) from None
        raise ConfigError(
            f"{state_path}: a run was stopped while committing, and its journal "
            f"({journal.name}) must be rolled back before the state can be read, which needs "
            f"write access to the state and its folder ({error}); run the audit again, or read "
            "it as a user who may write it"
        ) from None


def check_whole(db: sqlite3.Connection, state_path: Path) -> None:
    """SQLite's `quick_check` (every page and row readable, every index as long as its table;
    not whether each index entry matches its row): a state damaged in its message index used to
    be shown as if whole, and the next run would have trusted it."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        raise damaged(state_path, "; ".join(problems))


def damaged(state_path: Path, why: str) -> InputError:
    """The error of a state found damaged while read, and how to make a whole one."""
    return InputError(
        f"{state_path}: the state database is damaged ({shown(why)}); make a new one from the "
        "bags: auditor state rebuild --out DIR --state NEW.db --pubkey KEY"
    )


@contextmanager
def _shared_lock(lock_path: Path, state_path: Path) -> Iterator[None]:
    try:
        handle = open(lock_path)  # noqa: SIM115 - held while reading
    except FileNotFoundError:  # no run ever locked it (or the lock file was removed)
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip() or "another process"
            raise LockHeldError(
                f"the state database {state_path} is busy: a run holds its lock ({holder}); "
                "wait for it to finish"
            ) from None
        yield
    finally:
        handle.close()
