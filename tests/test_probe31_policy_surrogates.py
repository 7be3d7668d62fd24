"""A policy whose YAML writes a lone surrogate as an escape (`"\\ud800"`, or the two halves of a
pair, as JSON writes an emoji): `policy check` said OK, and every run then stopped at its report
as an internal error (exit 70: summary.json cannot hold the policy's name), so the chain stood
still (probe31). A lone half is one line naming the file and line, exit 2; a pair is the one
character it spells, as JSON reads it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.policies.loading import load_policy
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000


def invoke(*args: object):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def policy_named(tmp_path, name: str):
    text = example_policy().read_text()
    assert text.count("name: Demo compliance policy\n") == 1
    policy = tmp_path / "policies.yaml"
    policy.write_text(text.replace("name: Demo compliance policy", f'name: "{name}"'))
    return policy


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_lone_surrogate_in_a_policy_is_one_line_and_exit_2(tmp_path, command):
    policy = policy_named(tmp_path, "Demo \\ud800 policy")
    if command == "check":
        result = invoke("policy", "check", policy)
    else:
        keys = generate_key_files(tmp_path / "keys", identity="auditor@test")
        export = tmp_path / "export.jsonl"
        export.write_text(f'{{"msg_id": "1", "timestamp": {NOV_1}}}\n')
        result = invoke(
            *("run", "--from", export, "--policies", policy, "--key", keys.private_key),
            *("--out", tmp_path / "archive", "--state", tmp_path / "state.db", "--quiet"),
        )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"auditor: error: {policy}:8: "), lines
    assert "surrogate" in lines[0]


def test_an_escaped_surrogate_pair_in_a_policy_is_the_character_it_spells(tmp_path):
    policy = policy_named(tmp_path, "Demo \\ud83d\\ude00 policy")
    assert load_policy(policy).name == "Demo \U0001f600 policy"
