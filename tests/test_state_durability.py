"""The commit that completes a run reaches the disk before its bag is published (probe 20 #1).

The state runs SQLite's WAL at `synchronous=NORMAL`: a commit is written to `state.db-wal`, not
synced. A power cut right after the bag's rename kept the bag and lost the commit, and every
later run then refused the folder (its newest bag is a run the state does not hold). The test
reads the order of the system calls of a real run, as the probe did with strace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import ConfigError
from auditor.state import State

SECRET = "durability-secret"


@pytest.fixture(scope="module")
def emulator():
    with run_emulator(EmulatorOptions(messages=300, days=1, client_secret=SECRET)) as running:
        yield running


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_the_completing_commit_is_synced_before_the_bag_is_renamed_into_place(emulator, tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="test")
    trace = tmp_path / "trace.txt"
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", hours=2)
    command = [sys.executable, "-m", "auditor", *args]
    strace = ["strace", "-f", "-y", "-qq", "-o", str(trace)]
    calls = "fsync,fdatasync,write,pwrite64,rename,renameat,renameat2"
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}

    done = subprocess.run(
        [*strace, "-e", f"trace={calls}", *command], env=env, capture_output=True, text=True
    )

    assert done.returncode in (0, 1), done.stderr
    lines = trace.read_text().splitlines()
    wal = str(tmp_path / "state.db-wal")
    published = [
        number
        for number, line in enumerate(lines)
        if re.search(r"rename(at2?)?\(.*\.run-\d{6}-[^/\"]*\.partial.*\"[^\"]*/run-\d{6}-", line)
    ]
    assert len(published) == 1, "the bag's rename into place"
    before = lines[: published[0]]
    writes = [
        n
        for n, line in enumerate(before)
        if re.search(rf"write64\(\d+<{wal}>|write\(\d+<{wal}>", line)
    ]
    syncs = [n for n, line in enumerate(before) if re.search(rf"f(data)?sync\(\d+<{wal}>", line)]
    assert writes, "the completing commit writes the WAL"
    assert syncs and syncs[-1] > writes[-1], "the WAL synced after its last write, before the bag"


def test_a_state_on_a_read_only_disk_is_named_as_such_not_as_a_damaged_database(full_disk):
    """SQLite's refusals to write (read-only, full, no permission) said "not a usable state
    database", which sends an operator to restore a backup of an intact file (probe 20 #5)."""
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(full_disk)], capture_output=True)
    if remounted.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remounted.stderr.decode().strip()}")

    with pytest.raises(ConfigError) as refused:
        State(full_disk / "state.db")

    assert "cannot open the state database for writing" in str(refused.value)
    assert "not a usable" not in str(refused.value)


def test_a_folder_given_as_the_state_is_named_a_folder(tmp_path):
    (tmp_path / "state.db").mkdir()
    with pytest.raises(ConfigError, match="is a folder, not a state database file"):
        State(tmp_path / "state.db")


def test_a_damaged_state_file_is_still_called_unusable(tmp_path):
    (tmp_path / "state.db").write_bytes(b"not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable state database"):
        State(tmp_path / "state.db")
