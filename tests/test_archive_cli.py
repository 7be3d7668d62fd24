"""`auditor keygen / verify / verify-chain / prove / verify-proof`: output and exit codes."""

from __future__ import annotations

import shutil

import orjson
import pytest
from click.testing import CliRunner
from test_archive_support import build_chain, copy_bag, make_keys, middle_file

from auditor.archive import layout
from auditor.archive.keys import PASSPHRASE_ENV
from auditor.cli import main

PASSPHRASE = "tr0ub4dor&3-not-in-output"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def runs(keys, tmp_path_factory):
    return build_chain(tmp_path_factory.mktemp("runs"), keys[1], messages=48)


def _invoke(*arguments: str, env: dict | None = None):
    return CliRunner().invoke(main, [str(argument) for argument in arguments], env=env)


def test_keygen_prints_where_the_keys_are_and_the_fingerprint(tmp_path):
    result = _invoke("keygen", "--out", tmp_path, "--identity", "auditor@acme")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"private key:     {tmp_path / 'auditor-signing-key.pem'} (mode 0600, NOT encrypted: "
        f"set {PASSPHRASE_ENV})"
    )
    assert lines[2] == f"allowed_signers: {tmp_path / 'allowed_signers'} (identity auditor@acme)"
    assert lines[3].startswith("fingerprint:     SHA256:")


def test_keygen_encrypts_with_the_passphrase_from_the_environment_and_never_prints_it(tmp_path):
    result = _invoke("keygen", "--out", tmp_path, env={PASSPHRASE_ENV: PASSPHRASE})

    assert result.exit_code == 0
    assert "(mode 0600, encrypted)" in result.stdout
    assert PASSPHRASE not in result.output


def test_keygen_refuses_to_overwrite_with_exit_2(tmp_path):
    _invoke("keygen", "--out", tmp_path)

    result = _invoke("keygen", "--out", tmp_path)

    assert result.exit_code == 2
    assert result.stderr.startswith(f"auditor: error: {tmp_path / 'auditor-signing-key.pem'}, ")
    assert "refusing to overwrite a signing key" in result.stderr


def test_verify_an_intact_bag_exits_0(runs, keys):
    result = _invoke("verify", runs / "run-000001", "--pubkey", keys[0].public_key)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{runs / 'run-000001'}: intact: run 1, 48 records, ")


def test_verify_with_the_previous_run_and_the_allowed_signers_file_as_key(runs, keys):
    result = _invoke(
        "verify",
        runs / "run-000002",
        "--pubkey",
        keys[0].allowed_signers,
        "--previous",
        runs / "run-000001",
    )

    assert result.exit_code == 0, result.output


def test_verify_a_tampered_bag_exits_1_with_one_line_per_problem(runs, keys, tmp_path):
    bag = copy_bag(runs / "run-000001", tmp_path)
    target = middle_file(bag, minimum=2)
    lines = target.read_bytes().splitlines(keepends=True)
    target.write_bytes(b"".join([*lines, lines[-1]]))
    last = orjson.loads(lines[-1])["seq"]
    (bag / "extra.txt").write_text("x")

    result = _invoke("verify", bag, "--pubkey", keys[0].public_key)

    assert result.exit_code == 1
    relative = target.relative_to(bag).as_posix()
    assert result.stdout.splitlines()[:3] == [
        "run-000001/extra.txt: extra file in the bag root: no manifest or signature covers it",
        f"run-000001/{relative}:{len(lines) + 1}: seq {last} where {last + 1} was expected: "
        "a line repeated or out of order",
        f"run-000001/{relative}: its SHA-256 does not match manifest-sha256.txt (changed)",
    ]
    assert result.stderr == f"{bag}: {len(result.stdout.splitlines())} problem(s) found\n"


