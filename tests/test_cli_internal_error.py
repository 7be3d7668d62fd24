"""A bug in the auditor ends in one line and exit 70, never in Python's exit 1, which the
command line uses for "done, with findings" and a service may count as success."""

from __future__ import annotations

import contextlib
import logging
import os
import signal

from click.testing import CliRunner

import auditor.archive.keys
from auditor.cli import EXIT_INTERNAL, EXIT_TERMINATED, Terminated, main
from auditor.errors import InputError


def _broken(*args, **kwargs):
    raise ValueError("invalid literal for int() with base 10: '\u00b2'")


def test_an_unexpected_exception_is_one_line_and_exit_70(monkeypatch, tmp_path):
    monkeypatch.setattr(auditor.archive.keys, "generate_key_files", _broken)

    result = CliRunner().invoke(main, ["keygen", "--out", str(tmp_path)])

    assert result.exit_code == EXIT_INTERNAL == 70
    assert result.stderr == (
        "auditor: internal error (ValueError: invalid literal for int() with base 10: '\u00b2'); "
        "this is a bug in the auditor; run with -vv for the traceback and report it\n"
    )


def test_with_vv_the_traceback_is_logged(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(auditor.archive.keys, "generate_key_files", _broken)

    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(main, ["-vv", "keygen", "--out", str(tmp_path)])

    assert result.exit_code == 70
    (record,) = [r for r in caplog.records if r.message == "internal error"]
    assert record.exc_info[0] is ValueError


def _terminated_then_broken(*args, **kwargs):
    """SIGTERM whose `Terminated` is lost (as where Python only prints an exception: an at-fork
    hook, a finalizer), then the failure it causes: a worker dead of the same signal."""
    with contextlib.suppress(Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
    raise InputError("a worker process died (killed, or out of memory)")


def test_an_error_after_sigterm_is_reported_as_the_stop_it_is(monkeypatch, tmp_path):
    monkeypatch.setattr(auditor.archive.keys, "generate_key_files", _terminated_then_broken)

    stopped = CliRunner().invoke(main, ["keygen", "--out", str(tmp_path / "a")])
    monkeypatch.setattr(auditor.archive.keys, "generate_key_files", _broken)
    next_command = CliRunner().invoke(main, ["keygen", "--out", str(tmp_path / "b")])

    assert (stopped.exit_code, stopped.stderr) == (EXIT_TERMINATED, "auditor: terminated\n")
    assert next_command.exit_code == EXIT_INTERNAL
