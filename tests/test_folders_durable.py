"""Every folder a run or `keygen` makes is synced after its last entry (probe 20 #9).

A file's fsync makes its bytes durable, not its name: that lives in its folder, and a folder is
durable once it is synced and its own name is in a synced parent. The bag's manifests (synced)
named files in `data/report`, `data/unreadable` and `data/attachments` that a power cut could
take away with their unsynced folders. The tests read the order of the system calls of real
commands, as the probe did with strace: each folder is synced after the last entry made in it
and before the bag is published, once a folder, not once a file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.server import EmulatorOptions, run_emulator

SECRET = "folders-secret"
CALLS = "fsync,fdatasync,syncfs,mkdir,mkdirat,openat,rename,renameat,renameat2"
PATH = r'"([^"]+)"'
pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")


def traced(command: list[str], trace: Path, **kwargs) -> list[str]:
    strace = ["strace", "-f", "-y", "-qq", "-o", str(trace), "-e", f"trace={CALLS}"]
    done = subprocess.run([*strace, *command], capture_output=True, text=True, **kwargs)
    assert done.returncode in (0, 1), done.stderr
    return trace.read_text().splitlines()


def entries_and_syncs(lines: list[str]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """By folder: the lines that made or moved an entry in it, and the lines that synced it."""
    made: dict[str, list[int]] = defaultdict(list)
    synced: dict[str, list[int]] = defaultdict(list)
    for number, line in enumerate(lines):
        if found := re.search(r"\bf(?:data)?sync\(\d+<([^>]+)>", line):
            synced[found[1]].append(number)
        elif re.search(r"\bmkdir(at)?\(", line) or (
            re.search(r"\bopenat\(", line) and "O_CREAT" in line
        ):
            paths = re.findall(PATH, line)
            made[os.path.dirname(paths[0])].append(number)
        elif re.search(r"\brename(at2?)?\(", line):
            for path in re.findall(PATH, line)[:2]:
                made[os.path.dirname(path)].append(number)
    return made, synced


def unsynced(folders, made, synced, end: int) -> list[str]:
    """The folders not synced after the last entry made in them and before line `end`."""
    late = []
    for folder in folders:
        last = max((n for n in made[folder] if n < end), default=-1)
        if not any(last < n < end for n in synced[folder]):
            late.append(folder)
    return late


@pytest.fixture(scope="module")
def emulator():
    options = EmulatorOptions(messages=300, days=1, client_secret=SECRET, mangled_rate=0.3)
    with run_emulator(options) as running:
        yield running


def test_each_folder_of_a_bag_is_synced_once_after_its_last_entry_before_publication(
    emulator, tmp_path
):
    keys = generate_key_files(tmp_path / "keys", identity="test")
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", "--quiet", hours=3)
    archive = tmp_path / "new" / "archive"  # made by the run, with its parent
    args[args.index("--out") + 1] = str(archive)
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}

    lines = traced([sys.executable, "-m", "auditor", *args], tmp_path / "trace.txt", env=env)

    [bag] = archive.glob("run-*")
    partial = archive / f".{bag.name}.partial"
    inside = sorted(
        str(partial / folder.relative_to(bag))
        for folder in [bag, *bag.rglob("*")]
        if folder.is_dir()
    )
    assert {os.path.relpath(folder, partial) for folder in inside} >= {
        "data/report",
        "data/unreadable",
        "data/attachments",
        "data/attachments/sha256",
        "data/records",
    }
    [published] = [
        n for n, line in enumerate(lines) if re.search(rf"rename.*{re.escape(str(bag))}\"", line)
    ]
    made, synced = entries_and_syncs(lines)
    above = [str(archive), str(archive.parent), str(tmp_path)]
    assert unsynced([*inside, *above], made, synced, published) == []
    assert {folder: len(synced[folder]) for folder in inside} == dict.fromkeys(inside, 1)


def test_the_state_folder_is_synced_after_the_commit_made_its_files(emulator, tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="test")
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", "--quiet", hours=3)
    state = tmp_path / "state-folder" / "state.db"  # a folder of its own, made by the run
    args[args.index("--state") + 1] = str(state)
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}

    lines = traced([sys.executable, "-m", "auditor", *args], tmp_path / "trace.txt", env=env)

    made, synced = entries_and_syncs(lines)
    assert made[str(state.parent)], "the run made no file in the state's folder"
    assert unsynced([str(state.parent), str(tmp_path)], made, synced, len(lines)) == []


def test_keygen_syncs_the_folders_it_makes_and_the_one_holding_the_keys(tmp_path):
    out = tmp_path / "a" / "b" / "keys"
    command = [sys.executable, "-m", "auditor", "keygen", "--out", str(out)]

    lines = traced(command, tmp_path / "trace.txt")

    made, synced = entries_and_syncs(lines)
    folders = [str(out), str(out.parent), str(out.parent.parent), str(tmp_path)]
    assert len(made[str(out)]) == 3
    assert unsynced(folders, made, synced, len(lines)) == []


def test_pull_syncs_the_output_folder_it_makes(emulator, tmp_path):
    out = tmp_path / "pulled" / "app"
    command = [
        sys.executable, "-m", "auditor", "pull", "--base-url", emulator.base_url,
        "--org", emulator.options.org, "--app", emulator.options.app,
        "--client-id", emulator.options.client_id,
        "--since", "2026-11-01T00:00Z", "--until", "2026-11-01T02:00Z", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}

    lines = traced(command, tmp_path / "trace.txt", env=env)

    made, synced = entries_and_syncs(lines)
    folders = [str(out), str(out.parent), str(tmp_path)]
    assert unsynced(folders, made, synced, len(lines)) == []


def test_attachments_are_synced_a_batch_at_a_time_and_named_only_once_synced(emulator, tmp_path):
    """An fsync of each file and of the store after each took 15 ms a file here, most of a run's
    time with attachments; a file named by its sha256 must still be whole after a power cut."""
    keys = generate_key_files(tmp_path / "keys", identity="test")
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", "--quiet", hours=3)
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}

    lines = traced([sys.executable, "-m", "auditor", *args], tmp_path / "trace.txt", env=env)

    created: dict[str, list[int]] = defaultdict(list)
    renamed: list[tuple[int, str, str]] = []
    syncs: list[tuple[int, str]] = []  # (line, what: a path fsynced, or "syncfs")
    for number, line in enumerate(lines):
        paths = re.findall(PATH, line)
        if re.search(r"\bopenat\(", line) and "O_CREAT" in line and ".download." in line:
            created[paths[0]].append(number)
        elif re.search(r"\brename(at2?)?\(", line) and ".download." in line:
            renamed.append((number, paths[0], paths[1]))
        elif found := re.search(r"\bf(?:data)?sync\(\d+<([^>]+)>", line):
            syncs.append((number, found[1]))
        elif re.search(r"\bsyncfs\(", line):
            syncs.append((number, "syncfs"))
    assert len(renamed) >= 8, "the run stored too few attachments to tell"
    for number, partial, _target in renamed:
        made = max(at for at in created[partial] if at < number)
        assert any(made < at < number and what in ("syncfs", partial) for at, what in syncs), (
            f"{partial} named before its bytes were synced"
        )
    store = os.path.dirname(renamed[0][2])
    assert unsynced([store], *entries_and_syncs(lines), len(lines)) == []
    attachment_syncs = [what for _at, what in syncs if what == "syncfs" or ".download." in what]
    assert len(attachment_syncs) <= 3, f"{len(attachment_syncs)} syncs for {len(renamed)} files"
