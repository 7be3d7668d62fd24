"""The message index's layout (schema 2, `auditor.state_index`): what it costs a message on disk,
and the upgrade in place of a state of schema 1, atomic and keeping every answer.

The schema 1 fixture (tests/fixtures/compat/89593da.tar.gz, see its README) is a chain of two
runs and its state that commit 89593da, the last version of schema 1, wrote."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
from contextlib import closing
from pathlib import Path

import pytest
import run_support
from click.testing import CliRunner

from auditor import pipeline
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit
from auditor.state import RunCompletion
from auditor.state_schema import SCHEMA_VERSION

FIXTURE = Path(__file__).parent / "fixtures" / "compat" / "89593da.tar.gz"
FIXTURE_SCHEMA_2 = FIXTURE.with_name("b4126cf.tar.gz")
SECRET = "index-test-secret"
INDEX = (
    "SELECT msg_id, content_hash, timestamp_ms, retain_until_ms, first_run, last_run, hour_ms,"
    " rule, action, seq FROM messages ORDER BY msg_id, content_hash"
)


@pytest.fixture
def schema1(tmp_path):
    """A fresh copy of the 89593da chain: archive/, state.db, policies.yaml, test-keys/."""
    with tarfile.open(FIXTURE) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(tmp_path, **safe)
    return tmp_path


def auditor(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def version_and_tables(path: Path) -> tuple[int, dict[str, str]]:
    with closing(sqlite3.connect(path)) as db:
        kinds = dict(
            db.execute(
                "SELECT name, type FROM sqlite_master WHERE name LIKE 'messag%' AND type != 'index'"
            )
        )
        return db.execute("PRAGMA user_version").fetchone()[0], kinds


def answers(folder: Path) -> tuple:
    """What the read-only commands and the index say of the chain, the state's file size aside."""
    state = folder / "state.db"
    due = auditor("due", "--state", state, "--on", "2030-01-01", "--format", "json")
    held = auditor("due", "--state", state, "--on", "2026-11-01T03:00:00Z", "--format", "csv")
    shown = auditor("state", "show", "--state", state, "--format", "json")
    assert (due.exit_code, held.exit_code, shown.exit_code) == (0, 0, 0), shown.output
    view = json.loads(shown.output)
    for size in ("file_bytes", "wal_bytes"):
        view.pop(size)
    with closing(sqlite3.connect(state)) as db:
        rows = db.execute(INDEX).fetchall()
    return due.output, held.output, view, rows


def test_a_state_of_schema_1_is_upgraded_in_place_and_answers_as_before(schema1):
    before = answers(schema1)
    assert version_and_tables(schema1 / "state.db") == (1, {"messages": "table"})

    result = auditor("state", "prune", "--state", schema1 / "state.db", "--before", "2000-01-01")

    assert result.exit_code == 0, result.output
    assert version_and_tables(schema1 / "state.db") == (
        SCHEMA_VERSION,
        {"messages": "view", "message_index": "table"},
    )
    assert answers(schema1) == before
    assert len(before[3]) == 16


def test_an_upgrade_killed_before_its_commit_leaves_the_state_of_schema_1_as_it_was(schema1):
    before = answers(schema1)
    env = {**os.environ, "AUDITOR_CRASH_AT": "state.upgraded:1"}
    prune = ["state", "prune", "--state", str(schema1 / "state.db"), "--before", "2000-01-01"]

    killed = subprocess.run([sys.executable, "-m", "auditor", *prune], env=env, timeout=60)

    assert killed.returncode == -signal.SIGKILL
    assert version_and_tables(schema1 / "state.db") == (1, {"messages": "table"})
    assert answers(schema1) == before
    again = auditor(*prune)
    assert again.exit_code == 0, again.output
    assert version_and_tables(schema1 / "state.db")[0] == SCHEMA_VERSION
    assert answers(schema1) == before


def test_a_run_continues_a_chain_of_schema_1_and_archives_nothing_twice(schema1):
    keys = type("Keys", (), {"private_key": schema1 / "test-keys" / "auditor-signing-key.pem"})
    with run_emulator(EmulatorOptions(messages=96, days=1, client_secret=SECRET)) as emulator:
        settings = run_support.settings_for(
            emulator, keys, schema1, SECRET, policy_path=schema1 / "policies.yaml",
            since_ms=DEFAULT_START_MS + 2 * HOUR_MS, until_ms=DEFAULT_START_MS + 6 * HOUR_MS,
        )  # fmt: skip
        outcome = run_audit(settings)
    assert outcome.sequence == 3
    assert outcome.skipped_duplicates == 8  # the hours run 2 archived, known by their hashes
    with closing(sqlite3.connect(schema1 / "state.db")) as db:
        runs = dict(db.execute("SELECT first_run, count(*) FROM messages GROUP BY first_run"))
        assert runs == {1: 8, 2: 8, 3: outcome.records}
        assert db.execute("SELECT count(*) FROM messages WHERE last_run = 3").fetchone()[0] == (
            8 + outcome.records
        )


