"""The transaction that completes a run is written through a rollback journal, not the
write-ahead log (`state._rollback_journal`), so the run's message index is written once, not
into the log and again by the checkpoint. A run killed inside that transaction leaves a hot
journal: `state show` and `due` roll it back before reading (read-only, SQLite refused such a
database; opened `immutable`, it read the killed transaction's pages), and the next run
completes as if nothing had happened."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing

import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.state_reading import reading_state

SECRET = "commit-journal-test-secret"


emulator = run_support.emulator_fixture(SECRET, messages=1_500)


# The journal is the claim, not what a run fetches: an attachment is a request a file, most of a
# run's CPU.
UNFETCHED = ("--attachments", "skip")


def _audit(args: list[str], crash: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    if crash:
        env["AUDITOR_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "auditor", *args], env=env, capture_output=True, timeout=120
    )


def _in_process(args: list[str]):
    """`auditor *args` in this process: for the runs that are not killed, which need no process
    of their own (a start and the run's imports are ~0.8 s of CPU)."""
    return CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})


def _later_hours(args: list[str]) -> list[str]:
    args = list(args)
    for flag, hour in (("--since", 6), ("--until", 12), ("--as-of", 12)):
        args[args.index(flag) + 1] = f"2026-11-01T{hour:02d}:00Z"
    return args


def _messages(state) -> int:
    with closing(sqlite3.connect(state)) as db:
        return db.execute("SELECT count(*) FROM messages").fetchone()[0]


def _show(state) -> dict:
    shown = CliRunner().invoke(main, ["state", "show", "--state", str(state), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)


def test_a_run_killed_while_committing_leaves_a_journal_that_readers_roll_back(emulator, tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="commit-journal-test")
    args = run_support.run_args(
        emulator, keys, tmp_path, "--fail-on", "none", "--workers", "1", *UNFETCHED
    )
    state = tmp_path / "state.db"
    assert _in_process(args).exit_code == 0
    first = _show(state)
    assert not (tmp_path / "state.db-journal").exists()

    killed = _audit(_later_hours(args), crash="state.indexed:1")

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "state.db-journal").stat().st_size > 0  # hot: the index was journalled
    view = _show(state)
    assert [(run["sequence"], run["status"]) for run in view["runs"]] == [
        (1, "completed"),
        (2, "running"),
    ]
    assert view["messages"] == first["messages"]
    due = CliRunner().invoke(main, ["due", "--state", str(state)])
    assert due.exit_code == 0, due.output

    assert _in_process(_later_hours(args)).exit_code == 0
    view = _show(state)
    assert [run["status"] for run in view["runs"]] == ["completed", "completed"]
    assert view["messages"] == _messages(state) > first["messages"]
    assert not (tmp_path / "state.db-journal").exists()
    assert not (tmp_path / "state.db-wal").exists()


# Two runs of the same 40,000 messages: the second's copy updates `last_run` on every page of the
# index, more than SQLite's page cache (2 MB) holds, so some of them reach the database file
# before the kill, as in any rerun over more than about 8,000 archived messages.
_KILLED_IN_THE_SECOND_COPY = """
import sys
from auditor.state import State
state = State(sys.argv[1])
state.db.execute(
    "CREATE TEMP TABLE run_messages (msg_id TEXT NOT NULL, content_hash BLOB NOT NULL,"
    " timestamp_ms INTEGER, retain_until_ms INTEGER, hour_ms INTEGER NOT NULL, verdict INTEGER,"
    " seq INTEGER, PRIMARY KEY (hour_ms, msg_id, content_hash)) WITHOUT ROWID"
)
rows = ((f"{n:018d}", n.to_bytes(32), n, n, 0, 1, n) for n in range(40_000))
state.db.execute("BEGIN")
state.db.executemany("INSERT INTO run_messages VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
state.db.execute("COMMIT")
for sequence in (1, 2):
    state.db.execute(
        "INSERT INTO runs (sequence, status, since_ms, until_ms, started_at,"
        " previous_tagmanifest_sha256, config_digest) VALUES (?, 'running', 0, 1, 0, '0', 'd')",
        (sequence,),
    )
    verdicts = [(1, "default", "delete")] if sequence == 1 else []
    with state.completing_run(
        sequence, "run_messages", in_key_order=True, verdicts=verdicts
    ) as completion:
        completion.commit(record_count=0, finding_count=0, tree_size=0, merkle_root="",
                          tagmanifest_sha256="", bag_path="", outcome={})
"""


def test_readers_do_not_read_the_pages_a_killed_commit_wrote(tmp_path):
    state = tmp_path / "state.db"
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_THE_SECOND_COPY, str(state)],
        env={**os.environ, "AUDITOR_CRASH_AT": "state.indexed:2"},
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "state.db-journal").stat().st_size > 0

    with reading_state(state) as db:
        runs = db.execute("SELECT sequence, status FROM runs ORDER BY sequence").fetchall()
        last = db.execute("SELECT last_run, count(*) FROM messages GROUP BY 1").fetchall()

    assert runs == [(1, "completed"), (2, "running")]
    assert last == [(1, 40_000)]
    assert not (tmp_path / "state.db-journal").exists()
