"""`auditor state prune`: the message index forgets old messages, and nothing else changes."""

import json
import sqlite3
from contextlib import closing

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS, format_instant
from auditor.pipeline import run_audit
from auditor.state import StateLock

SECRET = "prune-test-secret"
CUT = DEFAULT_START_MS + 3 * HOUR_MS


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """A six-hour run's folder: keys, state and bag."""
    folder = tmp_path_factory.mktemp("audited")
    keys = generate_key_files(folder / "keys", identity="prune-test")
    options = EmulatorOptions(messages=1200, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        outcome = run_audit(run_support.settings_for(emulator, keys, folder, SECRET))
    return folder, keys, outcome


def index_rows(state_path):
    with closing(sqlite3.connect(state_path)) as db:
        return db.execute("SELECT msg_id, timestamp_ms FROM messages ORDER BY msg_id").fetchall()


def held_open_ended(state_path):
    with closing(sqlite3.connect(state_path)) as db:
        return set(
            db.execute(
                "SELECT msg_id, timestamp_ms FROM messages"
                " WHERE action = 'hold' AND retain_until_ms IS NULL"
            )
        )


def copy_state(audited, tmp_path):
    folder, _keys, _outcome = audited
    copy = tmp_path / "state.db"
    with (
        closing(sqlite3.connect(folder / "state.db")) as source,
        closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)
    return copy


def test_prune_forgets_exactly_the_messages_sent_before_the_cut(audited, tmp_path):
    """All but those an open-ended hold holds, when every retention has ended (--on)."""
    state_path = copy_state(audited, tmp_path)
    before = index_rows(state_path)
    held = held_open_ended(state_path)
    older = [row for row in before if row[1] is not None and row[1] < CUT and row not in held]
    cut = format_instant(CUT)

    result = CliRunner().invoke(
        main, ["state", "prune", "--state", str(state_path), "--before", cut, "--on", "2099-01-01"]
    )

    assert result.exit_code == 0, result.output
    needed = sum(1 for row in held if row[1] < CUT)
    assert result.output == (
        f"{state_path}: forgot {len(older):,} message(s) sent before {cut}; "
        f"{len(before) - len(older):,} kept in the index ({needed:,} sent before it, which "
        "`auditor due` still needs: retention not ended, or held)\n"
    )
    assert older and needed and index_rows(state_path) == [r for r in before if r not in older]


def due_counts(state_path, on="2099-01-01"):
    result = CliRunner().invoke(
        main, ["due", "--state", str(state_path), "--on", on, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])["counts"]


def test_prune_keeps_what_due_still_needs(audited, tmp_path):
    """A message whose retention has not ended, or that a hold holds, stays in the index: `due`
    answers from it alone, and would never list it for deletion, or among the holds (probe
    months25 #2: a monthly prune at 200 days hid every one-year rule's deletions)."""
    state_path = copy_state(audited, tmp_path)
    counts = due_counts(state_path)
    assert counts["delete"] and counts["hold"]

    result = CliRunner().invoke(
        main, ["state", "prune", "--state", str(state_path), "--before", str(CUT + HOUR_MS)]
    )

    assert result.exit_code == 0, result.output
    assert due_counts(state_path) == counts
    assert "which `auditor due` still needs" in result.output


def test_a_dry_run_counts_and_changes_nothing(audited, tmp_path):
    state_path = copy_state(audited, tmp_path)
    before = index_rows(state_path)

    result = CliRunner().invoke(
        main,
        ["state", "prune", "--state", str(state_path), "--before", str(CUT), "--dry-run"],
    )

    assert result.exit_code == 0
    assert "would forget" in result.output
    assert index_rows(state_path) == before


def test_the_runs_and_their_chain_are_untouched(audited, tmp_path):
    state_path = copy_state(audited, tmp_path)
    with closing(sqlite3.connect(state_path)) as db:
        runs = db.execute("SELECT * FROM runs").fetchall()
        partitions = db.execute("SELECT * FROM partitions").fetchall()

    CliRunner().invoke(main, ["state", "prune", "--state", str(state_path), "--before", str(CUT)])

    with closing(sqlite3.connect(state_path)) as db:
        assert db.execute("SELECT * FROM runs").fetchall() == runs
        assert db.execute("SELECT * FROM partitions").fetchall() == partitions
    assert runs and partitions


def test_prune_refuses_while_a_run_holds_the_lock(audited, tmp_path):
    state_path = copy_state(audited, tmp_path)
    before = index_rows(state_path)

    with StateLock(state_path):
        result = CliRunner().invoke(
            main, ["state", "prune", "--state", str(state_path), "--before", str(CUT)]
        )

    assert result.exit_code == 4
    assert result.output.startswith("auditor: error: another run holds the lock")
    assert index_rows(state_path) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--before", "last tuesday"], "--before: "),
        (["--state", "missing.db", "--before", "2026-01-01"], "missing.db: no state database"),
    ],
)
def test_a_bad_cut_or_a_missing_database_is_one_line_and_exit_2(tmp_path, arguments, message):
    result = CliRunner().invoke(main, ["state", "prune", *arguments], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.output.startswith(f"auditor: error: {message}")
    assert result.output.count("\n") == 1
