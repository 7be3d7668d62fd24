"""Ctrl-C and SIGTERM while `auditor` starts end it as they end a running command: one line,
exit 130 or 143, never Python's traceback nor a silent death.

The console script pip wrote is started under `-X importtime`, whose lines on stderr say how
far the start has gone: each signal is sent as the line of one module of the start is read,
from the CLI's imports (logging, sqlite3, click: 27 of 31 Ctrl-Cs printed a traceback there)
through the command's (the source's HTTP client). The command asks a server that never
answers (`unread`), so it is still running when the signal lands. Signals sent once the command
runs are not tried here: a stop met in an import the command makes as it works can still be
lost or taken for an internal error (see the report of session 32)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

import auditor.archive.keys
from auditor.cli import main

AUDITOR = Path(sys.executable).with_name("auditor")  # the console script pip wrote
STOPS = {
    signal.SIGINT: (130, ["auditor: interrupted"]),
    signal.SIGTERM: (143, ["auditor: terminated"]),
}
# Modules imported, in this order, by the CLI (to click and auditor.errors), then by `unread`'s
# module: the last well before that import's end, so that the signal lands before the command.
ALONG_THE_START = (
    "logging", "sqlite3", "inspect", "click.core", "click", "auditor.errors", "auditor.archive",
    "auditor.findings", "auditor.config", "urllib3.connection",
)  # fmt: skip


@pytest.fixture(scope="module")
def silent_server():
    """A port that takes connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def stopped_at(base_url: str, number: int, module: str) -> tuple[int, list[str]]:
    """The exit code and the stderr lines (but `-X importtime`'s) of `auditor unread` sent
    signal `number` as its start is seen to have imported `module`."""
    command = [
        sys.executable, "-X", "importtime", str(AUDITOR), "unread", "alice", "--base-url",
        base_url, "--org", "o", "--app", "a", "--client-id", "c", "--retries", "0",
    ]  # fmt: skip
    environment = {**os.environ, "EASEMOB_CLIENT_SECRET": "s"}
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=environment,
    ) as process:  # fmt: skip
        for line in process.stderr:
            if line.rpartition("|")[2].strip() == module:
                break
        process.send_signal(number)
        said = process.stderr.read().splitlines()
        process.wait(timeout=60)
    return process.returncode, [line for line in said if not line.startswith("import time:")]


@pytest.mark.parametrize("number", list(STOPS), ids=["SIGINT", "SIGTERM"])
def test_a_stop_at_any_moment_of_the_start_is_one_line_and_its_exit_code(silent_server, number):
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda m: stopped_at(silent_server, number, m), ALONG_THE_START))

    wrong = dict(zip(ALONG_THE_START, outcomes, strict=True))
    wrong = {module: outcome for module, outcome in wrong.items() if outcome != STOPS[number]}
    assert not wrong


# The stop arrives while click reads the group's options (`--file-access`'s choice), before the
# command runs: click's own handler printed a blank line before the stop's line (1 in about 250
# stops of the sweep above).
STOPPED_WHILE_OPTIONS_ARE_READ = """
import os, signal, sys
import click

convert, number = click.Choice.convert, int(sys.argv[1])

def stopping(self, value, param, ctx):
    os.kill(os.getpid(), number)
    return convert(self, value, param, ctx)

click.Choice.convert = stopping
sys.argv[1:] = sys.argv[2:]
from auditor.entry import main
main()
"""


@pytest.mark.parametrize("number", list(STOPS), ids=["SIGINT", "SIGTERM"])
def test_a_stop_while_the_options_are_read_is_one_line(number):
    done = subprocess.run(
        [sys.executable, "-c", STOPPED_WHILE_OPTIONS_ARE_READ, str(int(number)), "state", "show"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert (done.returncode, done.stderr.splitlines()) == STOPS[number]


def _interrupted_while_a_class_is_made(*args, **kwargs):
    """Ctrl-C while a class is made, as when a module a command imports as it works defines
    its dataclasses: Python 3.11 raises it as `RuntimeError: Error calling __set_name__`."""

    class Sending:
        def __set_name__(self, owner, name):
            os.kill(os.getpid(), signal.SIGINT)

    class Made:
        field = Sending()


def test_a_ctrl_c_python_wraps_in_another_error_is_still_an_interrupt(monkeypatch, tmp_path):
    monkeypatch.setattr(
        auditor.archive.keys, "generate_key_files", _interrupted_while_a_class_is_made
    )

    done = CliRunner().invoke(main, ["keygen", "--out", str(tmp_path)])

    assert (done.exit_code, done.stderr) == (130, "auditor: interrupted\n")
