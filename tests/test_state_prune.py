"""`auditor state prune`: the message index forgets old messages, and nothing else changes."""

import csv
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
from auditor.resources import example_policy
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


@pytest.mark.parametrize("form", ["csv", "json"])
def test_prune_forgets_exactly_the_messages_sent_before_the_cut(audited, tmp_path, form):
    """All but those `due` still lists (every one due for deletion or review on --on, and those
    an open-ended hold holds), once the deletions listed are recorded as carried out."""
    state_path = copy_state(audited, tmp_path)
    before = index_rows(state_path)
    held = held_open_ended(state_path)
    older = [row for row in before if row[1] is not None and row[1] < CUT and row not in held]
    listing = due_listing(state_path, tmp_path / f"due.{form}", "--format", form)
    cut = format_instant(CUT)

    result = prune(state_path, "--before", cut, "--on", "2099-01-01", "--carried-out", str(listing))

    assert result.exit_code == 0, result.output
    needed = sum(1 for row in held if row[1] < CUT)
    assert result.output == (
        f"{state_path}: forgot {len(older):,} message(s) sent before {cut}; "
        f"{len(before) - len(older):,} kept in the index ({needed:,} sent before it, which "
        "`auditor due` still needs: retention not ended, or held)\n"
    )
    assert older and needed and index_rows(state_path) == [r for r in before if r not in older]


def prune(state_path, *args):
    return CliRunner().invoke(main, ["state", "prune", "--state", str(state_path), *map(str, args)])


def due_listing(state_path, path, *extra, on="2099-01-01"):
    """What `due` lists on `on`, as the CSV the officer acts on."""
    result = CliRunner().invoke(
        main, ["due", "--state", str(state_path), "--on", on, "--format", "csv", *extra]
    )  # a later --format in `extra` wins
    assert result.exit_code == 0, result.output
    path.write_text(result.stdout, encoding="utf-8")
    return path


def pending_before_cut(state_path, on_ms=4_070_908_800_000):
    """The index rows sent before CUT whose deletion or review `due` lists on 2099-01-01."""
    with closing(sqlite3.connect(state_path)) as db:
        return set(
            db.execute(
                "SELECT msg_id, timestamp_ms FROM messages WHERE timestamp_ms < ?"
                " AND retain_until_ms <= ? AND action IN ('delete', 'review')",
                (CUT, on_ms),
            )
        )


def test_prune_keeps_a_deletion_due_until_told_it_was_carried_out(audited, tmp_path):
    """A message whose retention has ended stays while `due` lists it for deletion: forgetting
    it dropped its `delete` row, a deletion not yet carried out (probe months25 #2)."""
    state_path = copy_state(audited, tmp_path)
    pending = pending_before_cut(state_path)
    counts = due_counts(state_path)
    assert pending and counts["delete"]

    result = prune(state_path, "--before", format_instant(CUT), "--on", "2099-01-01")

    assert result.exit_code == 0, result.output
    assert due_counts(state_path) == counts
    assert pending <= set(index_rows(state_path))
    assert f"{len(pending):,} due for deletion or review by the index" in result.output
    assert "--carried-out" in result.output


def test_carried_out_forgets_only_the_deletions_the_listing_names(audited, tmp_path):
    """The officer acted on a listing from which one deletion was left out (done later): that
    one stays, the others are forgotten."""
    state_path = copy_state(audited, tmp_path)
    pending = pending_before_cut(state_path)
    listing = due_listing(state_path, tmp_path / "due.csv")
    lines = listing.read_text(encoding="utf-8").splitlines(keepends=True)
    left_out = sorted(pending)[0]
    listing.write_text("".join(line for line in lines if left_out[0] not in line))

    result = prune(
        state_path, "--before", format_instant(CUT), "--on", "2099-01-01", "--carried-out", listing
    )

    assert result.exit_code == 0, result.output
    remaining = set(index_rows(state_path))
    assert pending & remaining == {left_out}
    assert "1 due for deletion or review by the index" in result.output


