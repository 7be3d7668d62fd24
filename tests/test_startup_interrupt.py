"""Ctrl-C and SIGTERM while `auditor` starts end it as they end a running command: one line,
exit 130 or 143, never Python's traceback nor a silent death.

The console script pip wrote is started under `-X importtime`, whose lines on stderr say how
far the start has gone: each signal is sent a set time after the first module imported past
the `auditor` package and its entry module (`auditor.entry`), that is once Python's own start
is over, sweeping the CLI's imports, the command's and the command itself. The command asks a
server that never answers (`unread`), so it is still running whatever the delay."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

AUDITOR = Path(sys.executable).with_name("auditor")  # the console script pip wrote
STOPS = {
    signal.SIGINT: (130, ["auditor: interrupted"]),
    signal.SIGTERM: (143, ["auditor: terminated"]),
}


@pytest.fixture(scope="module")
def silent_server():
    """A port that takes connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def stopped_after(base_url: str, number: int, delay: float) -> tuple[int, list[str]]:
    """The exit code and the stderr lines (but `-X importtime`'s) of `auditor unread` sent
    signal `number` `delay` seconds after its start reached the CLI's first import."""
    command = [
        sys.executable, "-X", "importtime", str(AUDITOR), "unread", "alice", "--base-url",
        base_url, "--org", "o", "--app", "a", "--client-id", "c", "--retries", "0",
    ]  # fmt: skip
    environment = {**os.environ, "EASEMOB_CLIENT_SECRET": "s"}
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=environment,
    ) as process:  # fmt: skip
        past_package = False
        for line in process.stderr:
            name = line.rpartition("|")[2].strip()
            if past_package and name not in ("auditor.entry", "signal"):
                break
            past_package = past_package or name == "auditor"
        time.sleep(delay)
        process.send_signal(number)
        said = process.stderr.read().splitlines()
        process.wait(timeout=60)
    return process.returncode, [line for line in said if not line.startswith("import time:")]


@pytest.mark.parametrize(
    ("number", "step"), [(signal.SIGINT, 0.03), (signal.SIGTERM, 0.06)], ids=["SIGINT", "SIGTERM"]
)
def test_a_stop_at_any_moment_of_the_start_is_one_line_and_its_exit_code(
    silent_server, number, step
):
    delays = [n * step for n in range(round(0.6 / step) + 1)]
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(lambda d: stopped_after(silent_server, number, d), delays))

    wrong = {f"{delay:.2f} s": outcome for delay, outcome in zip(delays, outcomes, strict=True)}
    wrong = {delay: outcome for delay, outcome in wrong.items() if outcome != STOPS[number]}
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
