"""SIGTERM to the process group of a run whose workers have hours queued behind the ones they
are on (README's `workers: 2`, stopped by systemd or `timeout`): one line, exit 143, and the
next run resumes to a bag that verifies."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator

SECRET = "sigterm-queued-secret"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals a group")


@pytest.fixture
def slow_emulator():
    """Every answer 1 s late: when the first hour is archived, two hours are in the workers, one
    waits in the pool's queue and four more are submitted but not started."""
    options = EmulatorOptions(
        messages=600, days=1, client_secret=SECRET, slow_rate=1.0, slow_seconds=1.0
    )
    with run_emulator(options) as running:
        yield running


@pytest.fixture
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="sigterm-test")


def test_sigterm_to_the_group_with_hours_not_started_is_one_line_and_exit_143_then_resumes(
    slow_emulator, keys, tmp_path
):
    args = run_support.run_args(slow_emulator, keys, tmp_path, "--workers", "2", hours=8)
    args += ["--fail-on", "none"]
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
    env.pop("EASEMOB_CLIENT_SECRET_FILE", None)
    run = subprocess.Popen(
        [sys.executable, "-m", "auditor", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    progress = run_support.StderrLines(run)
    progress.wait_for_hours(1)

    os.killpg(run.pid, signal.SIGTERM)
    run.wait(timeout=30)

    assert (run.returncode, progress.rest()) == (143, ["auditor: terminated\n"])
    slow_emulator.options = dataclasses.replace(slow_emulator.options, slow_seconds=0.0)
    env = {"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None}
    assert CliRunner().invoke(main, args, env=env).exit_code == 0
    (bag,) = [p for p in (tmp_path / "archive").iterdir() if not p.name.startswith(".")]
    verified = CliRunner().invoke(main, ["verify", str(bag), "--pubkey", str(keys.public_key)])
    assert verified.exit_code == 0, verified.output
