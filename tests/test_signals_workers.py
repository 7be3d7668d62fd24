"""A run stopped by SIGTERM sent to its whole process group (as systemd stops a unit) ends as
terminated (143), with no worker left behind, however the signal meets its workers."""

from __future__ import annotations

import os
import sys

import pytest
import run_support
from group_run import run_in_own_group

from auditor.archive.keys import generate_key_files
from auditor.emulator.server import EmulatorOptions, run_emulator

SECRET = "signals-workers-secret"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# The coordinator, with SIGTERM sent to its process group from an at-fork hook at the fork of
# the second worker: where logging's hook met it in a run the probe stopped.
AT_THE_SECOND_FORK = """
import os, signal
from auditor.cli import main

forks = []

def group_sigterm():
    forks.append(1)
    if len(forks) == 2:
        os.killpg(0, signal.SIGTERM)

os.register_at_fork(after_in_parent=group_sigterm)
main(prog_name="auditor")
"""

# The coordinator, with SIGTERM sent to its process group from a finalizer once the first hour
# is archived: SIGTERM's exception is raised in there, so Python prints it and it is lost.
LOST_IN_A_FINALIZER = """
import os, signal
from auditor import crashpoints
from auditor.cli import main

sent = []

class Finalizer:
    def __del__(self):
        os.killpg(0, signal.SIGTERM)

def reached(name):
    if name == "archive.partition" and not sent:
        sent.append(1)
        Finalizer()

crashpoints.reached = reached
main(prog_name="auditor")
"""


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="signals-test")


emulator = run_support.emulator_fixture(SECRET, messages=300)


@pytest.fixture(scope="module")
def slow_emulator():
    """Every answer 0.5 s late: the workers are still busy with later hours when the first one
    is archived."""
    options = EmulatorOptions(
        messages=300, days=1, client_secret=SECRET, slow_rate=1.0, slow_seconds=0.5
    )
    with run_emulator(options) as running:
        yield running


def stopped_run(prelude: str, args: list[str]) -> tuple[int, str, list[int]]:
    """The run's exit code and stderr, and the processes of its group still alive a few seconds
    after it ended (a hung run is killed after a minute and ends as -9)."""
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    env.pop("EASEMOB_CLIENT_SECRET_FILE", None)
    env.pop("AUDITOR_CRASH_AT", None)
    run = run_in_own_group([sys.executable, "-c", prelude, *args], env)
    return run.returncode, run.stderr, run.left


def test_sigterm_to_the_group_while_the_workers_are_forked_ends_the_run_as_terminated(
    emulator, keys, tmp_path
):
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "2", hours=4)

    code, err, left = stopped_run(AT_THE_SECOND_FORK, [*args, "--fail-on", "none"])

    assert (code, err, left) == (143, "auditor: terminated\n", [])


def test_workers_dead_of_the_sigterm_that_stopped_the_run_end_it_as_terminated_not_failed(
    slow_emulator, keys, tmp_path
):
    """Even when SIGTERM's exception never reached the run, which then finds its workers dead."""
    args = run_support.run_args(slow_emulator, keys, tmp_path, "--workers", "2", hours=6)

    code, err, left = stopped_run(LOST_IN_A_FINALIZER, [*args, "--fail-on", "none"])

    # the finalizer's "Exception ignored" traceback is not printed (`processes.stops_kept`)
    assert "Traceback" not in err
    assert (code, err.splitlines()[-1], left) == (143, "auditor: terminated", [])
