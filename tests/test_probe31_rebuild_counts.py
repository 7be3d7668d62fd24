"""`state rebuild` says how many records without a msg_id it indexed: a record archived again by
a later run whose window holds it (each such run archives it, having nothing to know it by) was
counted once per bag, so the rebuild said 6 where `state show` of the same state said 4
(probe31, 13 runs over the emulator)."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000


def invoke(*args: object):
    return CliRunner().invoke(main, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Two runs of one window (judged as of two instants), each archiving the one record
    without a msg_id."""
    folder = tmp_path_factory.mktemp("anonymous")
    keys = generate_key_files(folder / "keys", identity="auditor@test")
    export = folder / "export.jsonl"
    export.write_text(
        f'{{"msg_id": "1", "timestamp": {NOV_1}, "from": "a", "to": "b"}}\n'
        f'{{"timestamp": {NOV_1 + 1}, "from": "a", "to": "b"}}\n'
    )
    for as_of in ("2026-11-02T00:00Z", "2026-11-03T00:00Z"):
        ran = invoke(
            *("run", "--from", export, "--policies", example_policy()),
            *("--key", keys.private_key, "--out", folder / "archive"),
            *("--state", folder / "state.db", "--as-of", as_of, "--fail-on", "none", "--quiet"),
        )
        assert ran.exit_code == 0, ran.output
    return folder, keys


def test_rebuild_counts_each_record_without_a_msg_id_once_as_state_show_does(chain):
    folder, keys = chain
    shown = invoke("state", "show", "--state", folder / "state.db")
    rebuilt = invoke(
        *("state", "rebuild", "--out", folder / "archive", "--state", folder / "new.db"),
        *("--pubkey", keys.public_key),
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "1 message(s), 1 without a msg_id" in shown.output
    assert re.search(r": 1 message\(s\) indexed, 1 without a msg_id;", rebuilt.output)
