"""Legal releases a hold as README says: set its `ends:`, never delete the hold from the file,
or `due --policy` keeps its messages `hold` for ever; then "check a policy after each edit with
`auditor policy check`". That check called the released hold a conflict (exit 1) and said
"remove it", the very edit README forbids (probe31; auditor/policies/check.py is pol31's area)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from auditor.cli import main
from auditor.resources import example_policy

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_says_a_released_hold_stays_in_the_file():
    assert "never delete the hold from the file" in " ".join(README.split())


def test_policy_check_of_a_released_hold_does_not_ask_to_remove_it(tmp_path):
    text = example_policy().read_text()
    released, count = re.subn(
        r"(    starts: 2026-10-15\n)    # ends: 2027-06-30[^\n]*\n",
        r"\1    ends: 2026-11-20\n",
        text,
    )
    assert count == 1
    policy = tmp_path / "policies.yaml"
    policy.write_text(released)

    result = CliRunner().invoke(main, ["policy", "check", str(policy), "--now", "2026-12-01"])

    assert "remove it" not in result.output
    assert result.exit_code == 0, result.output
