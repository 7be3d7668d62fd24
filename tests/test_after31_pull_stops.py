"""`auditor pull` keeps a Ctrl-C or SIGTERM whose handler ran inside a finalizer (where Python
only prints "Exception ignored"): it stops at the end of that hour, as stopped (130, 143), with
the hour recorded, and the same pull resumes from there. Before, the stop was lost: the pull
went on to its last hour and exited 0."""

from __future__ import annotations

import signal

import orjson
import pytest
from click.testing import CliRunner

from auditor import crashpoints
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.sources.pull import CHECKPOINT, JOURNAL

SECRET = "after31-pull-secret"
HOURS = ["2026110100", "2026110101", "2026110102"]
PULL = ["pull", "--since", "2026-11-01T00:00Z", "--until", "2026-11-01T03:00Z"]
STOPS = {signal.SIGINT: (130, "auditor: interrupted"), signal.SIGTERM: (143, "auditor: terminated")}


@pytest.fixture(scope="module")
def emu():
    with run_emulator(EmulatorOptions(messages=150, days=1, client_secret=SECRET)) as emulator:
        yield emulator


class _RaisesWhenCollected:
    """A stop signal whose handler runs in a finalizer: the exception is printed, not raised."""

    def __init__(self, number: signal.Signals) -> None:
        self.number = number

    def __del__(self) -> None:
        signal.raise_signal(self.number)


def invoke(emu, out):
    args = [*PULL, "--out", str(out), "--base-url", emu.base_url, "--org", emu.options.org]
    args += ["--app", emu.options.app, "--client-id", emu.options.client_id, "--retries", "1"]
    env = {"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None}
    return CliRunner().invoke(main, args, env=env)


def recorded(out) -> list[str]:
    """The hours the checkpoint and its journal list, as the next pull reads them."""
    hours = set(orjson.loads((out / CHECKPOINT).read_bytes())["hours"])
    if (out / JOURNAL).exists():
        hours |= {orjson.loads(line)["hour"] for line in (out / JOURNAL).read_bytes().splitlines()}
    return sorted(hours)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_stop_swallowed_in_the_first_hour_stops_the_pull_after_it(
    emu, tmp_path, monkeypatch, number
):
    monkeypatch.setattr(crashpoints, "reached", _stop_at_first_journal_line(number))

    stopped = invoke(emu, tmp_path)

    code, line = STOPS[number]
    assert (stopped.exit_code, stopped.stderr) == (code, f"{line}\n"), stopped.output
    assert [text.split()[:2] for text in stopped.stdout.splitlines()] == [[HOURS[0], "pulled"]]
    assert recorded(tmp_path) == HOURS[:1]
    assert sorted(p.name for p in tmp_path.glob("20*.jsonl")) == [f"{HOURS[0]}.jsonl"]
    monkeypatch.undo()

    resumed = invoke(emu, tmp_path)

    assert (resumed.exit_code, resumed.stderr) == (0, ""), resumed.output
    statuses = [text.split()[:2] for text in resumed.stdout.splitlines()[:3]]
    assert statuses == [[HOURS[0], "done"], [HOURS[1], "pulled"], [HOURS[2], "pulled"]]
    assert recorded(tmp_path) == HOURS


def _stop_at_first_journal_line(number: signal.Signals):
    journaled = []

    def reached(name: str) -> None:
        if name == "pull.journaled" and not journaled:
            journaled.append(name)
            _RaisesWhenCollected(number)

    return reached


def test_an_internal_error_in_the_second_hour_keeps_the_first_and_says_so(
    emu, tmp_path, monkeypatch
):
    journaled = []

    def reached(name: str) -> None:
        if name == "pull.journaled":
            journaled.append(name)
            if len(journaled) == 2:
                raise RuntimeError("broken in the second hour")

    monkeypatch.setattr(crashpoints, "reached", reached)

    failed = invoke(emu, tmp_path)

    assert failed.exit_code == 70, failed.output
    assert failed.stderr == (
        "auditor: internal error (RuntimeError: broken in the second hour); this is a bug in the "
        "auditor: the hours written so far are kept, pull again to resume; run with -vv for the "
        "traceback and report it\n"
    )
    monkeypatch.undo()
    resumed = invoke(emu, tmp_path)
    assert resumed.exit_code == 0, resumed.output
    statuses = [text.split()[:2] for text in resumed.stdout.splitlines()[:3]]
    assert statuses[0] == [HOURS[0], "done"] and statuses[2] == [HOURS[2], "pulled"]
    assert recorded(tmp_path) == HOURS
