"""Verifying across a key rotation (probe 17): runs 1-2 signed by the old key, run 3 by the new
one. Legal gives both keys, as repeated `--pubkey` or one allowed_signers file of both lines;
each bag must be signed by one of them, and the output says which key signed which runs."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_archive_support import (
    build_bag,
    make_keys,
    middle_file,
    openssl_verify,
    recompute_manifests,
    ssh_verify,
)

from auditor.archive import layout
from auditor.archive.canonical import canonical
from auditor.archive.chain import verify_chain
from auditor.archive.publickey import fingerprint, load_public_key, load_public_keys
from auditor.archive.signing import sign
from auditor.cli import main
from auditor.emulator.dataset import SyntheticHistory
from auditor.errors import ConfigError

# `auditor keygen` names both keys auditor@<host> when made on the same host.
IDENTITY = "auditor@archive-host"
MSG_ID = SyntheticHistory(seed=1, messages=48, days=1).msg_id(20)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """The old key, the new key, and legal's allowed_signers file listing both."""
    folder = tmp_path_factory.mktemp("keys")
    old = make_keys(folder / "keys", IDENTITY)
    new = make_keys(folder / "keys-2027", IDENTITY)
    both = folder / "allowed_signers"
    both.write_text(old[0].allowed_signers.read_text() + new[0].allowed_signers.read_text())
    return old, new, both


@pytest.fixture(scope="module")
def series(keys, tmp_path_factory):
    """Runs 1 and 2 signed by the old key, run 3 by the new one, one chain."""
    old, new, _ = keys
    root = tmp_path_factory.mktemp("archive")
    previous = layout.ZERO_HASH
    for sequence, key in ((1, old[1]), (2, old[1]), (3, new[1])):
        previous = build_bag(
            root, key, f"run-00000{sequence}", sequence, previous, messages=48, seed=sequence
        ).tagmanifest_sha256
    return root


@pytest.fixture
def archive(series, tmp_path):
    target = tmp_path / "archive"
    shutil.copytree(series, target)
    return target


def _invoke(*arguments):
    return CliRunner().invoke(main, [str(argument) for argument in arguments])


def _forge_run_3(archive: Path, signer: Ed25519PrivateKey) -> None:
    """A record of run 3 edited, its manifests recomputed and signed again by `signer`."""
    bag = archive / "run-000003"
    target = middle_file(bag, minimum=1)
    lines = target.read_bytes().splitlines(keepends=True)
    value = orjson.loads(lines[0])
    value["record"]["payload"]["bodies"] = [{"type": "txt", "msg": "I never said that"}]
    target.write_bytes(canonical(value) + b"\n" + b"".join(lines[1:]))
    recompute_manifests(bag)
    signatures = sign(signer, (bag / layout.TAGMANIFEST).read_bytes(), layout.DEFAULT_NAMESPACE)
    (bag / layout.SIGNATURE).write_bytes(signatures.raw)
    (bag / layout.SSH_SIGNATURE).write_text(signatures.ssh)


def test_a_chain_across_a_rotation_verifies_with_both_keys_and_says_which_signed_which_runs(
    archive, keys
):
    old, new, _ = keys

    result = _invoke(
        "verify-chain", archive, "--pubkey", old[0].public_key, "--pubkey", new[0].public_key
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        f"{archive}: runs 1 to 2 signed by {old[0].fingerprint}",
        f"{archive}: run 3 signed by {new[0].fingerprint}",
    ]


def test_an_allowed_signers_file_of_both_lines_gives_both_keys(archive, keys):
    _, _, both = keys

    result = _invoke("verify-chain", archive, "--pubkey", both)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{archive}: intact chain of runs 1 to 3; ")


def test_with_the_new_key_alone_the_old_runs_fail_naming_the_key_tried(archive, keys):
    old, new, _ = keys

    result = _invoke("verify-chain", archive, "--pubkey", new[0].public_key)

    assert result.exit_code == 1
    assert result.stdout.splitlines()[:3] == [
        "run-000001/tagmanifest-sha256.txt.sig: the Ed25519 signature of tagmanifest-sha256.txt "
        f"does not verify with the given key {new[0].fingerprint}",
        f"run-000001/tagmanifest-sha256.txt.sshsig: signed by another key ({old[0].fingerprint})"
        f", not the given key {new[0].fingerprint}",
        f"run-000001/bag-info.txt: Signing-Key-Fingerprint is {old[0].fingerprint}, but the "
        f"given key is {new[0].fingerprint}",
    ]
    assert result.stderr == f"{archive}: 6 problem(s) found\n"


def test_the_run_after_the_rotation_verifies_against_its_predecessor_signed_by_the_old_key(
    archive, keys
):
    old, new, both = keys

    result = _invoke(
        "verify", archive / "run-000003", "--previous", archive / "run-000002", "--pubkey", both
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(
        f", signed by {new[0].fingerprint}; previous run {archive / 'run-000002'} signed by "
        f"{old[0].fingerprint}\n"
    )


def test_a_run_signed_by_a_key_legal_does_not_hold_fails_naming_every_key_tried(archive, keys):
    old, new, both = keys
    forger = Ed25519PrivateKey.generate()
    _forge_run_3(archive, forger)

    result = _invoke("verify-chain", archive, "--pubkey", both)

    tried = f"({old[0].fingerprint}, {new[0].fingerprint})"
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "run-000003/tagmanifest-sha256.txt.sig: the Ed25519 signature of tagmanifest-sha256.txt "
        f"does not verify with any given key {tried}",
        "run-000003/tagmanifest-sha256.txt.sshsig: signed by another key "
        f"({fingerprint(forger.public_key())}), not any given key {tried}",
    ]


