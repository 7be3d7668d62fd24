"""`State.completing_run`: the message index is copied by a thread of its own, and the run is
completed with it in one commit, or not at all."""

import sqlite3
from contextlib import closing

import pytest

from auditor.state import State
from auditor.state_index import add_rows

ROWS = 20_000
KEEP = [(1, "default", "keep")]  # the verdict the run's rows name, new to the state


def started(tmp_path, table_rows=ROWS):
    """A state with one running run and a temporary table of the messages it archived."""
    state = State(tmp_path / "state.db")
    run = state.begin_run(0, 3_600_000, "digest")
    state.db.execute(
        "CREATE TEMP TABLE run_messages (msg_id TEXT NOT NULL, content_hash BLOB NOT NULL,"
        " timestamp_ms INTEGER, retain_until_ms INTEGER, hour_ms INTEGER, verdict INTEGER,"
        " seq INTEGER, PRIMARY KEY (msg_id, content_hash))"
    )
    state.db.execute("BEGIN")
    state.db.executemany(
        "INSERT INTO run_messages VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((f"{n:018d}", n.to_bytes(32), n, None, 0, 1, n) for n in range(table_rows)),
    )
    state.db.execute("COMMIT")
    return state, run.sequence


def committed(state, sequence):
    return dict(
        record_count=ROWS,
        finding_count=0,
        tree_size=ROWS,
        merkle_root="0" * 64,
        tagmanifest_sha256="1" * 64,
        bag_path="bag",
        outcome={"sequence": sequence},
    )


def seen_after(state):
    """What the next connection (a later run) reads once `state` is closed: only committed rows.
    None reads while it is open: a run holds the database exclusively."""
    state.close()
    with closing(sqlite3.connect(state.path)) as db:
        messages = db.execute("SELECT count(*), min(first_run), max(last_run) FROM messages")
        status = db.execute("SELECT status FROM runs").fetchall()
        return messages.fetchone(), status


def test_the_run_and_every_message_it_archived_are_committed_together(tmp_path):
    state, sequence = started(tmp_path)
    with state.completing_run(sequence, "run_messages", verdicts=KEEP) as completion:
        completion.commit(**committed(state, sequence))
    assert seen_after(state) == ((ROWS, sequence, sequence), [("completed",)])


def test_a_failure_before_the_commit_leaves_the_run_unfinished_and_the_index_untouched(
    tmp_path,
):
    state, sequence = started(tmp_path)
    with (
        pytest.raises(RuntimeError, match="report failed"),
        state.completing_run(sequence, "run_messages"),
    ):
        raise RuntimeError("report failed")
    assert not state.db.in_transaction
    assert state.unfinished().sequence == sequence  # the connection is usable again
    assert seen_after(state) == ((0, None, None), [("running",)])


def test_a_copy_that_fails_is_raised_by_commit_in_the_callers_thread(tmp_path):
    state, sequence = started(tmp_path)
    with (
        pytest.raises(sqlite3.OperationalError, match="no such table: not_there"),
        state.completing_run(sequence, "not_there") as completion,
    ):
        completion.commit(**committed(state, sequence))
    assert seen_after(state) == ((0, None, None), [("running",)])


def test_messages_archived_by_an_earlier_run_keep_their_first_run(tmp_path):
    state, first = started(tmp_path)
    with state.completing_run(first, "run_messages", verdicts=KEEP) as completion:
        completion.commit(**committed(state, first))
    second = state.begin_run(3_600_000, 7_200_000, "digest").sequence
    with state.completing_run(second, "run_messages") as completion:
        completion.commit(**committed(state, second))
    assert seen_after(state)[0] == (ROWS, first, second)


def steps_of(state: State, call) -> tuple[object, int]:
    """What `call()` returns and how many SQLite virtual-machine steps (of 100) it took."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    state.db.set_progress_handler(count, 100)
    try:
        return call(), steps
    finally:
        state.db.set_progress_handler(None, 100)


@pytest.mark.parametrize("indexed", [0, 1_000, 50_000])
def test_the_archived_msg_id_range_is_read_at_the_ends_of_the_index_whatever_its_size(
    tmp_path, indexed
):
    """Every run asks it first: with months of runs in the index, a scan of the whole index
    made each hourly run slower than the last."""
    state = State(tmp_path / "state.db")
    state.db.execute("BEGIN")
    add_rows(
        state.db,
        ((f"{n:018d}", f"{n:064x}", n, None, 1, 1, None, None, None, None) for n in range(indexed)),
    )
    state.db.execute("COMMIT")

    found, steps = steps_of(state, state.archived_id_range)

    assert found == ((f"{0:018d}", f"{indexed - 1:018d}") if indexed else (None, None))
    assert steps <= 1


def test_a_verdict_id_taken_meanwhile_fails_the_commit_rather_than_misname_rows(tmp_path):
    """A run numbers its new (rule, action) pairs after those the state held as it began
    (`RunVerdicts`); under the run's lock no one else can take them, and if one did, the
    rows must not be committed naming another pair."""
    state, sequence = started(tmp_path)
    state.db.execute("INSERT INTO verdicts (id, rule, action) VALUES (1, 'legal', 'hold')")
    with (
        pytest.raises(sqlite3.IntegrityError),
        state.completing_run(sequence, "run_messages", verdicts=KEEP) as completion,
    ):
        completion.commit(**committed(state, sequence))
    assert seen_after(state) == ((0, None, None), [("running",)])
