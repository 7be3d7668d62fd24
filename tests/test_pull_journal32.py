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


def test_a_plain_hour_file_renamed_before_the_pull_was_killed_is_not_reported_altered(
    keys, export, tmp_path
):
    """Only hours with notes (`files`, `earlier`) were journaled before their rename: a plain
    hour a pull renamed and was killed before recording was reported by the run as altered
    (high), though it was the pull's own file, untouched."""
    out = tmp_path / "out"
    pull_killed(export, out, "pull.renamed:2")
    assert HOURS[1] not in orjson.loads((out / CHECKPOINT).read_bytes())["hours"]

    found = run_findings(keys, out, tmp_path / "archive")

    assert altered(found) == []


def test_an_hour_file_changed_after_the_killed_pull_renamed_it_is_still_reported(
    keys, export, tmp_path
):
    out = tmp_path / "out"
    pull_killed(export, out, "pull.renamed:2")
    hour_file = out / f"{HOURS[1]}.jsonl"
    hour_file.write_bytes(hour_file.read_bytes().replace(b'"1-3"', b'"1-X"'))

    found = run_findings(keys, out, tmp_path / "archive")

    assert [(d["file"], d["found"]["lines"]) for d in altered(found)] == [(hour_file.name, 20)]


@pytest.mark.parametrize("point", ["pull.noted:2", "pull.renamed:2"])
def test_a_pull_killed_around_an_hour_rename_resumes_to_the_bytes_of_one_not_killed(
    export, tmp_path, point
):
    """Killed after the hour's journal line and before its rename (`pull.noted`), or after its
    rename (`pull.renamed`): the next pull ends with the same folder, and no journal."""
    reference = pull(export, tmp_path / "reference")
    assert reference.exit_code == 0, reference.output
    out = tmp_path / "out"
    pull_killed(export, out, point)

    resumed = pull(export, out)

    assert resumed.exit_code == 0, resumed.output
    statuses = [line.split()[1] for line in resumed.stdout.splitlines()[:3]]
    renamed = point.startswith("pull.renamed")
    assert statuses == ["done", "done" if renamed else "pulled", "pulled"]
    assert not (out / JOURNAL).exists()
    assert folder_bytes(out) == folder_bytes(tmp_path / "reference")


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


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


def test_an_error_after_an_hour_rename_leaves_the_hour_listed_in_the_checkpoint(
    export, tmp_path, monkeypatch
):
    """The checkpoint saved on the way out of a pull an error stopped lists the hour it had
    renamed and not yet recorded, as its journal line describes it, and leaves no journal."""

    def reached(name: str) -> None:
        if name == "pull.renamed":
            raise RuntimeError("broken after the rename")

    monkeypatch.setattr(crashpoints, "reached", reached)

    failed = pull(export, tmp_path / "out")

    assert failed.exit_code == 70, failed.output
    hours = orjson.loads((tmp_path / "out" / CHECKPOINT).read_bytes())["hours"]
    assert {label: entry["records"] for label, entry in hours.items()} == {HOURS[0]: 20}
    assert not (tmp_path / "out" / JOURNAL).exists()


@pytest.mark.parametrize("edit", ["no sha256", "no conflicts"])
def test_a_journal_line_edited_out_of_shape_is_no_hour_to_list(export, tmp_path, edit):
    """A `renaming` line whose entry names no sha256, or lacks what an entry holds (edited by
    hand), vouches for no file."""
    out = tmp_path / "out"
    assert pull(export, out).exit_code == 0
    entry = orjson.loads((out / CHECKPOINT).read_bytes())["hours"][HOURS[1]]
    entry.pop("sha256" if edit == "no sha256" else "conflicts")
    notes = {"sha256": entry.get("sha256")}
    line = {"hour": HOURS[1], "hour_timezone": "UTC", "renaming": notes, "entry": entry}
    (out / JOURNAL).write_bytes(orjson.dumps(line) + b"\n")

    again = pull(export, out)

    assert again.exit_code == 0, again.output
    assert [text.split()[1] for text in again.stdout.splitlines()[:3]] == ["done"] * 3
    assert not (out / JOURNAL).exists()
