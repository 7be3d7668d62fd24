"""A command whose reader goes away (`auditor due ... | head`) stops quietly with exit 141, as
`git log | head` does, instead of a line blaming the command or Python's "Exception ignored"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _with_reader_gone(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs `auditor args` with stdout a pipe whose reading end is already closed."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        return subprocess.run(
            [sys.executable, "-m", "auditor", *args],
            stdout=writing,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(writing)


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),  # printed while click reads the arguments
        ("policy", "check", "policies.example.yaml"),  # printed by a command
    ],
)
def test_a_closed_pipe_stops_the_command_quietly_with_141(args):
    done = _with_reader_gone(*args)
    assert (done.returncode, done.stderr) == (141, "")


def test_141_is_in_the_help():
    assert "141  the reader of its output went away" in CliRunner().invoke(main, ["--help"]).output
