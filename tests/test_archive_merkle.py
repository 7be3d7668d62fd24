"""The Merkle code against the published RFC 6962 test vectors (transparency-dev/merkle).

Leaves, roots and inclusion proofs are those of transparency-dev/merkle `testonly/constants.go`
and `proof/verify_test.go` (the Certificate Transparency / trillian vectors); leaf numbers in the
proof vectors there are 1-based.
"""

from __future__ import annotations

import hashlib

import pytest

from auditor.archive.merkle import (
    EMPTY_ROOT,
    InvalidInclusionProofError,
    RootBuilder,
    inclusion_proof,
    leaf_hash,
    node_hash,
    path_ranges,
    root_of,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(text)
    for text in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path)
PROOFS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def test_the_empty_tree_hashes_to_sha256_of_nothing():
    assert root_of([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_published_vectors(size):
    assert root_of(HASHES[:size]).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), PROOFS)
def test_inclusion_proofs_match_the_published_vectors(index, size, path):
    proof = inclusion_proof(HASHES[:size], index, size)

    assert [node.hex() for node in proof] == path
    verify_inclusion(index, size, HASHES[index], proof, bytes.fromhex(ROOTS[size - 1]))


def _probes(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """The corruptions transparency-dev applies to every valid proof; none may verify."""
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    yield index - 1, size, leaf, proof, root
    yield index + 1, size, leaf, proof, root
    yield index ^ 2, size, leaf, proof, root
    yield index, size * 2, leaf, proof, root
    yield index, size // 2, leaf, proof, root
    yield index, size, leaf_hash(b"WrongLeaf"), proof, root
    yield index, size, leaf, proof, EMPTY_ROOT
    yield index, size, leaf, proof, some
    yield index, size, leaf, [*proof, root], root
    yield index, size, leaf, [root, *proof], root
    for position in range(len(proof)):
        flipped = bytearray(proof[position])
        flipped[0] ^= 8
        yield index, size, leaf, [*proof[:position], bytes(flipped), *proof[position + 1 :]], root
    if proof:
        yield index, size, leaf, proof[:-1], root
    if len(proof) > 1:
        yield index, size, leaf, [proof[0], some, *proof[1:]], root


@pytest.mark.parametrize(("index", "size", "path"), PROOFS)
def test_every_corruption_of_a_published_proof_is_rejected(index, size, path):
    proof = [bytes.fromhex(node) for node in path]
    root = bytes.fromhex(ROOTS[size - 1])
    accepted = []
    for probe in _probes(index, size, proof, root, HASHES[index]):
        try:
            verify_inclusion(*probe)
            accepted.append(probe[:2])
        except InvalidInclusionProofError:
            pass
    assert accepted == []


def _reference_root(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH written as the recursion it is defined by."""
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    split = 1
    while split * 2 < len(hashes):
        split *= 2
    return node_hash(_reference_root(hashes[:split]), _reference_root(hashes[split:]))


def test_streaming_roots_and_proofs_agree_with_the_recursive_definition_up_to_70_leaves():
    for size in range(1, 71):
        hashes = [
            hashlib.sha256(size.to_bytes(2, "big") + bytes([i])).digest() for i in range(size)
        ]
        root = _reference_root(hashes)
        assert root_of(hashes) == root
        for index in range(size):
            verify_inclusion(index, size, hashes[index], inclusion_proof(hashes, index, size), root)


def test_a_root_builder_keeps_one_hash_per_level():
    builder = RootBuilder()
    for number in range(100_000):
        builder.add(leaf_hash(number.to_bytes(4, "big")))

    assert len(builder._stack) == bin(100_000).count("1")
    assert builder.size == 100_000


def test_extending_by_runs_of_leaves_builds_the_tree_of_adding_them_one_by_one():
    """Runs of every length from every size up to 70, against the RFC 6962 reference root and
    against `add`'s pending subtrees, so a later run continues from the right state."""
    hashes = [leaf_hash(number.to_bytes(2, "big")) for number in range(140)]
    for size in range(71):
        for run in (0, 1, 2, 3, 5, 8, 31, 64, 70):
            extended, added = RootBuilder(), RootBuilder()
            extended.extend(hashes[:size])
            extended.extend(hashes[size : size + run])
            for leaf in hashes[: size + run]:
                added.add(leaf)
            assert extended._stack == added._stack
            assert extended.size == size + run
            assert extended.root() == _reference_root(hashes[: size + run])


def test_a_leaf_outside_the_tree_has_no_path():
    with pytest.raises(ValueError, match="outside a tree of 8 leaves"):
        path_ranges(8, 8)
    with pytest.raises(InvalidInclusionProofError, match="outside a tree of 8 leaves"):
        verify_inclusion(8, 8, HASHES[0], [], bytes.fromhex(ROOTS[7]))
