"""RFC 6962 / RFC 9162 Merkle trees over SHA-256: roots, inclusion proofs and their check.

Everything here streams: a root or an audit path is computed from leaf hashes fed one at a time,
keeping only one pending subtree per level (O(log n) hashes), so a run of any size is proved
without holding its leaves in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class InvalidInclusionProofError(Exception):
    """An inclusion proof that does not lead from its leaf to the expected root."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the 0x00 prefix keeps a leaf from passing for an inner node."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class RootBuilder:
    """Computes the root of a tree whose leaf hashes arrive in order, in O(log n) memory.

    It keeps the roots of the perfect subtrees seen so far, one per 1-bit of the leaf count,
    largest first. A new leaf merges with as many of them as the count has trailing 1-bits;
    folding what remains from the right gives exactly RFC 6962's MTH for any size.
    """

    __slots__ = ("_stack", "size")

    def __init__(self) -> None:
        self._stack: list[bytes] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        """Appends one leaf hash (already `leaf_hash`ed)."""
        stack = self._stack
        carry = self.size
        while carry & 1:
            leaf = hashlib.sha256(b"\x01" + stack.pop() + leaf).digest()
            carry >>= 1
        stack.append(leaf)
        self.size += 1

    def extend(self, leaves: list[bytes]) -> None:
        """Appends many leaf hashes: the same tree as `add` on each, a level at a time.

        The new nodes of a level, after the pending subtree root of that level if there is one,
        pair up in one comprehension; an odd one left over is that level's pending root. It
        hashes what `add` would and saves its per-leaf call and loop: 0.8 -> 0.6 us a leaf
        here, nearly all of the rest being hashlib's cost of a SHA-256 object.
        """
        stack, size = self._stack, self.size
        sha256 = hashlib.sha256
        nodes, level, pending = leaves, 0, []
        while nodes:
            if size >> level & 1:
                nodes = [stack.pop(), *nodes]
            paired = len(nodes) & ~1
            if paired < len(nodes):
                pending.append(nodes[-1])
            lefts, rights = nodes[0:paired:2], nodes[1:paired:2]
            nodes = [sha256(b"\x01" + a + b).digest() for a, b in zip(lefts, rights, strict=True)]
            level += 1
        stack.extend(reversed(pending))
        self.size = size + len(leaves)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        result = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            result = node_hash(left, result)
        return result


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The tree head of the given leaf hashes."""
    builder = RootBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size >= 2): where RFC 6962 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges `[start, end)` whose subtree roots form the audit path, leaf level first.

    RFC 6962 §2.1.1: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) when m < k, else
    PATH(m - k, D[k:n]) : MTH(D[0:k]).
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def inclusion_proof(leaves: Iterable[bytes], index: int, size: int) -> list[bytes]:
    """The audit path of leaf `index` from the tree's leaf hashes, read once in order.

    Each path element is the root of one range of `path_ranges`; the ranges are disjoint, so
    every leaf feeds at most one small builder and nothing else is kept.
    """
    ranges = path_ranges(index, size)
    builders = [RootBuilder() for _ in ranges]
    by_start = sorted(range(len(ranges)), key=lambda position: ranges[position][0])
    pointer, count = 0, 0
    for position, leaf in enumerate(leaves):
        count += 1
        while pointer < len(by_start) and ranges[by_start[pointer]][1] <= position:
            pointer += 1
        if pointer < len(by_start) and ranges[by_start[pointer]][0] <= position:
            builders[by_start[pointer]].add(leaf)
    if count != size:
        raise ValueError(f"the tree has {count} leaves, not {size}")
    return [builder.root() for builder in builders]


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf` at `index` (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise InvalidInclusionProofError(f"leaf index {index} is outside a tree of {size} leaves")
    if len(leaf) != HASH_SIZE or any(len(sibling) != HASH_SIZE for sibling in proof):
        raise InvalidInclusionProofError(f"every hash must be {HASH_SIZE} bytes")
    fn, sn = index, size - 1
    result = leaf
    for sibling in proof:
        if sn == 0:
            raise InvalidInclusionProofError(
                f"the audit path has {len(proof)} hashes, too many for leaf {index} of {size}"
            )
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidInclusionProofError(
            f"the audit path has {len(proof)} hashes, too few for leaf {index} of {size}"
        )
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """Raises InvalidInclusionProofError, saying what was expected and computed, unless valid."""
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise InvalidInclusionProofError(
            f"the audit path leads to root {computed.hex()}, expected {root.hex()}"
        )
