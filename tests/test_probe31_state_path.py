"""A state database whose name is not UTF-8 (made by a run, which opens it fine): `state show`
and `due` stopped as an internal error (exit 70) building SQLite's `file:` URI from the name
(probe31)."""

from __future__ import annotations

import os
import shutil

import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    folder = tmp_path_factory.mktemp("latin1")
    keys = generate_key_files(folder / "keys", identity="auditor@test")
    export = folder / "export.jsonl"
    export.write_text(f'{{"msg_id": "1", "timestamp": {NOV_1}, "from": "a", "to": "b"}}\n')
    made = folder / "state.db"
    result = CliRunner().invoke(
        main,
        [
            *("run", "--from", str(export), "--policies", str(example_policy())),
            *("--key", str(keys.private_key), "--out", str(folder / "archive")),
            *("--state", str(made), "--fail-on", "none", "--quiet"),
        ],
    )
    assert result.exit_code == 0, result.output
    named = os.fsdecode(os.path.join(os.fsencode(folder), b"\xe9tat.db"))
    shutil.copyfile(made, named)
    return named


@pytest.mark.parametrize("command", [["state", "show"], ["due"]])
def test_a_state_named_in_latin_1_is_read(state, command):
    result = CliRunner().invoke(main, [*command, "--state", state])
    assert result.exit_code == 0, result.output
    assert "1 message" in result.output or "kept" in result.output
