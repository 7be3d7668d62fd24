"""A refusal's reason when the system gave an OSError without an errno, whose `strerror` is
None: the one line said "(None)" and told the reader nothing."""

from __future__ import annotations

import errno

import pytest
from click.testing import CliRunner

from auditor.cli import _refusal, main
from auditor.errors import os_reason


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (OSError(errno.EACCES, "Permission denied"), "Permission denied"),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), "Permission denied"),
        (OSError(errno.ENOSPC, None), "No space left on device"),
        (OSError("the share went away"), "the share went away"),
        (OSError(), "the system gave no reason"),
        (OSError(None, None, "/x"), "the system gave no reason"),
    ],
    ids=["strerror", "with a file", "errno alone", "words alone", "nothing", "a file alone"],
)
def test_the_reason_is_strerror_else_the_errors_words_else_a_plain_one(error, said):
    assert os_reason(error) == said


def test_a_policy_refused_without_an_errno_says_why_in_one_line(tmp_path, monkeypatch):
    """Through a real command: `auditor validate`'s policy read refused by an OSError without
    an errno, as a FUSE or network file system's library may raise."""
    policy = tmp_path / "policies.yaml"
    policy.write_text("rules: []\n")

    def refused(*_args, **_kwargs):
        raise OSError("the share went away")

    monkeypatch.setattr("auditor.operator_files.read_regular", refused)
    result = CliRunner().invoke(main, ["policy", "check", str(policy)])

    assert result.exit_code == 2, result.output
    assert "None" not in result.stderr and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"auditor: error: {policy}: cannot read the policy file (the share went away)"
    ]


def test_a_refusal_the_cli_words_itself_names_the_file_and_a_reason_without_an_errno():
    """What a command fails with unforeseen (`cli._refusal`): Python's own line for an
    errno-less OSError naming a file is "[Errno None] None: '/x'"."""
    assert _refusal(OSError(None, None, "/srv/a.db"), "auditor run") == (
        "/srv/a.db: the system gave no reason"
    )
    assert _refusal(OSError("the share went away"), "auditor run") == (
        "auditor run: the share went away"
    )
    assert _refusal(OSError(errno.ENOSPC, "No space left on device", "/srv/a.db"), "x") == (
        "[Errno 28] No space left on device: '/srv/a.db'"
    )
