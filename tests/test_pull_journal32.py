"""Every hour file of a pull folder is vouched for by its checkpoint or its journal, whenever the
pull was killed; and a stop that reaches `auditor pull` after its last hour still stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from auditor import crashpoints
from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy
from auditor.sources.pull import CHECKPOINT, JOURNAL

HOUR0 = 1793491200000  # 2026-11-01T00:00Z
HOURS = ["2026110100", "2026110101", "2026110102"]
WINDOW = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T03:00Z"]
RUN_WINDOW = ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T02:00Z"]  # what a kill left


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="auditor@test")


@pytest.fixture
def export(tmp_path) -> Path:
    """Three hours of 20 plain records each."""
    path = tmp_path / "export.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps({"msg_id": f"{hour}-{n}", "timestamp": HOUR0 + hour * 3_600_000 + n})
            + b"\n"
            for hour in range(3)
            for n in range(20)
        )
    )
    return path


def pull_killed(export: Path, out: Path, crash_at: str) -> None:
    command = [sys.executable, "-m", "auditor", "pull", *WINDOW, "--out", str(out)]
    command += ["--from", str(export)]
    killed = subprocess.run(command, env={**os.environ, "AUDITOR_CRASH_AT": crash_at})
    assert killed.returncode == -signal.SIGKILL, f"{crash_at} was not reached"


def pull(export: Path, out: Path, *extra: str):
    return CliRunner().invoke(
        main, ["pull", *WINDOW, "--out", str(out), "--from", str(export), *extra]
    )


def run_findings(keys, folder: Path, archive: Path) -> list[dict]:
    args = ["run", "--from", str(folder), *RUN_WINDOW, "--policies", str(example_policy())]
    args += ["--key", str(keys.private_key), "--out", str(archive)]
    args += ["--state", str(archive.with_suffix(".db")), "--as-of", "2026-11-01T02:00Z"]
    args += ["--fail-on", "none", "--attachments", "skip", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (bag,) = [entry for entry in archive.iterdir() if entry.name.startswith("run-")]
    return [
        orjson.loads(line) for line in (bag / "data" / "findings.jsonl").read_bytes().splitlines()
    ]


def altered(found: list[dict]) -> list[dict]:
    return [f["details"] for f in found if f["rule"] == "pull-file-altered"]


class _RaisesWhenCollected:
    """A stop signal whose handler runs in a finalizer: the exception is printed, not raised."""

    def __init__(self, number: signal.Signals) -> None:
        self.number = number

    def __del__(self) -> None:
        signal.raise_signal(self.number)


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("number", "code", "line"),
    [(signal.SIGINT, 130, "auditor: interrupted"), (signal.SIGTERM, 143, "auditor: terminated")],
    ids=["sigint", "sigterm"],
)
def test_a_stop_swallowed_after_the_last_hour_still_stops_the_pull(
    export, tmp_path, monkeypatch, number, code, line
):
    """A stop whose handler ran in a finalizer once `pull()` had returned (the source closing)
    was lost: the pull exited 0. Every hour is recorded by then, so it exits as stopped with
    the checkpoint complete."""

    def reached(name: str) -> None:
        if name == "pull.ended":
            _RaisesWhenCollected(number)

    monkeypatch.setattr(crashpoints, "reached", reached)

    stopped = pull(export, tmp_path / "out")

    assert (stopped.exit_code, stopped.stderr) == (code, f"{line}\n"), stopped.output
    hours = orjson.loads((tmp_path / "out" / CHECKPOINT).read_bytes())["hours"]
    assert sorted(hours) == HOURS
    assert not (tmp_path / "out" / JOURNAL).exists()