@pytest.mark.parametrize("given", ["new", "old and new", "new and old", "allowed_signers"])
def test_a_tampered_bag_fails_with_any_set_of_keys(archive, keys, given):
    old, new, both = keys
    _forge_run_3(archive, Ed25519PrivateKey.generate())
    (archive / "run-000003" / layout.SIGNATURE).write_bytes(
        (archive / "run-000002" / layout.SIGNATURE).read_bytes()
    )
    paths = {
        "new": [new[0].public_key],
        "old and new": [old[0].public_key, new[0].public_key],
        "new and old": [new[0].public_key, old[0].public_key],
        "allowed_signers": [both],
    }[given]

    result = _invoke("verify", archive / "run-000003", *[f"--pubkey={path}" for path in paths])

    assert result.exit_code == 1
    assert "run-000003/tagmanifest-sha256.txt.sig: the Ed25519 signature of " in result.stdout


def test_two_signatures_of_one_bag_by_two_given_keys_are_a_problem(archive, keys):
    old, new, both = keys
    bag = archive / "run-000003"
    ssh = sign(old[1], (bag / layout.TAGMANIFEST).read_bytes(), layout.DEFAULT_NAMESPACE).ssh
    (bag / layout.SSH_SIGNATURE).write_text(ssh)

    result = _invoke("verify", bag, "--pubkey", both)

    assert result.exit_code == 1
    assert result.stdout == (
        f"run-000003/tagmanifest-sha256.txt.sshsig: signed by {old[0].fingerprint}, but "
        f"tagmanifest-sha256.txt.sig by {new[0].fingerprint}: one key signs both\n"
    )


def test_a_proof_from_a_run_of_the_old_key_verifies_with_both_and_names_it(archive, keys, tmp_path):
    old, new, _ = keys
    proof = tmp_path / "proof.json"
    _invoke("prove", archive / "run-000001", MSG_ID, "-o", proof)

    result = _invoke(
        "verify-proof", proof, "--pubkey", old[0].public_key, "--pubkey", new[0].public_key
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f", signed by {old[0].fingerprint}; msg_id {MSG_ID}\n")


def test_stock_tools_verify_each_run_with_an_allowed_signers_file_of_both_keys(series, keys):
    old, new, both = keys

    results = {
        name: (
            openssl_verify(series / name, key[0].public_key).returncode,
            ssh_verify(series / name, both, IDENTITY).returncode,
        )
        for name, key in (("run-000001", old), ("run-000003", new))
    }

    assert results == {"run-000001": (0, 0), "run-000003": (0, 0)}


def test_the_commands_in_verify_txt_after_the_rotation_succeed_as_written(series, keys):
    """Run 3's VERIFY.txt, every stock and auditor command in it (but the `grep -c` that looks
    for converted line ends when a check fails), from the folder it names."""
    _, new, both = keys
    bag = series / "run-000003"
    text = (bag / layout.VERIFY_TXT).read_text()
    commands = [
        re.sub(r"\\\n\s*", "", block).strip()
        for block in re.findall(
            r"^(?: {5}(?:openssl|ssh-keygen|sha256sum|echo|grep(?! -c))| {2}auditor)"
            r" (?:.*\\\n)*.*$",
            text,
            flags=re.M,
        )
    ]
    environment = {
        "PUBKEY": str(new[0].public_key),
        "SIGNERS": str(both),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }

    results = [
        subprocess.run(
            ["bash", "-c", command],
            cwd=bag,
            capture_output=True,
            env={**os.environ, **environment},
            check=False,
            timeout=120,
        )
        for command in commands
    ]

    assert [command.split()[0] for command in commands] == [
        "ssh-keygen", "openssl", "ssh-keygen", "sha256sum", "sha256sum", "grep", "echo", "grep",
        "auditor", "auditor",
    ]  # fmt: skip
    assert [result.returncode for result in results] == [0] * 10, [r.stderr for r in results]
    previous = (series / "run-000002" / layout.TAGMANIFEST).read_bytes()
    assert hashlib.sha256(previous).hexdigest() in commands[6]
    assert results[6].stdout == b"../run-000002/tagmanifest-sha256.txt: OK\n"
    assert results[7].stdout == b""  # no run number held twice


def test_an_allowed_signers_line_without_an_ed25519_key_is_refused_by_its_number(tmp_path, keys):
    old, _, _ = keys
    signers = tmp_path / "allowed_signers"
    signers.write_text(
        old[0].allowed_signers.read_text() + "# legal's note\n\nlegal@host ssh-rsa AAAAB3Nz\n"
    )

    with pytest.raises(ConfigError) as refused:
        load_public_keys([signers])

    assert str(refused.value).startswith(
        f"{signers}:4: not an Ed25519 public key (no ssh-ed25519 key on this line); "
    )


def test_concatenated_pem_keys_give_every_key_and_a_repeated_key_counts_once(tmp_path, keys):
    old, new, both = keys
    pems = tmp_path / "keys.pem"
    pems.write_bytes(old[0].public_key.read_bytes() + new[0].public_key.read_bytes())

    loaded = load_public_keys([pems, both, old[0].public_key])

    assert [fingerprint(key) for key in loaded] == [old[0].fingerprint, new[0].fingerprint]


def test_the_single_key_loader_refuses_a_file_of_two_keys_rather_than_take_the_first(keys):
    _, _, both = keys

    with pytest.raises(ConfigError, match=r"allowed_signers: holds 2 keys where one was expected"):
        load_public_key(both)


def test_verify_chain_in_python_takes_several_keys_too(series, keys):
    old, new, _ = keys
    public = [load_public_key(old[0].public_key), load_public_key(new[0].public_key)]

    report = verify_chain(series, public)

    assert report.ok
    assert report.signers() == [(1, 2, old[0].fingerprint), (3, 3, new[0].fingerprint)]