def test_verify_a_missing_bag_or_an_unreadable_key_exits_2(runs, keys, tmp_path):
    missing = _invoke("verify", tmp_path / "nope", "--pubkey", keys[0].public_key)
    no_key = _invoke("verify", runs / "run-000001", "--pubkey", tmp_path / "none.pem")
    private = _invoke("verify", runs / "run-000001", "--pubkey", keys[0].private_key)

    assert (missing.exit_code, no_key.exit_code, private.exit_code) == (2, 2, 2)
    assert no_key.stderr == (
        f"auditor: error: {tmp_path / 'none.pem'}: cannot read the public key "
        "(No such file or directory)\n"
    )
    assert private.stderr == (
        f"auditor: error: {keys[0].private_key}: is a private key; give the public key "
        "(.pub.pem) instead\n"
    )


def test_verify_chain_exits_0_for_a_whole_series_and_1_when_a_run_is_missing(runs, keys, tmp_path):
    intact = _invoke("verify-chain", runs, "--pubkey", keys[0].public_key)
    gapped = tmp_path / "runs"
    shutil.copytree(runs, gapped)
    shutil.rmtree(gapped / "run-000001")

    broken = _invoke("verify-chain", gapped, "--pubkey", keys[0].public_key)

    assert intact.exit_code == 0, intact.output
    assert intact.stdout.startswith(f"{runs}: intact chain of runs 1 to 2; ")
    assert broken.exit_code == 1
    assert broken.stdout == "run-000002: the chain starts at run 2: runs 1 to 1 are missing\n"


def test_prove_and_verify_proof(runs, keys, tmp_path):
    proof = tmp_path / "proof.json"
    msg_id = "200000070000000020"

    proved = _invoke("prove", runs / "run-000001", msg_id, "-o", proof)
    checked = _invoke("verify-proof", proof, "--pubkey", keys[0].public_key)

    assert proved.exit_code == 0, proved.output
    assert proved.stdout.startswith(f"{proof}: msg_id {msg_id} is leaf 20 of 48 in run-000001 ")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith(f"{proof}: proved: leaf 20 of 48 in run run-000001, root ")


def test_verify_proof_of_a_forged_proof_exits_1(runs, keys, tmp_path):
    proof = tmp_path / "proof.json"
    _invoke("prove", runs / "run-000001", "200000070000000020", "-o", proof)
    proof.write_text(proof.read_text().replace('"leaf_index": 20', '"leaf_index": 21'))

    result = _invoke("verify-proof", proof, "--pubkey", keys[0].public_key)

    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"{proof}: leaf_index 21 is not the line's seq 20"


def test_prove_an_unknown_message_exits_2(runs, tmp_path):
    result = _invoke("prove", runs / "run-000001", "nope", "-o", tmp_path / "p.json")

    assert result.exit_code == 2
    assert result.stderr == f"auditor: error: {runs / 'run-000001'}: no record with msg_id nope\n"
    assert not (tmp_path / "p.json").exists()


def test_the_bag_layout_is_what_verify_txt_describes(runs):
    names = sorted(path.name for path in (runs / "run-000001").iterdir())

    assert names == sorted([*layout.ROOT_FILES, "data"])


@pytest.mark.parametrize(
    ("command", "where"),
    [("report", "data/report"), ("report", "."), ("prove", "data/proof.json")],
)
def test_nothing_is_written_into_a_signed_bag_and_it_still_verifies(
    runs, keys, tmp_path, command, where
):
    bag = tmp_path / "run-000001"
    shutil.copytree(runs / "run-000001", bag)
    target = bag / where
    arguments = ["-o", target] if command == "report" else ["200000070000000020", "-o", target]

    result = _invoke(command, bag, *arguments)
    checked = _invoke("verify", bag, "--pubkey", keys[0].public_key)

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"auditor: error: {target} is inside the bag {bag}: writing "
        f"{'the report' if command == 'report' else 'a proof'} there would change a signed "
        "archive; choose a folder outside it\n"
    )
    assert checked.exit_code == 0, checked.output