def index_bytes_a_message(path: Path) -> float:
    """The pages of the message index's tables and indexes (SQLite's `dbstat`), a message."""
    with closing(sqlite3.connect(path)) as db:
        count = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        pages = db.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name NOT IN"
            " ('runs', 'partitions', 'unidentified', 'sqlite_schema')"
            " AND name NOT LIKE 'sqlite_autoindex_runs%' AND name NOT LIKE '%partitions%'"
            " AND name NOT LIKE '%unidentified%'"
        ).fetchone()[0]
    return pages / count


def test_the_index_costs_a_message_under_200_bytes(tmp_path):
    """Schema 1 spent about 270 bytes a message (3 GB a day for 10 million messages a day): the
    hash as 64 hex characters, in the table and again in its key's index, and the rule and
    action spelled out on each row."""
    keys = generate_key_files(tmp_path / "keys", identity="index-test")
    options = EmulatorOptions(messages=3_000, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        settings = run_support.settings_for(
            emulator, keys, tmp_path, SECRET, until_ms=DEFAULT_START_MS + 24 * HOUR_MS,
            attachments="skip", fail_on="none",
        )  # fmt: skip
        run_audit(settings)
    assert index_bytes_a_message(tmp_path / "state.db") < 200


@pytest.fixture(scope="module")
def counted_run(tmp_path_factory):
    """A real run of 2,000 messages, counting the SQLite virtual-machine steps of the commit's
    copy (which load does not change), the parameters sqlite3 ran through its adapters and the
    statements that wrote the run's index rows."""
    folder = tmp_path_factory.mktemp("counted")
    counts = {"steps": 0, "adapted": 0, "inserts": 0}

    def step() -> int:
        counts["steps"] += 1
        return 0

    def adapted(value: bytes) -> bytes:
        counts["adapted"] += 1
        return value

    def traced(statement: str) -> None:
        counts["inserts"] += statement.startswith("INSERT INTO run_messages")

    index, index_hour = RunCompletion._index, pipeline._Archiver._index_hour

    def counted_hour(self, *args):
        self.db.set_trace_callback(traced)
        try:
            index_hour(self, *args)
        finally:
            self.db.set_trace_callback(None)

    def counted(self, *args):
        self.db.set_progress_handler(step, 1)
        try:
            index(self, *args)
        finally:
            self.db.set_progress_handler(None, 1)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunCompletion, "_index", counted)
        patch.setattr(pipeline._Archiver, "_index_hour", counted_hour)
        patch.setitem(sqlite3.adapters, (bytes, sqlite3.PrepareProtocol), adapted)
        keys = generate_key_files(folder / "keys", identity="index-test")
        options = EmulatorOptions(messages=2_000, days=1, client_secret=SECRET)
        with run_emulator(options) as emulator:
            settings = run_support.settings_for(
                emulator, keys, folder, SECRET, until_ms=DEFAULT_START_MS + 24 * HOUR_MS,
                attachments="skip", fail_on="none",
            )  # fmt: skip
            outcome = run_audit(settings)
    assert outcome.records > 1_500
    return folder, outcome, counts


def test_the_commit_copies_a_runs_index_without_a_lookup_a_row(counted_run):
    """The copy found each row's verdict id by a subquery, after a scan of the run's rows for
    pairs `verdicts` lacked: a third of the copy's instructions (bench/README.md, twenty-seventh
    session)."""
    folder, outcome, counts = counted_run
    with closing(sqlite3.connect(folder / "state.db")) as db:
        unnamed = db.execute("SELECT count(*) FROM message_index WHERE verdict IS NULL")
        assert unnamed.fetchone() == (0,)
    assert counts["steps"] / outcome.records < 45  # 61 with the lookup, 38 without


