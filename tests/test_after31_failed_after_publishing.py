"""A command that fails after its run is durable says so: the internal-error line (exit 70) of a
run whose bag was published said "nothing was published, progress is kept", and an operator
would take a done run for one to redo."""

from __future__ import annotations

import errno
import sqlite3

import pytest
import run_support
from click.testing import CliRunner

from auditor import crashpoints
from auditor.cli import EXIT_INTERNAL, main

SECRET = "after31-published-secret"
BAG = "run-000001-2026110100-2026110102"
TAIL = "run with -vv for the traceback and report it\n"

emulator = run_support.emulator_fixture(SECRET, messages=120)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from auditor.archive.keys import generate_key_files

    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="after31-test")


def invoke(args: list[str]):
    env = {"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None}
    return CliRunner().invoke(main, args, env=env)


def _breaking_at(point: str):
    def reached(name: str) -> None:
        if name == point:
            raise RuntimeError(f"broken at {name}")

    return reached


def _args(emulator, keys, folder):
    return run_support.run_args(
        emulator, keys, folder, "--fail-on", "none", "--quiet", "--attachments", "skip", hours=2
    )


def completed_runs(folder) -> int:
    with sqlite3.connect(folder / "state.db") as db:
        return db.execute("SELECT count(*) FROM runs WHERE status = 'completed'").fetchone()[0]


def test_an_internal_error_after_publishing_says_the_bag_was_published(
    emulator, keys, tmp_path, monkeypatch
):
    args = _args(emulator, keys, tmp_path)
    monkeypatch.setattr(crashpoints, "reached", _breaking_at("archive.published"))

    result = invoke(args)

    bag = tmp_path / "archive" / BAG
    assert result.exit_code == EXIT_INTERNAL, result.output
    assert result.stderr == (
        "auditor: internal error (RuntimeError: broken at archive.published); this is a bug in "
        f"the auditor: run 1's bag {bag} was published and recorded in the state (the run is "
        "done: running again does not redo it); what failed came after: its summary was not "
        f"printed and this exit code does not tell its findings (its report does); {TAIL}"
    )
    assert bag.is_dir() and completed_runs(tmp_path) == 1
    monkeypatch.undo()
    again = invoke(args)
    assert (again.exit_code, again.stderr) == (0, ""), again.output
    assert completed_runs(tmp_path) == 1 and [*bag.parent.glob("run-*")] == [bag]


def test_an_internal_error_between_commit_and_publishing_says_the_next_run_publishes(
    emulator, keys, tmp_path, monkeypatch
):
    args = _args(emulator, keys, tmp_path)
    monkeypatch.setattr(crashpoints, "reached", _breaking_at("archive.committed"))

    result = invoke(args)

    assert result.exit_code == EXIT_INTERNAL, result.output
    assert result.stderr == (
        "auditor: internal error (RuntimeError: broken at archive.committed); this is a bug in "
        "the auditor: run 1 is recorded in the state but its bag was not yet renamed to "
        f"{tmp_path / 'archive' / BAG}: the next run publishes it; {TAIL}"
    )
    later = [*args[: args.index("--since")], "--since", "2026-11-01T02:00Z"]
    later += ["--until", "2026-11-01T03:00Z", "--as-of", "2026-11-01T03:00Z"]
    later += args[args.index("--as-of") + 2 :]
    monkeypatch.setattr(crashpoints, "reached", _breaking_at("archive.signed"))
    next_run = invoke(later)
    assert next_run.exit_code == EXIT_INTERNAL, next_run.output
    assert next_run.stderr == (
        "auditor: internal error (RuntimeError: broken at archive.signed); this is a bug in the "
        f"auditor: run 1's bag {tmp_path / 'archive' / BAG}, which a stopped run had recorded in "
        f"the state, was published; this run published nothing, progress is kept; {TAIL}"
    )
    assert (tmp_path / "archive" / BAG).is_dir() and completed_runs(tmp_path) == 1
    monkeypatch.undo()
    again = invoke(later)
    assert again.exit_code == 0, again.output
    assert completed_runs(tmp_path) == 2


def test_an_internal_error_before_the_commit_still_says_nothing_was_published(
    emulator, keys, tmp_path, monkeypatch
):
    monkeypatch.setattr(crashpoints, "reached", _breaking_at("archive.signed"))

    result = invoke(_args(emulator, keys, tmp_path))

    assert result.exit_code == EXIT_INTERNAL, result.output
    assert result.stderr == (
        "auditor: internal error (RuntimeError: broken at archive.signed); this is a bug in "
        f"the auditor: nothing was published, progress is kept; {TAIL}"
    )
    assert completed_runs(tmp_path) == 0


def test_a_refusal_after_publishing_says_the_bag_was_published(
    emulator, keys, tmp_path, monkeypatch
):
    """A full disk met after the bag was published is told as a refusal (exit 2), with the run
    it did not undo."""

    def reached(name: str) -> None:
        if name == "archive.published":
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(crashpoints, "reached", reached)

    result = invoke(_args(emulator, keys, tmp_path))

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("auditor: error: ")
    assert "writing the run's bag and spool" not in result.stderr  # that was done by then
    assert result.stderr.endswith(
        f"No space left on device; run 1's bag {tmp_path / 'archive' / BAG} was published and "
        "recorded in the state (the run is done: running again does not redo it); what failed "
        "came after: its summary was not printed and this exit code does not tell its findings "
        "(its report does)\n"
    ), result.stderr
