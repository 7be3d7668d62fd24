"""A path whose name is not UTF-8 (a Latin-1 folder), printed by a command to a stream that
refuses what UTF-8 cannot hold (Python's stdout under `LANG=en_US.UTF-8`, a CliRunner): the
command had done its work (a run had published and recorded its bag) and then stopped as an
internal error, exit 70, saying "nothing was published" (probe31). Such a name is printed
escaped, and the command ends with its own exit code."""

from __future__ import annotations

import os

from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000


def latin_1(folder, name: bytes) -> str:
    return os.fsdecode(os.path.join(os.fsencode(folder), name))


def test_a_run_into_a_folder_named_in_latin_1_says_where_its_bag_is(tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="auditor@test")
    export = tmp_path / "export.jsonl"
    export.write_text(f'{{"msg_id": "1", "timestamp": {NOV_1}, "from": "a", "to": "b"}}\n')
    out = latin_1(tmp_path, b"archiv\xe9")
    result = CliRunner().invoke(
        main,
        [
            *("run", "--from", str(export), "--policies", str(example_policy())),
            *("--key", str(keys.private_key), "--out", out),
            *("--state", str(tmp_path / "state.db"), "--fail-on", "none"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "archiv\\udce9/run-000001-2026110100-2026110101" in result.stdout


def test_keygen_into_a_folder_named_in_latin_1_says_where_its_keys_are(tmp_path):
    result = CliRunner().invoke(main, ["keygen", "--out", latin_1(tmp_path, b"cl\xe9s")])
    assert result.exit_code == 0, result.output
    assert "cl\\udce9s/auditor-signing-key.pub.pem" in result.stdout