def test_the_run_binds_its_content_hashes_without_sqlite3s_adapter_lookups(counted_run):
    """Python 3.11's sqlite3 sends a `bytes` parameter, unlike a `bytearray`, through its
    adapter protocol: the adapters looked up, then `__adapt__` and `__conform__`, each miss
    raising an AttributeError with its message formatted, about 2,700 instructions a hash
    bound (bench/README.md, twenty-seventh session)."""
    _folder, outcome, counts = counted_run
    assert counts["adapted"] == 0, f"{counts['adapted']} of {outcome.records} records"


def test_the_run_writes_its_index_rows_many_a_statement(counted_run):
    """`executemany` runs its statement once a row: a step, a reset and the GIL released and
    taken again each time, ~4,900 instructions a row more than 64 rows a statement
    (bench/README.md, twenty-seventh session)."""
    _folder, outcome, counts = counted_run
    assert counts["inserts"] < outcome.records / 10  # ~83 rows an hour: 6 statements


def test_the_commit_indexes_by_hour_only_the_rows_served_outside_their_hour(counted_run):
    """Schema 2 indexed every row by the hour that served it, 18 % of the copy's instructions
    (bench/README.md, twenty-seventh session), for one reader, `--recheck`'s look for vanished
    messages, which finds the rest by their send time."""
    folder, outcome, _counts = counted_run
    with closing(sqlite3.connect(folder / "state.db")) as db:
        by_hour = db.execute(
            "SELECT sum(ncell) FROM dbstat WHERE name IN (SELECT name"
            " FROM sqlite_master WHERE type = 'index' AND tbl_name = 'message_index'"
            " AND sql LIKE '%(hour_ms)%')"
        ).fetchone()[0]
        elsewhere = db.execute(
            "SELECT count(*) FROM message_index WHERE hour_ms IS NOT"
            " timestamp_ms - timestamp_ms % 3600000"
        ).fetchone()[0]
    assert by_hour == elsewhere < outcome.records / 10


def test_a_state_of_schema_2_gets_the_hour_index_of_schema_3_and_answers_as_before(tmp_path):
    with tarfile.open(FIXTURE_SCHEMA_2) as archive:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(tmp_path, **safe)
    state = tmp_path / "state.db"
    before = answers(tmp_path)
    assert version_and_tables(state)[0] == 2

    result = auditor("state", "prune", "--state", state, "--before", "2000-01-01")

    assert result.exit_code == 0, result.output
    with closing(sqlite3.connect(state)) as db:
        indexes = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'message_index'"
            " AND sql IS NOT NULL ORDER BY name"
        ).fetchall()
    assert indexes == [("message_index_by_time",), ("message_index_served_elsewhere",)]
    assert version_and_tables(state)[0] == SCHEMA_VERSION == 3
    assert answers(tmp_path) == before
    assert len(before[3]) == 16


def test_a_recheck_finds_gone_the_messages_an_earlier_run_archived_from_another_hour(tmp_path):
    """Every message served in the file of the third hour after its send time: the state's
    hour index holds each row, and the recheck finds by it those the source withholds now
    (rows sent more than an hour before the window are not near it in time)."""
    keys = generate_key_files(tmp_path / "keys", identity="index-test")
    base = dict(messages=600, days=1, client_secret=SECRET, hour_timezone="+3")
    window = dict(since_ms=DEFAULT_START_MS + 3 * HOUR_MS, until_ms=DEFAULT_START_MS + 8 * HOUR_MS)
    with run_emulator(EmulatorOptions(**base)) as original:
        run_audit(run_support.settings_for(original, keys, tmp_path, SECRET, **window))
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        archived = {identity for (identity,) in db.execute("SELECT msg_id FROM messages")}
        early = db.execute(
            "SELECT count(*) FROM messages WHERE timestamp_ms < ?", (DEFAULT_START_MS + HOUR_MS,)
        ).fetchone()[0]
    with run_emulator(EmulatorOptions(**base, late_rate=0.05)) as changed:
        settings = run_support.settings_for(changed, keys, tmp_path, SECRET, recheck=True, **window)
        recheck = run_audit(settings)
        history, faults = changed.history, changed.feed.faults
        withheld = {
            history.msg_id(i)
            for i in history.index_range(DEFAULT_START_MS, window["until_ms"])
            if "msg_id" in history.record(i) and faults.late(i)
        }

    findings = (recheck.bag_path / "data" / "findings.jsonl").read_text().splitlines()
    gone = {json.loads(line)["msg_id"] for line in findings if '"disappeared"' in line}
    assert early > 0
    assert gone and gone == withheld & archived
