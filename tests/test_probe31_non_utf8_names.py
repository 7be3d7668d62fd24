"""`run --from` an export whose file name is not UTF-8 (a Latin-1 `résumé.jsonl` unpacked from a
Windows zip): `pull --from`, `scan` and `validate` read it, but the run stopped as an internal
error (exit 70, "str is not valid UTF-8: surrogates not allowed") while it described its inputs
(probe31; auditor/sources/folder.py `_described` is folder31's area)."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000


def test_a_run_from_a_file_named_in_latin_1_archives_it(tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="auditor@test")
    folder = tmp_path / "export"
    folder.mkdir()
    record = {"msg_id": "1", "timestamp": NOV_1, "from": "a", "to": "b", "chat_type": "chat"}
    with open(os.path.join(os.fsencode(folder), b"r\xe9sum\xe9.jsonl"), "w") as handle:
        handle.write(json.dumps(record) + "\nnot json\n")  # a finding names the file

    result = CliRunner().invoke(
        main,
        [
            *("run", "--from", str(folder), "--policies", str(example_policy())),
            *("--key", str(keys.private_key), "--out", str(tmp_path / "archive")),
            *("--state", str(tmp_path / "state.db"), "--fail-on", "none", "--quiet"),
        ],
    )

    assert result.exit_code == 0, result.output
    (bag,) = (tmp_path / "archive").glob("run-*")
    assert len((bag / "data/records/2026110100.jsonl").read_bytes().splitlines()) == 1
    assert (bag / "data/unreadable/2026110100.txt").read_bytes() == b"not json\n"
