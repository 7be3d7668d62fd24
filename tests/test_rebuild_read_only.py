"""`auditor state rebuild` from a folder of bags this process may only read: legal's copy,
mounted read-only or owned by another user, where the run lock cannot be taken."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.pipeline import run_audit

SECRET = "rebuild-read-only-test-secret"
INDEX = "SELECT msg_id, content_hash, retain_until_ms, first_run, action, rule FROM messages"
RUNS = "SELECT sequence, since_ms, until_ms, tagmanifest_sha256, bag_path FROM runs"
AUDITOR = [sys.executable, "-m", "auditor"]


def rows(path: Path, query: str) -> list:
    with closing(sqlite3.connect(path)) as db:
        return sorted(db.execute(query).fetchall())


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain")
    keys = generate_key_files(folder / "keys", identity="rebuild-read-only-test")
    with run_emulator(EmulatorOptions(messages=600, days=1, client_secret=SECRET)) as emulator:
        run_audit(run_support.settings_for(emulator, keys, folder, SECRET))
    return folder, keys


def read_only(folder: Path, *command: str) -> subprocess.CompletedProcess:
    """`command` with `folder` bound read-only over itself, in a user and mount namespace of
    its own: chmod stops no write by root, which the tests may run as, and a read-only bind
    does, whoever runs them (the kernel must allow unprivileged user namespaces)."""
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    wrapped = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    probe = subprocess.run([*wrapped, str(folder), "touch", str(folder / ".probe")], check=False)
    if probe.returncode == 0 or (folder / ".probe").exists():
        pytest.skip("no read-only bind here (unshare or mount refused, or the bind wrote)")
    return subprocess.run(
        [*wrapped, str(folder), *command], capture_output=True, text=True, check=False
    )


def test_rebuild_from_a_read_only_folder_of_bags(chain, tmp_path):
    folder, keys = chain
    rebuilt = tmp_path / "rebuilt.db"

    result = read_only(
        folder / "archive",
        *AUDITOR, "state", "rebuild", "--out", str(folder / "archive"), "--state", str(rebuilt),
        "--pubkey", str(keys.public_key),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert rows(rebuilt, INDEX) == rows(folder / "state.db", INDEX)
    assert rows(rebuilt, RUNS) == rows(folder / "state.db", RUNS)


def test_a_bag_published_while_an_unlocked_rebuild_reads_stops_it(chain, tmp_path, monkeypatch):
    """Without the lock a run may publish meanwhile (the folder's owner may write it): the
    rebuild sees the folder's entries change and writes nothing."""
    folder, keys = chain
    archive = tmp_path / "archive"
    subprocess.run(["cp", "-a", str(folder / "archive"), str(archive)], check=True)
    monkeypatch.setattr("auditor.state_rebuild._may_lock", lambda _folder: False)
    index_bag = __import__("auditor.state_rebuild", fromlist=["_index_bag"])._index_bag

    def publishing(*args):
        (archive / "run-000002-published-meanwhile").mkdir(exist_ok=True)
        return index_bag(*args)

    monkeypatch.setattr("auditor.state_rebuild._index_bag", publishing)
    result = CliRunner().invoke(
        main,
        ["state", "rebuild", "--out", str(archive), "--state", str(tmp_path / "new.db"),
         "--pubkey", str(keys.public_key)],
    )  # fmt: skip

    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"auditor: error: {archive}: its bags changed while they were read (a run published "
        "there?); nothing was written: rebuild again once no run writes there"
    ]
    assert not [
        p.name
        for p in tmp_path.iterdir()
        if p.name.startswith(("new.db", ".new.db")) and p.name != "new.db.lock"
    ]
