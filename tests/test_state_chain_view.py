"""The operator's view over a chain of runs: `auditor state show`, `auditor due`, `auditor state
rebuild`, bag paths kept relative, a policy change told, and `auditor scan` of a bag folder.

Two real runs against the emulator: hours 0-6 with the example policy, hours 6-12 with an edited
copy of it (another Policy-SHA256)."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive import layout
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit
from auditor.policies.loading import load_policy
from auditor.resources import example_policy
from auditor.state import State, StateLock

SECRET = "chain-view-test-secret"
INDEX = (
    "SELECT msg_id, content_hash, timestamp_ms, retain_until_ms, first_run, hour_ms, action,"
    " rule, seq FROM messages ORDER BY msg_id, content_hash"
)
RUNS = (
    "SELECT sequence, status, since_ms, until_ms, tagmanifest_sha256,"
    " previous_tagmanifest_sha256, bag_path, policy_sha256, record_count"
    " FROM runs ORDER BY sequence"
)


def rows(path, query):
    with closing(sqlite3.connect(path)) as db:
        return db.execute(query).fetchall()


def copy_db(source, target):
    with closing(sqlite3.connect(source)) as db, closing(sqlite3.connect(target)) as copy:
        db.backup(copy)


# What a state and a chain keep of runs, not what the runs fetch: an attachment is a request a
# file, most of a run's CPU.
UNFETCHED = ("--attachments", "skip")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Keys, two policies, and a chain of two runs; `backup` is the state after run 1."""
    folder = tmp_path_factory.mktemp("chain")
    keys = generate_key_files(folder / "keys", identity="chain-view-test")
    edited = folder / "policies.yaml"
    edited.write_text(example_policy().read_text().replace("keep_for: 6mo", "keep_for: 7mo", 1))
    options = EmulatorOptions(messages=1500, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        first = run_audit(
            run_support.settings_for(emulator, keys, folder, SECRET, attachments="skip")
        )
        copy_db(folder / "state.db", folder / "backup.db")
        second = run_audit(
            run_support.settings_for(
                emulator,
                keys,
                folder,
                SECRET,
                policy_path=edited,
                attachments="skip",
                since_ms=DEFAULT_START_MS + 6 * HOUR_MS,
                until_ms=DEFAULT_START_MS + 12 * HOUR_MS,
            )
        )
    return folder, keys, first, second, options


def invoke(*args):
    return CliRunner().invoke(
        main, [str(arg) for arg in args], env={"EASEMOB_CLIENT_SECRET": SECRET}
    )


# -- policy change -------------------------------------------------------------------------


def test_a_policy_change_between_runs_is_told_once_in_the_second_run(chain):
    folder, _keys, first, second, _options = chain
    old = load_policy(example_policy()).sha256
    assert first.policy_changed_from is None
    assert second.policy_changed_from == old
    findings = [
        json.loads(line)
        for line in (second.bag_path / layout.FINDINGS).read_text().splitlines()
        if '"policy-changed"' in line
    ]
    assert len(findings) == 1
    assert findings[0]["details"]["previous_policy_sha256"] == old
    assert findings[0]["details"]["policy_sha256"] == load_policy(folder / "policies.yaml").sha256
    assert '"policy-changed"' not in (first.bag_path / layout.FINDINGS).read_text()


# -- bag paths ------------------------------------------------------------------------------


def test_the_state_keeps_bag_names_not_absolute_paths(chain):
    folder, _keys, first, second, _options = chain
    stored = [row[6] for row in rows(folder / "state.db", RUNS)]
    assert stored == [first.bag_path.name, second.bag_path.name]


def test_absolute_bag_paths_of_an_older_state_become_names_when_opened(chain, tmp_path):
    folder, _keys, first, _second, _options = chain
    copy = tmp_path / "old.db"
    copy_db(folder / "backup.db", copy)
    with closing(sqlite3.connect(copy)) as db, db:
        db.execute("UPDATE runs SET bag_path = ?", (str(first.bag_path),))
    State(copy).close()
    assert [row[6] for row in rows(copy, RUNS)] == [first.bag_path.name]


def test_a_bag_committed_but_not_published_is_published_after_the_folder_moved(chain, tmp_path):
    """A run killed between its commit and its bag's rename leaves the rename to the next run,
    which found the bag by the path the state stored: once the folder had moved, by an absolute
    path to where it no longer was, so the bag stayed unpublished."""
    _folder, keys, _first, _second, options = chain
    with run_emulator(options) as emulator:
        args = run_support.run_args(
            emulator, keys, tmp_path / "before", "--fail-on", "none", *UNFETCHED
        )
        env = {
            **os.environ,
            "EASEMOB_CLIENT_SECRET": SECRET,
            "AUDITOR_CRASH_AT": "archive.committed:1",
        }
        killed = subprocess.run([sys.executable, "-m", "auditor", *args], env=env, timeout=60)
        assert killed.returncode == -signal.SIGKILL
        (tmp_path / "before").rename(tmp_path / "after")
        moved = [arg.replace(str(tmp_path / "before"), str(tmp_path / "after")) for arg in args]
        rerun = invoke(*moved)
    assert rerun.exit_code == 0, rerun.output
    bags = sorted(path.name for path in (tmp_path / "after" / "archive").glob("run-*"))
    assert bags == ["run-000001-2026110100-2026110106"]
    verified = invoke("verify-chain", tmp_path / "after" / "archive", "--pubkey", keys.public_key)
    assert verified.exit_code == 0, verified.output


# -- state show -------------------------------------------------------------------------------


def test_state_show_lists_runs_head_policy_change_and_sizes(chain):
    folder, _keys, first, second, _options = chain
    state = folder / "state.db"
    before = state.read_bytes()

    table = invoke("state", "show", "--state", state)
    shown = invoke("state", "show", "--state", state, "--format", "json")

    assert table.exit_code == 0, table.output
    assert f"chain head: run 2, tagmanifest sha256 {second.tagmanifest_sha256}" in table.output
    assert first.bag_path.name in table.output and second.bag_path.name in table.output
    assert "* the policy changed since the previous completed run" in table.output
    view = json.loads(shown.output)
    assert [run["sequence"] for run in view["runs"]] == [1, 2]
    assert [run["policy_changed"] for run in view["runs"]] == [False, True]
    assert [run["records"] for run in view["runs"]] == [first.records, second.records]
    assert [run["lost_hours"] for run in view["runs"]] == [0, 0]
    assert view["messages"] == len(rows(state, INDEX))
    assert view["file_bytes"] == state.stat().st_size
    assert state.read_bytes() == before  # read-only: not a byte written
    assert not (folder / "state.db-wal").exists() and not (folder / "state.db-shm").exists()


def test_state_show_and_due_say_busy_while_a_run_holds_the_state(chain):
    folder, _keys, _first, _second, _options = chain
    with StateLock(folder / "state.db"):
        shown = invoke("state", "show", "--state", folder / "state.db")
        due = invoke("due", "--state", folder / "state.db")
    assert shown.exit_code == 4 and due.exit_code == 4
    assert "is busy: a run holds its lock (pid " in shown.output
    assert "Traceback" not in shown.output + due.output


def test_state_show_of_a_missing_state_is_one_line_exit_2(tmp_path):
    result = invoke("state", "show", "--state", tmp_path / "none.db")
    assert result.exit_code == 2
    assert (
        result.output.strip() == f"auditor: error: {tmp_path / 'none.db'}: no state database there"
    )


# -- due --------------------------------------------------------------------------------------


def test_due_lists_the_holds_the_runs_found(chain):
    folder, _keys, first, second, _options = chain
    held = {
        json.loads(line)["msg_id"]
        for bag in (first.bag_path, second.bag_path)
        for line in (bag / layout.FINDINGS).read_text().splitlines()
        if json.loads(line)["category"] == "hold"
    }
    assert held

    result = invoke("due", "--state", folder / "state.db", "--on", "2026-12-01", "--format", "json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {m["msg_id"] for m in report["messages"] if m["verdict"] == "hold"} == held
    assert report["counts"]["hold"] == len(held)
    assert "delete" not in report["counts"]  # nothing's retention ended a month after


def test_due_a_year_and_a_half_on_names_each_deletion_with_its_bag_and_line(chain):
    folder, _keys, _first, _second, _options = chain
    rules = {rule.id: rule.then for rule in load_policy(example_policy()).retention_rules()}
    result = invoke("due", "--state", folder / "state.db", "--on", "2028-06-01", "--format", "json")

    report = json.loads(result.output)
    deletions = [m for m in report["messages"] if m["verdict"] == "delete"]
    assert deletions and report["counts"]["delete"] == len(deletions)
    for message in deletions[:50]:
        assert rules[message["rule"]] == "delete"
        assert message["retain_until"] <= "2028-06-01T23:59:59Z"
        bag = folder / "archive" / message["bag"]
        lines = [
            line
            for path in sorted((bag / layout.RECORDS).glob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]
        assert json.loads(lines[message["seq"]])["record"]["msg_id"] == message["msg_id"]
    csv_out = invoke("due", "--state", folder / "state.db", "--on", "2028-06-01", "--format", "csv")
    header = (
        '\ufeff"verdict","msg_id","retain_until","rule","run","bag","seq","earlier_versions",'
        '"kept_verbatim"'
    )
    assert csv_out.output.splitlines()[0] == header
    assert len(csv_out.output.splitlines()) == 1 + len(report["messages"])


# -- rebuild ----------------------------------------------------------------------------------


def test_rebuild_restores_the_runs_the_head_and_the_message_index(chain, tmp_path):
    folder, keys, _first, _second, _options = chain
    rebuilt = tmp_path / "rebuilt.db"

    result = invoke(
        "state", "rebuild", "--out", folder / "archive", "--state", rebuilt,
        "--pubkey", keys.public_key,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert rows(rebuilt, INDEX) == rows(folder / "state.db", INDEX)
    assert rows(rebuilt, RUNS) == rows(folder / "state.db", RUNS)
    assert rows(rebuilt, "SELECT * FROM unidentified") == rows(
        folder / "state.db", "SELECT * FROM unidentified"
    )


def test_a_day_old_state_rebuilt_continues_the_chain(chain, tmp_path):
    folder, keys, _first, second, options = chain
    work = tmp_path / "work"
    shutil.copytree(folder / "archive", work / "archive")
    copy_db(folder / "backup.db", work / "state.db")  # a day old: knows run 1 only
    with run_emulator(options) as emulator:
        args = run_support.run_args(
            emulator, keys, work, "--until", "2026-11-01T18:00Z", *UNFETCHED, hours=12
        )
        args[args.index("--since") + 1] = "2026-11-01T12:00Z"
        args += ["--as-of", "2026-11-01T18:00Z"]
        refused = invoke(*args)
        assert refused.exit_code == 2 and "holds run 2" in refused.output
        (work / "state.db").unlink()
        rebuilt = invoke(
            "state", "rebuild", "--out", work / "archive", "--state", work / "state.db",
            "--pubkey", keys.public_key,
        )  # fmt: skip
        assert rebuilt.exit_code == 0, rebuilt.output
        third = invoke(*args)
    assert third.exit_code in (0, 1), third.output
    assert "run 3:" in third.output
    verified = invoke("verify-chain", work / "archive", "--pubkey", keys.public_key)
    assert verified.exit_code == 0, verified.output
    assert "intact chain of runs 1 to 3" in verified.output
    assert second.tagmanifest_sha256 in (
        (sorted((work / "archive").glob("run-000003-*"))[0] / "bag-info.txt").read_text()
    )


def test_rebuild_refuses_a_tampered_chain_and_writes_nothing(chain, tmp_path):
    folder, keys, _first, second, _options = chain
    shutil.copytree(folder / "archive", tmp_path / "archive")
    records = sorted((tmp_path / "archive" / second.bag_path.name / layout.RECORDS).glob("*"))[0]
    records.write_bytes(records.read_bytes().replace(b'"seq":', b'"seq" :', 1))

    result = invoke(
        "state", "rebuild", "--out", tmp_path / "archive", "--state", tmp_path / "new.db",
        "--pubkey", keys.public_key,
    )  # fmt: skip

    assert result.exit_code == 1
    assert "the chain does not verify" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "new.db").exists()


def test_rebuild_refuses_to_overwrite_a_state(chain):
    folder, keys, _first, _second, _options = chain
    result = invoke(
        "state", "rebuild", "--out", folder / "archive", "--state", folder / "state.db",
        "--pubkey", keys.public_key,
    )  # fmt: skip
    assert result.exit_code == 2 and "already exists" in result.output


# -- scan of a bag ----------------------------------------------------------------------------


def test_scan_of_a_folder_of_bags_reads_the_archived_records(chain):
    folder, _keys, first, second, _options = chain
    files = sorted((folder / "archive").glob(f"run-*/{layout.RECORDS}/*.jsonl"))

    result = invoke(
        "scan", "--policies", example_policy(), "--now", "2026-11-01T12:00Z", folder / "archive"
    )

    assert result.output.splitlines()[0] == (
        f"{first.records + second.records} records in {len(files)} file(s), 0 unreadable "
        "line(s); reference time 2026-11-01T12:00:00Z"
    )
    assert "no-timestamp" not in result.output


def test_scan_of_one_bag_and_of_one_of_its_record_files_unwraps_the_records(chain):
    _folder, _keys, first, _second, _options = chain
    one = sorted((first.bag_path / layout.RECORDS).glob("*.jsonl"))[0]
    lines = len(one.read_text().splitlines())

    whole = invoke("scan", "--policies", example_policy(), first.bag_path)
    single = invoke("scan", "--policies", example_policy(), one)

    assert whole.output.startswith(f"{first.records} records in ")
    assert single.output.startswith(f"{lines} records in 1 file(s), 0 unreadable line(s)")
    assert "no-timestamp" not in whole.output + single.output


def test_rebuild_reads_the_bags_verify_chain_verified_and_leaves_nothing_on_failure(
    chain, tmp_path
):
    """A folder named like a run that is no bag (an empty `run-000009-x`) is passed over by
    verify-chain, yet rebuild read it as a bag: a bare `[Errno 2]` line, and a
    `.new.db.rebuilding` left behind. A bag renamed `evidence-run-2` verifies but was skipped."""
    folder, keys, _first, second, _options = chain
    shutil.copytree(folder / "archive", tmp_path / "archive")
    (tmp_path / "archive" / "run-000009-empty").mkdir()
    (tmp_path / "archive" / second.bag_path.name).rename(tmp_path / "archive" / "evidence-run-2")

    result = invoke(
        "state", "rebuild", "--out", tmp_path / "archive", "--state", tmp_path / "new.db",
        "--pubkey", keys.public_key,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "rebuilt from 2 run(s)" in result.output
    assert [row[0] for row in rows(tmp_path / "new.db", RUNS)] == [1, 2]
    assert rows(tmp_path / "new.db", INDEX) == rows(folder / "state.db", INDEX)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["archive", "new.db", "new.db.lock"]


def test_a_rebuild_that_fails_midway_leaves_no_partial_database(chain, tmp_path, monkeypatch):
    """A full disk while the index is written: one line, exit 2, and no `.new.db.rebuilding`
    (with its `-wal`) left beside where the state was to be."""
    folder, keys, _first, _second, _options = chain

    def full_disk(*_args):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("auditor.state_rebuild._index_bag", full_disk)
    result = invoke(
        "state", "rebuild", "--out", folder / "archive", "--state", tmp_path / "new.db",
        "--pubkey", keys.public_key,
    )  # fmt: skip

    assert result.exit_code == 2, result.output
    assert result.output == "auditor: error: state database: database or disk is full\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new.db.lock"]


# -- a recorded head (probe 23 #4) ---------------------------------------------------------------


def test_rebuild_of_a_chain_cut_before_the_recorded_head_fails_in_one_line(chain, tmp_path):
    """Run 2's bag deleted: the chain of run 1 verifies and rebuilt, but the head the officer
    recorded after run 2 is not in it."""
    folder, keys, first, second, _options = chain
    shutil.copytree(folder / "archive", tmp_path / "archive")
    shutil.rmtree(tmp_path / "archive" / second.bag_path.name)
    rebuild = (
        "state", "rebuild", "--out", tmp_path / "archive", "--pubkey", keys.public_key,
        "--expect-head",
    )  # fmt: skip

    cut = invoke(*rebuild, second.tagmanifest_sha256, "--state", tmp_path / "cut.db")
    grown = invoke(*rebuild, first.tagmanifest_sha256, "--state", tmp_path / "grown.db")
    bad = invoke(*rebuild, "not-hex", "--state", tmp_path / "bad.db")

    assert cut.exit_code == 1, cut.output
    assert cut.output == (
        f"auditor: error: {tmp_path / 'archive'}: the recorded head {second.tagmanifest_sha256}"
        " is not in the chain, which ends at run 1: the runs after it are missing (their bags"
        " deleted or moved), or this is another chain\n"
    )
    assert not (tmp_path / "cut.db").exists()
    assert grown.exit_code == 0, grown.output  # a chain that still holds the recorded head
    assert bad.exit_code == 2 and "--expect-head: not a sha256" in bad.output


def test_state_show_and_due_check_the_recorded_head(chain):
    folder, _keys, first, second, _options = chain
    backup = folder / "backup.db"  # the state after run 1

    shown_cut = invoke(
        "state", "show", "--state", backup, "--expect-head", second.tagmanifest_sha256
    )
    due_cut = invoke("due", "--state", backup, "--expect-head", second.tagmanifest_sha256)
    shown_ok = invoke("state", "show", "--state", backup, "--expect-head", first.tagmanifest_sha256)

    assert (shown_cut.exit_code, due_cut.exit_code, shown_ok.exit_code) == (1, 1, 0)
    for result in (shown_cut, due_cut):
        assert len(result.output.splitlines()) == 1 and "is not in the chain" in result.output


# -- a damaged state, the JSON's version (probe 23 #5) ----------------------------------------


@pytest.mark.parametrize("command", [["state", "show"], ["due", "--on", "2030-01-01"]])
def test_a_state_damaged_in_its_message_index_is_one_line_and_exit_2(chain, tmp_path, command):
    folder, _keys, _first, _second, _options = chain
    damaged = tmp_path / "damaged.db"
    copy_db(folder / "state.db", damaged)
    with closing(sqlite3.connect(damaged)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (page,) = db.execute(
            "SELECT max(pageno) FROM dbstat WHERE name = 'message_index' AND pagetype = 'leaf'"
        ).fetchone()
    with open(damaged, "r+b") as file:
        file.seek((page - 1) * page_size + 8)
        file.write(b"\xff" * 64)

    result = invoke(*command, "--state", damaged)

    assert result.exit_code == 2, result.output
    assert len(result.output.splitlines()) == 1
    assert "the state database is damaged" in result.output
    assert "auditor state rebuild" in result.output and "Traceback" not in result.output


def test_state_show_json_says_its_format(chain):
    folder, _keys, _first, _second, _options = chain
    result = invoke("state", "show", "--state", folder / "state.db", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["format"] == 1
