"""A refusal's reason when the system gave an OSError without an errno, whose `strerror` is
None: the one line said "(None)" and told the reader nothing."""

from __future__ import annotations

import errno

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.errors import os_reason


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (OSError(errno.EACCES, "Permission denied"), "Permission denied"),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), "Permission denied"),
        (OSError(errno.ENOSPC, None), "No space left on device"),
        (OSError("the share went away"), "the share went away"),
        (OSError(), "the system gave no reason"),
    ],
    ids=["strerror", "with a file", "errno alone", "words alone", "nothing"],
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
