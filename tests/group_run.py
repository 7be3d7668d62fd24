"""A command run in a process group of its own, as systemd runs a unit, and the group's members
still alive after it ended: shared by the tests that stop a run with signals or a hung worker
and then check that no worker was left behind. Reads /proc, so Linux only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GroupRun:
    """`returncode` is -9 when the run `hung` past its time and was killed with its group;
    `seconds` run from its start to its own exit, and `left` lists the group's members still
    alive a few seconds later (killed since, so that none outlives the test)."""

    returncode: int
    stderr: str
    seconds: float
    hung: bool
    left: list[int]


def group_members(group: int) -> list[int]:
    """The live processes of process group `group` (zombies are reaped ones' remains)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == group and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def run_in_own_group(
    command: list[str], env: dict[str, str], timeout: float = 60.0, grace: float = 5.0
) -> GroupRun:
    """Runs `command` as the leader of a new session, stdout dropped, stderr kept as text."""
    began = time.monotonic()
    run = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    hung = False
    try:
        _out, err = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        os.killpg(run.pid, signal.SIGKILL)
        _out, err = run.communicate()
    seconds = time.monotonic() - began
    deadline = time.monotonic() + grace
    while group_members(run.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = group_members(run.pid)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return GroupRun(run.returncode, err, seconds, hung, left)
