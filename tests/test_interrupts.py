"""A Ctrl-C or SIGTERM whose exception Python swallows (its handler ran in a finalizer, where
Python only prints what it raises) still stops the run, wherever it comes: while the workers
are alive, and in each phase after the executor's work (report, signature, commit, publishing).
"""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import run_support
from click.testing import CliRunner

from auditor import crashpoints
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.partitions import HOUR_MS
from auditor.pipeline import Progress, run_audit

SECRET = "interrupts-test-secret"
HOURS = 4

emulator = run_support.emulator_fixture(SECRET, messages=200)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="interrupts-test")


class _RaisesWhenCollected:
    """A stop signal whose handler runs in a finalizer: the exception is printed, not raised."""

    def __init__(self, number: signal.Signals) -> None:
        self.number = number

    def __del__(self) -> None:
        signal.raise_signal(self.number)


def settings(emulator, keys, folder, **overrides):
    overrides.setdefault("until_ms", DEFAULT_START_MS + HOURS * HOUR_MS)
    return run_support.settings_for(emulator, keys, folder, SECRET, **overrides)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("workers", [2, 1], ids=["pool", "inline"])
def test_a_ctrl_c_swallowed_while_the_hours_are_processed_stops_the_run_at_the_next_hour(
    emulator, keys, tmp_path, workers
):
    """With the pool's workers alive (it re-raised a kept stop only once they were dead), and
    with the hours processed in the run's own process."""
    archived = []

    def ctrl_c_in_a_finalizer(partition, _outcome):
        archived.append(partition)
        if len(archived) == 1:
            _RaisesWhenCollected(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run_audit(
            settings(emulator, keys, tmp_path, workers=workers),
            Progress(partition_done=ctrl_c_in_a_finalizer),
        )

    assert len(archived) == 1
    assert multiprocessing.active_children() == []
    assert completed_runs(tmp_path) == 0


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_swallowed_before_the_first_hour_stops_the_run_before_it_fetches_any(
    emulator, keys, tmp_path
):
    archived = []

    with pytest.raises(KeyboardInterrupt):
        run_audit(
            settings(emulator, keys, tmp_path, workers=2),
            Progress(
                started=lambda _total: _RaisesWhenCollected(signal.SIGINT),
                partition_done=lambda partition, _outcome: archived.append(partition),
            ),
        )

    assert archived == []
    assert completed_runs(tmp_path) == 0


# Where the run's phases after its hours meet (`auditor.crashpoints`), and whether the run is
# committed there: before the commit a stop leaves no trace but the progress kept, after it
# the run is done and the stop can only be told.
PHASES = [
    ("archive.report", False),
    ("archive.signed", False),
    ("archive.committed", True),
    ("archive.published", True),
]
STOPS = {signal.SIGINT: (130, "auditor: interrupted"), signal.SIGTERM: (143, "auditor: terminated")}
BAG = "run-000001-2026110100-2026110102"


def invoke(args: list[str]):
    env = {"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None}
    return CliRunner().invoke(main, args, env=env)


def bags(folder) -> list[str]:
    return sorted(p.name for p in (folder / "archive").iterdir() if not p.name.startswith("."))


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("point", "committed", "number"),
    [
        pytest.param(point, committed, number, id=f"{point}-{number.name}")
        for point, committed, number in [
            *((point, committed, signal.SIGINT) for point, committed in PHASES),
            ("archive.signed", False, signal.SIGTERM),
            ("archive.committed", True, signal.SIGTERM),
        ]
    ],
)
def test_a_stop_swallowed_after_the_hours_ends_the_run_as_stopped_in_every_phase(
    emulator, keys, tmp_path, monkeypatch, point, committed, number
):
    """Before, the run signed, committed and published its bag and exited 0."""
    args = run_support.run_args(
        emulator, keys, tmp_path, "--fail-on", "none", "--quiet", "--attachments", "skip", hours=2
    )
    monkeypatch.setattr(
        crashpoints, "reached", lambda name: _RaisesWhenCollected(number) if name == point else None
    )

    result = invoke(args)

    code, line = STOPS[number]
    assert (result.exit_code, result.stderr) == (code, f"{line}\n"), result.output
    assert bags(tmp_path) == ([BAG] if committed else [])
    assert completed_runs(tmp_path) == committed
    monkeypatch.undo()
    rerun = invoke(args)
    assert (rerun.exit_code, rerun.stderr) == (0, ""), rerun.output
    assert bags(tmp_path) == [BAG]


def completed_runs(folder) -> int:
    with sqlite3.connect(folder / "state.db") as db:
        return db.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone()[0]


def test_the_stop_line_stays_last_when_asyncio_reports_a_future_cut_short():
    """A CI run of the group Ctrl-C test on Dask ended its stderr with "TimeoutError: Timeout"
    after "auditor: interrupted": asyncio logging, as the process collected it, a timeout's
    future of Dask's client that the stop had left unretrieved."""
    script = textwrap.dedent(
        """
        import asyncio, gc, logging, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        from auditor.cli import _stopped
        _stopped(KeyboardInterrupt())
        future = asyncio.new_event_loop().create_future()
        future.set_exception(TimeoutError("Timeout"))
        del future
        gc.collect()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr == "auditor: interrupted\n"
