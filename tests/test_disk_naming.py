"""A write that names no file is blamed on the disk that refused it (probe 20 #4).

The run's bag and spool, its state database, and the temporary files of the report and of
SQLite may each be on a disk of their own; the error of a full or read-only disk carries no file
name, and the run used to name the bag folder whatever disk it was.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import run_support
from click.testing import CliRunner

from auditor import disks
from auditor.archive.keys import generate_key_files
from auditor.cli import main

SECRET = "disk-naming-secret"


emulator = run_support.emulator_fixture(SECRET, messages=24_000)


def audit(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, **env}
    command = [sys.executable, "-m", "auditor", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)


def test_a_full_temporary_folder_is_named_not_the_bag_folder(emulator, tmp_path, full_disk):
    keys = generate_key_files(tmp_path / "keys", identity="test")
    args = run_support.run_args(
        emulator, keys, tmp_path, "--workers", "1", "--quiet", "--attachments", "skip", hours=1
    )

    refused = audit(args, TMPDIR=str(full_disk))

    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("auditor: error: ") and str(full_disk) in line, line
    assert "bag and spool" not in line
    # the same run with room completes; in process, as the full folder was that process's own
    completed = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})
    assert completed.exit_code in (0, 1), completed.output


@pytest.fixture
def ext4_turning_read_only(tmp_path):
    """An ext4 file system on a loop device that turns read-only at its first error, and the
    file that makes one (a kernel debugging switch)."""
    image, mount = tmp_path / "ext4.img", tmp_path / "ext4"
    mount.mkdir()
    with open(image, "wb") as file:
        file.truncate(64 << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop,errors=remount-ro", str(image), str(mount)], capture_output=True
    )
    if not mounted or mounted.returncode != 0:
        pytest.skip("cannot make and loop-mount an ext4 file system here")
    try:
        device = subprocess.run(
            ["findmnt", "-no", "SOURCE", str(mount)], capture_output=True, text=True
        ).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
        if not trigger.exists():
            pytest.skip("this kernel cannot be asked for an ext4 error")
        yield mount, trigger
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_state_disk_failing_mid_run_is_named_not_masked_by_the_lock(
    emulator, tmp_path, ext4_turning_read_only
):
    """The lock file beside the state could not be cleared on the read-only disk, and that
    error, raised on the way out, replaced SQLite's and named the bag folder."""
    disk, trigger = ext4_turning_read_only
    keys = generate_key_files(tmp_path / "keys", identity="test")
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", hours=6)
    args[args.index("--state") + 1] = str(disk / "state.db")
    environment = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    run = subprocess.Popen(
        [sys.executable, "-m", "auditor", *args],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    progress = run_support.StderrLines(run)
    progress.wait_for_hours(1, timeout=120)

    trigger.write_text("test\n")
    run.wait(timeout=120)

    (line,) = progress.rest()
    assert run.returncode == 2, line
    assert line.startswith(f"auditor: error: state database: {disk / 'state.db'}"), line
    assert "bag and spool" not in line


def test_the_disk_refusing_is_told_from_those_with_room(tmp_path, full_disk):
    folders = {"roomy": tmp_path, "full": full_disk, "not made yet": full_disk / "a" / "b"}

    assert disks.refusing(errno.ENOSPC, folders) == ["full", "not made yet"]
    assert disks.refusing(errno.EROFS, folders) == []
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(full_disk)], capture_output=True)
    if remounted.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remounted.stderr.decode().strip()}")
    assert disks.refusing(errno.EROFS, folders) == ["full", "not made yet"]
    note = disks.note_refusing(OSError(errno.EROFS, "Read-only file system"), folders)
    assert note == "the disk is read-only under full and not made yet"