def test_carried_out_keeps_what_the_listing_held_under_a_hold_added_since(audited, tmp_path):
    """`due --policy CURRENT.yaml` listed user0013's messages as held by a hold added after the
    run, so they were not deleted: the listing given as carried out does not forget them."""
    folder = audited[0]
    state_path = copy_state(audited, tmp_path)
    current = tmp_path / "current.yaml"
    current.write_text(
        example_policy()
        .read_text()
        .replace(
            "holds:\n",
            "holds:\n  - id: matter-2027-001\n    reason: added after the run\n"
            "    scope:\n      participant: [user0013]\n    starts: 2027-01-01\n",
            1,
        )
    )
    listing = due_listing(
        state_path, tmp_path / "due.csv", "--policy", str(current), "--out", str(folder / "archive")
    )
    with listing.open(encoding="utf-8-sig", newline="") as file:
        held = {
            row["msg_id"].strip('="')
            for row in csv.DictReader(file)
            if (row["verdict"], row["rule"]) == ("hold", "matter-2027-001")
        }
    kept = {row for row in pending_before_cut(state_path) if row[0] in held}
    assert kept

    result = prune(
        state_path, "--before", format_instant(CUT), "--on", "2099-01-01", "--carried-out", listing
    )

    assert result.exit_code == 0, result.output
    assert kept <= set(index_rows(state_path))
    assert f"{len(kept):,} due for deletion or review by the index" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("msg_id\n1\n", "not a listing of `auditor due`"),
        ('{"messages": [{"msg_id": 1}]}', "not a listing of `auditor due`"),
        ("\x00\xff", "not a listing of `auditor due`"),
    ],
)
def test_a_carried_out_file_that_is_not_a_due_listing_is_one_line_and_exit_2(
    audited, tmp_path, text, message
):
    state_path = copy_state(audited, tmp_path)
    before = index_rows(state_path)
    listing = tmp_path / "listing.csv"
    listing.write_text(text)

    result = prune(state_path, "--before", format_instant(CUT), "--carried-out", str(listing))

    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"auditor: error: {listing}: {message}")
    assert result.output.count("\n") == 1
    assert index_rows(state_path) == before


def test_a_json_listing_cut_short_forgets_nothing(audited, tmp_path):
    """Read a message at a time, the listing's first rows reach the prune before its fault is
    met: the prune still forgets none of them, and says so in one line."""
    state_path = copy_state(audited, tmp_path)
    before = index_rows(state_path)
    listing = due_listing(state_path, tmp_path / "due.json", "--format", "json")
    text = listing.read_text(encoding="utf-8")
    listing.write_text(text[: text.index('"verdict": "delete"') + 2000], encoding="utf-8")

    result = prune(
        state_path, "--before", format_instant(CUT), "--on", "2099-01-01", "--carried-out", listing
    )

    assert result.exit_code == 2, result.output
    assert result.output == (
        f"auditor: error: {listing}: not a listing of `auditor due` (not JSON); give the CSV or "
        "JSON it wrote, whose deletions and reviews were carried out\n"
    )
    assert index_rows(state_path) == before


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


def test_carried_out_forgets_a_released_holds_messages_once_deleted(audited, tmp_path):
    """The index holds the custodians' messages under a hold without an end; legal released
    it since (`ends:`), `due --policy` listed them for deletion, and they were deleted: the
    listing given as carried out forgets them, though the index alone would keep them held."""
    folder = audited[0]
    state_path = copy_state(audited, tmp_path)
    held = {row for row in held_open_ended(state_path) if row[1] < CUT}
    released = tmp_path / "released.yaml"
    text = example_policy().read_text()
    released.write_text(text.replace("    # ends: 2027-06-30", "    ends: 2027-06-30", 1))
    listing = due_listing(
        state_path,
        tmp_path / "due.csv",
        "--policy",
        str(released),
        "--out",
        str(folder / "archive"),
    )
    assert held

    result = prune(
        state_path, "--before", format_instant(CUT), "--on", "2099-01-01", "--carried-out", listing
    )

    assert result.exit_code == 0, result.output
    assert not held & set(index_rows(state_path))
    assert "still needs" not in result.output and "deletion or review" not in result.output
