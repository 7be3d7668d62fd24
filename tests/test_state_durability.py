"""The commit that completes a run reaches the disk before its bag is published (probe 20 #1).

The state runs SQLite's WAL at `synchronous=NORMAL`: a commit is written to `state.db-wal`, not
synced. (The completing commit itself goes through a rollback journal at `synchronous=FULL`,
into `state.db`: `state._rollback_journal`.) A power cut right after the bag's rename kept the
bag and lost the commit, and every later run then refused the folder (its newest bag is a run
the state does not hold). The test reads the order of the system calls of a real run, as the
probe did with strace.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.errors import ConfigError
from auditor.state import State

SECRET = "durability-secret"


emulator = run_support.emulator_fixture(SECRET, messages=300)


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
    published = [
        number
        for number, line in enumerate(lines)
        if re.search(r"rename(at2?)?\(.*\.run-\d{6}-[^/\"]*\.partial.*\"[^\"]*/run-\d{6}-", line)
    ]
    assert len(published) == 1, "the bag's rename into place"
    before = lines[: published[0]]
    # The hours' checkpoints go to the WAL; the completing commit, journalled, to the database.
    for name in ("state.db-wal", "state.db"):
        path = re.escape(str(tmp_path / name))
        writes = [
            n for n, line in enumerate(before) if re.search(rf"write(64)?\(\d+<{path}>", line)
        ]
        syncs = [
            n for n, line in enumerate(before) if re.search(rf"f(data)?sync\(\d+<{path}>", line)
        ]
        assert writes, f"{name} written before the bag is published"
        assert syncs and syncs[-1] > writes[-1], (
            f"{name} synced after its last write, before the bag"
        )


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


@pytest.fixture
def small_ext4(tmp_path):
    """A 32 MiB ext4 file system on a loop device, no blocks reserved for root."""
    image, mount = tmp_path / "ext4.img", tmp_path / "ext4"
    mount.mkdir()
    with open(image, "wb") as file:
        file.truncate(32 << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], capture_output=True)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True
    )
    if not mounted or mounted.returncode != 0:
        pytest.skip("cannot make and loop-mount an ext4 file system here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _window(args: list[str], since: int, until: int) -> list[str]:
    """`args` with --since, --until and --as-of moved to hours `since`..`until` of 2026-11-01."""
    args = list(args)
    for flag, hour in (("--since", since), ("--until", until), ("--as-of", until)):
        args[args.index(flag) + 1] = f"2026-11-01T{hour:02d}:00Z"
    return args


def test_a_nearly_full_ext4_disk_under_the_state_gives_exit_2_not_a_bus_error(
    emulator, tmp_path, small_ext4
):
    """With 24-32 KiB left on an ext4 state disk, a page of SQLite's memory-mapped `-shm` file
    could not be allocated and the run died of SIGBUS (exit 135, no line) (probe 20 #3)."""
    keys = generate_key_files(tmp_path / "keys", identity="test")
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", "--quiet", hours=2)
    args[args.index("--state") + 1] = str(small_ext4 / "state.db")
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}

    def audit(since: int, until: int) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "auditor", *_window(args, since, until)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert audit(0, 2).returncode in (0, 1)
    for hour, free_kib in enumerate((24, 32), start=2):
        os.sync()
        filler = small_ext4 / "filler"
        room = os.statvfs(small_ext4)
        with open(filler, "wb") as file:
            os.posix_fallocate(file.fileno(), 0, room.f_bavail * room.f_frsize - free_kib * 1024)
        os.sync()

        refused = audit(hour, hour + 1)

        assert refused.returncode == 2, (free_kib, refused.returncode, refused.stderr)
        last = refused.stderr.strip().splitlines()[-1]
        assert last.startswith("auditor: error: state database") and "disk is full" in last
        assert "Traceback" not in refused.stderr
        filler.unlink()
    assert audit(2, 4).returncode in (0, 1)


def test_a_run_refuses_a_state_another_program_has_open_with_exit_4(emulator, tmp_path):
    """The price of the exclusive lock above: a run needs the database alone, and says so. The
    refused run is a process of its own, as that program is another; the runs before and after
    it, which only make the state and show it usable again, run in process (a start and the
    imports are ~0.8 s of CPU a process)."""
    keys = generate_key_files(tmp_path / "keys", identity="test")
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", "--quiet", hours=1)
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    command = [sys.executable, "-m", "auditor", *args]
    in_process = {"EASEMOB_CLIENT_SECRET": SECRET}
    assert CliRunner().invoke(main, args, env=in_process).exit_code in (0, 1)

    with closing(sqlite3.connect(tmp_path / "state.db")) as other:
        other.execute("SELECT count(*) FROM runs").fetchone()
        refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert refused.returncode == 4
    assert refused.stderr == (
        f"auditor: error: {tmp_path / 'state.db'}: another program has the state database open "
        "(an sqlite3 shell, a backup or monitoring script?); a run needs it alone: close that "
        "program, or copy the file to read it, and run again\n"
    )
    assert CliRunner().invoke(main, args, env=in_process).exit_code in (0, 1)
