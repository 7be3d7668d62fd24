"""What the operator's environment does to a run: a state database lost or replaced beside its
bags, SIGTERM, a full disk or a file where a folder should be, and how secrets are redacted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
import run_support
from click.testing import CliRunner

from auditor import crashpoints
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.sources.easemob import EasemobClient

SECRET = "state-and-signals-secret"


emulator = run_support.emulator_fixture(SECRET, messages=300)


@pytest.fixture(scope="module")
def slow_emulator():
    """Every answer 0.5 s late, so a run of a few hours is still going when it is signalled,
    with seconds to spare on a busy machine."""
    options = EmulatorOptions(
        messages=300, days=1, client_secret=SECRET, slow_rate=1.0, slow_seconds=0.5
    )
    with run_emulator(options) as running:
        yield running


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


def run_args(emulator, keys, folder: Path, *extra: str, hours: int = 2, since: int = 0):
    args = run_support.run_args(emulator, keys, folder, "--attachments", "skip", "--quiet", *extra)
    args[args.index("--since") + 1] = f"2026-11-01T{since:02d}:00Z"
    args[args.index("--until") + 1] = f"2026-11-01T{since + hours:02d}:00Z"
    return args


def invoke(args: list[str], secret: str = SECRET):
    env = {"EASEMOB_CLIENT_SECRET": secret, "EASEMOB_CLIENT_SECRET_FILE": None}
    return CliRunner().invoke(main, args, env=env)


def one_error_line(result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditor: error: "), result.stderr
    return lines[0].removeprefix("auditor: error: ")


def bags(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "archive").iterdir() if not p.name.startswith("."))


def remove_state(folder: Path) -> None:
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        (folder / name).unlink(missing_ok=True)


def verify_chain(keys, folder: Path):
    return invoke(["verify-chain", str(folder / "archive"), "--pubkey", str(keys.public_key)])


# -- #9: a state database behind its folder of bags -------------------------------------------


def empty_state(folder: Path) -> None:
    remove_state(folder)
    (folder / "state.db").write_bytes(b"")


@pytest.mark.parametrize("lose", [remove_state, empty_state], ids=["deleted", "emptied"])
def test_a_lost_state_beside_finished_bags_is_refused_not_a_second_chain(
    emulator, keys, tmp_path, lose
):
    assert invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none")).exit_code == 0
    lose(tmp_path)

    again = invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none", since=2))

    message = one_error_line(again, 2)
    assert message == (
        f"{tmp_path / 'archive'} holds run 1 (run-000001-2026110100-2026110102) but the state "
        f"database {tmp_path / 'state.db'} records no completed run; restore a backup of the "
        "state database taken after run 1 was published; without one, start a new chain, with a "
        "new out folder and a new state database (another out folder alone would continue this "
        "chain from the old state and fork it)"
    )
    assert bags(tmp_path) == ["run-000001-2026110100-2026110102"]


def test_a_state_restored_from_an_older_backup_is_refused(emulator, keys, tmp_path):
    assert invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none")).exit_code == 0
    backup = (tmp_path / "state.db").read_bytes()
    assert invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none", since=2)).exit_code == 0
    remove_state(tmp_path)
    (tmp_path / "state.db").write_bytes(backup)

    again = invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none", since=4))

    assert "holds run 2 (" in one_error_line(again, 2)
    assert "records runs only up to 1;" in again.stderr
    assert verify_chain(keys, tmp_path).exit_code == 0


def test_a_state_deleted_during_a_run_fails_before_its_bag_is_published(
    emulator, keys, tmp_path, monkeypatch
):
    reached = crashpoints.reached

    def delete_at_signing(name: str) -> None:
        if name == "archive.signed":
            remove_state(tmp_path)
        reached(name)

    monkeypatch.setattr(crashpoints, "reached", delete_at_signing)
    result = invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none"))

    assert one_error_line(result, 2) == (
        f"{tmp_path / 'state.db'}: the state database was deleted or replaced during run 1, so "
        "the run is recorded nowhere and its bag was not published; put back the state database "
        "(a backup taken after the out folder's newest run was published) and run again, or "
        "start a new chain, with a new out folder and a new state database"
    )
    assert bags(tmp_path) == []
    monkeypatch.setattr(crashpoints, "reached", reached)
    assert invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none")).exit_code == 0
    assert bags(tmp_path) == ["run-000001-2026110100-2026110102"]
    assert verify_chain(keys, tmp_path).exit_code == 0


def auditor(*args: str, crash: str | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    env.pop("EASEMOB_CLIENT_SECRET_FILE", None)
    env.pop("AUDITOR_CRASH_AT", None)
    if crash:
        env["AUDITOR_CRASH_AT"] = crash
    command = [sys.executable, "-m", "auditor", *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
    )


@pytest.mark.parametrize("crash", ["archive.signed:1", "archive.committed:1"])
def test_a_run_killed_around_its_commit_still_resumes_to_one_bag(emulator, keys, tmp_path, crash):
    """The refusals above must not mistake what a killed run leaves (a `.partial` bag, or a
    committed run whose bag is not renamed yet) for a lost state. The killed run is a process of
    its own; the rerun, which only resumes, runs in process (a start and the run's imports are
    ~0.8 s of CPU)."""
    args = run_args(emulator, keys, tmp_path, "--fail-on", "none")
    assert auditor(*args, crash=crash).wait(timeout=30) == -signal.SIGKILL

    rerun = invoke(args)

    assert rerun.exit_code == 0, rerun.output
    assert bags(tmp_path) == ["run-000001-2026110100-2026110102"]
    assert verify_chain(keys, tmp_path).exit_code == 0


# -- #10: SIGTERM as SIGINT ------------------------------------------------------------------


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(n) for n in (task / "children").read_text().split())
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def done_partitions(state: Path) -> int:
    try:
        with closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
            return db.execute("SELECT count(*) FROM partitions").fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    ("number", "group", "code", "line"),
    [
        (signal.SIGTERM, False, 143, "auditor: terminated"),
        (signal.SIGTERM, True, 143, "auditor: terminated"),
        (signal.SIGINT, False, 130, "auditor: interrupted"),
    ],
    ids=["sigterm-parent", "sigterm-process-group", "sigint-parent"],
)
def test_a_signal_stops_a_run_cleanly_with_its_exit_code_and_a_rerun_completes(
    slow_emulator, keys, tmp_path, number, group, code, line
):
    """`kill PID` signals the parent alone; systemd and Kubernetes signal every process."""
    args = run_args(slow_emulator, keys, tmp_path, "--workers", "2", hours=4)
    args += ["--fail-on", "none"]
    args.remove("--quiet")
    run = auditor(*args, start_new_session=True)
    progress = run_support.StderrLines(run)
    progress.wait_for_hours(1)
    wait_for(lambda: len(children(run.pid)) >= 2)
    workers = children(run.pid)

    if group:
        os.killpg(run.pid, number)
    else:
        run.send_signal(number)
    run.wait(timeout=10)

    assert run.returncode == code
    assert progress.rest() == [f"{line}\n"]
    assert not [pid for pid in workers if alive(pid)]
    assert bags(tmp_path) == []
    kept = done_partitions(tmp_path / "state.db")
    assert 1 <= kept < 4
    rerun = auditor(*args)
    _out, err = rerun.communicate(timeout=30)
    assert rerun.returncode == 0, err.decode()
    (bag,) = bags(tmp_path)
    verified = invoke(["verify", str(tmp_path / "archive" / bag), "--pubkey", str(keys.public_key)])
    assert verified.exit_code == 0 and "intact" in verified.output


def test_exit_codes_130_and_143_are_in_the_help():
    shown = CliRunner().invoke(main, ["--help"]).output
    assert "130  interrupted by SIGINT" in shown and "143  terminated by SIGTERM" in shown


# -- #13: what the system refuses, with the file named ----------------------------------------


def test_a_file_where_the_state_folder_should_be_is_named(emulator, keys, tmp_path):
    (tmp_path / "afile").write_text("not a folder\n")
    args = run_args(emulator, keys, tmp_path)
    args[args.index("--state") + 1] = str(tmp_path / "afile" / "state.db")

    assert one_error_line(invoke(args), 2) == (
        f"{tmp_path / 'afile' / 'state.db'}: cannot create its folder: {tmp_path / 'afile'} is "
        "a file, not a folder"
    )


def test_a_sqlite_error_names_the_state_database(emulator, keys, tmp_path):
    assert invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none")).exit_code == 0
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("ALTER TABLE runs DROP COLUMN outcome")

    again = invoke(run_args(emulator, keys, tmp_path, "--fail-on", "none"))

    assert one_error_line(again, 2) == (
        f"state database: {tmp_path / 'state.db'}: no such column: outcome"
    )


def test_a_full_disk_names_the_folder_being_written(emulator, keys, tmp_path, full_disk):
    args = run_args(emulator, keys, tmp_path)
    args[args.index("--out") + 1] = str(full_disk / "archive")

    assert one_error_line(invoke(args), 2) == (
        f"the disk is full under the run's bag and spool ({full_disk / 'archive'}): "
        "[Errno 28] No space left on device"
    )


# -- #15: redaction ----------------------------------------------------------------------------


def test_a_one_letter_secret_leaves_the_wrong_secret_message_readable(emulator, tmp_path):
    window = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z"]
    connection = ["--base-url", emulator.base_url, "--org", "demo-org", "--app", "demo-app"]
    args = ["pull", *window, "--out", str(tmp_path), *connection, "--client-id", "demo-client"]

    assert one_error_line(invoke(args, secret="a"), 2) == (
        f"wrong client id or secret for demo-org/demo-app at {emulator.base_url} (check "
        "--client-id and the client secret, from EASEMOB_CLIENT_SECRET, "
        "EASEMOB_CLIENT_SECRET_FILE, or the config's client_secret_file, or an app's "
        "client_secret_env "
        "under apps:)"
    )


def test_secrets_are_redacted_in_one_pass_whole_and_short_ones_where_they_stand_alone():
    client = EasemobClient("http://127.0.0.1:9", "o", "a", "c", "a")
    client._secrets = (*client._secrets, "YWMt-token-redacted", "YWMt-token")

    text = client._redact("demo-app got a, then YWMt-token-redacted and YWMt-token!")

    assert text == "demo-app got <redacted>, then <redacted> and <redacted>!"
