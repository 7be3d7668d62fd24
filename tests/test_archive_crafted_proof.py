"""`auditor prove` on a crafted bag and `verify-proof` on a forged proof: one line and exit 2 (or
a problem line and exit 1), never a hang, a followed symlink, or an unsigned field shown as
proved."""

from __future__ import annotations

import os

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import build_bag, copy_bag, make_keys, record_files

from auditor.archive import untrusted
from auditor.cli import main
from auditor.emulator.dataset import SyntheticHistory

ESCAPED_IDS = ['a"b', "x\\y", "tab\there", "new\nline"]
ESCAPED_IDS_SHOWN = {
    'a"b': 'a"b',
    "x\\y": "x\\y",
    "tab\there": "tab\\there",
    "new\nline": "new\\nline",
}
MSG_ID = SyntheticHistory(seed=7, messages=48, days=1).msg_id(20)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def bag(keys, tmp_path_factory):
    extra = [{"msg_id": msg_id, "timestamp": 1_793_491_200_000} for msg_id in ESCAPED_IDS]
    return build_bag(
        tmp_path_factory.mktemp("runs"), keys[1], "run-000003", 3, messages=48, extra_records=extra
    ).path


def _invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def _prove(bag, tmp_path, msg_id=MSG_ID):
    return _invoke("prove", bag, msg_id, "-o", tmp_path / "proof.json")


def test_an_unlisted_fifo_among_the_record_files_is_refused(bag, tmp_path):
    crafted = copy_bag(bag, tmp_path / "crafted")
    fifo = crafted / "data" / "records" / "2099010100.jsonl"
    os.mkfifo(fifo)

    assert _error(_prove(crafted, tmp_path)) == (
        f"auditor: error: {fifo}: is a FIFO, not a regular file\n"
    )


@pytest.mark.parametrize("name", ["bag-info.txt", "tagmanifest-sha256.txt.sig"])
def test_a_fifo_as_a_tag_file_is_refused(bag, tmp_path, name):
    crafted = copy_bag(bag, tmp_path / "crafted")
    (crafted / name).unlink()
    os.mkfifo(crafted / name)

    assert _error(_prove(crafted, tmp_path)) == (
        f"auditor: error: {crafted / name}: is a FIFO, not a regular file\n"
    )


def test_a_records_file_linked_to_outside_the_bag_is_not_followed(bag, tmp_path):
    crafted = copy_bag(bag, tmp_path / "crafted")
    target = record_files(crafted)[0]
    outside = tmp_path / "outside.jsonl"
    target.rename(outside)
    target.symlink_to(outside)

    assert _error(_prove(crafted, tmp_path)) == (
        f"auditor: error: {target}: is a symbolic link, not a file of the bag\n"
    )


def test_a_bag_info_linked_elsewhere_is_not_followed(bag, tmp_path):
    crafted = copy_bag(bag, tmp_path / "crafted")
    (crafted / "bag-info.txt").unlink()
    (crafted / "bag-info.txt").symlink_to("/etc/passwd")

    assert _error(_prove(crafted, tmp_path)) == (
        f"auditor: error: {crafted / 'bag-info.txt'}: is a symbolic link, not a file of the bag\n"
    )


def test_a_huge_ssh_signature_is_refused_past_its_cap(bag, tmp_path):
    crafted = copy_bag(bag, tmp_path / "crafted")
    with (crafted / "tagmanifest-sha256.txt.sshsig").open("r+b") as handle:
        handle.truncate(2 << 20)

    assert _error(_prove(crafted, tmp_path)) == (
        f"auditor: error: {crafted / 'tagmanifest-sha256.txt.sshsig'}: is larger than the "
        "1,048,576 bytes such a file holds\n"
    )


def test_a_record_line_past_the_cap_is_refused(bag, tmp_path, monkeypatch):
    monkeypatch.setattr(untrusted, "LINE_LIMIT", 4_000)
    crafted = copy_bag(bag, tmp_path / "crafted")
    target = record_files(crafted)[0]
    target.write_bytes(b"x" * 5_000 + b"\n" + target.read_bytes())

    assert _error(_prove(crafted, tmp_path)) == (
        f"auditor: error: {target}:1: a line longer than 4,000 bytes, which no archived line "
        "is; run `auditor verify` on the bag\n"
    )


@pytest.mark.parametrize("msg_id", ESCAPED_IDS)
def test_a_msg_id_that_json_escapes_is_found_and_proved(bag, keys, tmp_path, msg_id):
    proved = _prove(bag, tmp_path, msg_id)
    checked = _invoke("verify-proof", tmp_path / "proof.json", "--pubkey", keys[0].public_key)

    assert proved.exit_code == 0, proved.output
    assert len(proved.stdout.splitlines()) == 1
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines() == [checked.stdout.rstrip("\n")]
    assert checked.stdout.endswith(f"; msg_id {ESCAPED_IDS_SHOWN[msg_id]}\n")


def _forged(tmp_path, source, **fields):
    assert _prove(source, tmp_path).exit_code == 0
    path = tmp_path / "proof.json"
    proof = orjson.loads(path.read_bytes())
    proof.update(fields)
    forged = tmp_path / "forged.json"
    forged.write_bytes(orjson.dumps(proof))
    return forged


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"msg_id": "999999999999999999"},
            f"msg_id 999999999999999999 is not the msg_id of the proved line ({MSG_ID})",
        ),
        ({"bag": "run-000099-2099123100-2099123123"}, None),
        (
            {"bag": "run-000003 (EVERYTHING)\nALSO FINE"},
            "bag 'run-000003 (EVERYTHING)\\nALSO FINE' is not a bag's folder name",
        ),
        ({"file": "../../etc/passwd"}, "file '../../etc/passwd' is not a records file"),
        ({"line_number": -4}, "line_number -4 is not a line number"),
    ],
    ids=["msg_id", "bag-of-another-run", "bag-with-a-newline", "file", "line_number"],
)
def test_a_proof_whose_unsigned_fields_disagree_with_the_signed_line_fails(
    bag, keys, tmp_path, fields, problem
):
    forged = _forged(tmp_path, bag, **fields)
    problem = problem or (
        "bag run-000099-2099123100-2099123123 names run 99, the signed Run-Sequence is 3"
    )

    result = _invoke("verify-proof", forged, "--pubkey", keys[0].public_key)

    assert result.exit_code == 1, result.output
    assert result.stdout == f"{forged}: {problem}\n"


def test_verify_proof_prints_only_what_the_signature_covers(bag, keys, tmp_path):
    forged = _forged(tmp_path, bag, bag="copied-by-hand", file="data/records/forged-hour.jsonl")

    result = _invoke("verify-proof", forged, "--pubkey", keys[0].public_key)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{forged}: proved: leaf ")
    assert " in run run-000003, root " in result.stdout
    assert result.stdout.endswith(f"; msg_id {MSG_ID}\n")
    assert "copied-by-hand" not in result.stdout
    assert "forged-hour" not in result.stdout
