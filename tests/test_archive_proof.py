"""Inclusion proofs: one message and what proves it, checked with the public key alone."""

from __future__ import annotations

import copy
import shutil

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_archive_support import build_bag, copy_bag, make_keys, middle_file

from auditor.archive.canonical import canonical
from auditor.archive.proof import load_proof, prove, proved, verify_proof, write_proof
from auditor.emulator.dataset import SyntheticHistory
from auditor.errors import InputError

MSG_ID = SyntheticHistory(messages=240).msg_id(117)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def bag(keys, tmp_path_factory):
    return build_bag(tmp_path_factory.mktemp("runs"), keys[1])


@pytest.fixture(scope="module")
def proof(bag):
    return prove(bag.path, MSG_ID)


def _problems(proof, keys, key=None) -> list[str]:
    public = (key or keys[1]).public_key()
    return [str(problem) for problem in verify_proof(proof, public, "proof.json")]


def test_a_proof_holds_the_line_its_index_the_path_and_the_signed_root(proof, bag):
    line = orjson.loads(proof["line"])

    assert line["record"] == SyntheticHistory(messages=240).record(117)
    assert (proof["leaf_index"], line["seq"], proof["tree_size"]) == (117, 117, 240)
    assert proof["root"] == bag.merkle_root
    assert len(proof["audit_path"]) == 8
    assert f"Merkle-Root: {bag.merkle_root}\n" in proof["bag_info"]


def test_a_proof_verifies_without_the_rest_of_the_archive(bag, keys, tmp_path):
    archive = copy_bag(bag.path, tmp_path / "archive")
    write_proof(archive, MSG_ID, tmp_path / "proof.json")
    shutil.rmtree(archive)

    problems = verify_proof(load_proof(tmp_path / "proof.json"), keys[1].public_key(), "p")

    assert problems == []


def test_a_proof_with_a_wrong_index_fails(proof, keys):
    forged = {**proof, "leaf_index": proof["leaf_index"] + 1}

    problems = _problems(forged, keys)

    assert problems[0] == "proof.json: leaf_index 118 is not the line's seq 117"
    assert problems[1].startswith("proof.json: the line is not proved to be in the tree: ")


def test_a_proof_with_a_flipped_sibling_hash_fails(proof, keys):
    forged = copy.deepcopy(proof)
    sibling = forged["audit_path"][2]
    forged["audit_path"][2] = ("0" if sibling[0] != "0" else "1") + sibling[1:]

    problems = _problems(forged, keys)

    assert len(problems) == 1
    assert problems[0].startswith(
        "proof.json: the line is not proved to be in the tree: the audit path leads to root "
    )
    assert problems[0].endswith(f", expected {proof['root']}")


def test_a_proof_with_another_root_fails(proof, keys, tmp_path):
    other = build_bag(tmp_path, keys[1], seed=99)
    forged = {**proof, "root": other.merkle_root}

    problems = _problems(forged, keys)

    assert problems[0] == (
        f"proof.json: root {other.merkle_root} is not the signed Merkle-Root {proof['root']}"
    )
    assert problems[1].startswith("proof.json: the line is not proved to be in the tree")


def test_a_proof_with_a_changed_salt_fails(proof, keys):
    line = orjson.loads(proof["line"])
    line["salt"] = "0" * 32
    forged = {**proof, "line": canonical(line).decode()}

    problems = _problems(forged, keys)

    assert len(problems) == 1
    assert problems[0].startswith("proof.json: the line is not proved to be in the tree: ")


def test_a_proof_with_an_edited_record_fails(proof, keys):
    line = orjson.loads(proof["line"])
    line["record"]["from"] = "someone-else"
    forged = {**proof, "line": canonical(line).decode()}

    problems = _problems(forged, keys)

    assert len(problems) == 1
    assert problems[0].startswith("proof.json: the line is not proved to be in the tree: ")


def test_a_proof_whose_bag_info_was_edited_to_another_root_fails(proof, keys, tmp_path):
    other = build_bag(tmp_path, keys[1], seed=98)
    forged = {
        **proof,
        "root": other.merkle_root,
        "bag_info": proof["bag_info"].replace(proof["root"], other.merkle_root),
    }

    problems = _problems(forged, keys)

    assert "proof.json: bag_info is not the bag-info.txt the signature covers" in problems


def test_a_proof_checked_with_another_key_fails(proof, keys):
    problems = _problems(proof, keys, key=Ed25519PrivateKey.generate())

    assert problems[0].startswith(
        "proof.json: the Ed25519 signature of tagmanifest-sha256.txt does not verify"
    )
    assert problems[1].startswith("proof.json: signed by another key")


def test_proving_an_unknown_message_is_a_usage_error(bag):
    with pytest.raises(InputError, match="no record with msg_id 42"):
        prove(bag.path, "42")


def test_proving_from_a_tampered_bag_is_refused(bag, tmp_path):
    tampered = copy_bag(bag.path, tmp_path)
    target = middle_file(tampered)
    target.write_bytes(target.read_bytes().replace(b'"from":"user', b'"from":"usex', 1))

    with pytest.raises(InputError, match="do not reach the Merkle root"):
        prove(tampered, MSG_ID)


def test_a_file_that_is_not_a_proof_is_a_usage_error(tmp_path):
    (tmp_path / "p.json").write_text('{"format": "something else"}')

    with pytest.raises(InputError, match="not an auditor inclusion proof"):
        load_proof(tmp_path / "p.json")


def test_a_message_whose_msg_id_is_an_integer_beyond_64_bits_is_proved_by_its_digits(
    keys, tmp_path
):
    big = {"msg_id": 2**70 + 1, "timestamp": 1_793_491_200_000, "payload": {"n": 1}}
    summary = build_bag(tmp_path, keys[1], messages=10, extra_records=[big])

    proof = prove(summary.path, str(2**70 + 1))

    assert proof["occurrences"] == 1
    assert proved(proof, keys[1].public_key())["msg_id"] == "1180591620717411303425"
    assert _problems(proof, keys) == []
