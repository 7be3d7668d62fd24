"""The archived line of one record: its canonical bytes, its salt, and its place in the run.

A line is the RFC 8785 form of `{"record": ..., "salt": ..., "seq": ...}`. RFC 8785 orders keys
by UTF-16 code units, so `record` < `salt` < `seq` and the line is a plain concatenation around
the record's canonical bytes. That is what lets parallel workers do the expensive part
(`prepare`: canonical bytes and salt) while the single writer splices in `seq`, the global leaf
index, only when it knows it (`line_from`). A test proves the splice equals `rfc8785.dumps` of
the whole object.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from auditor.archive.canonical import canonical
from auditor.archive.merkle import leaf_hash

__all__ = [
    "PreparedRecord",
    "canonical_line",
    "leaf_hash",
    "line_from",
    "prepare",
    "prepare_all",
    "record_bytes",
    "salt_for",
    "salt_of",
    "salter",
]


class PreparedRecord(NamedTuple):
    """A record made ready for the writer by a worker: canonical bytes and salt, no `seq` yet.

    A tuple rather than a dataclass because millions of them cross process boundaries.
    """

    canonical: bytes
    salt: str


@functools.lru_cache(maxsize=8)
def salter(salt_key: bytes) -> Callable[[bytes], str]:
    """`salt_of` with the key bound, for a loop over many records (a worker's partition).

    HMAC-SHA256's inner and outer hash states (RFC 2104) are keyed once per key and copied per
    record: half the cost of `hmac.digest`, which re-keys on every call.
    """
    block = salt_key if len(salt_key) <= 64 else hashlib.sha256(salt_key).digest()
    block = block.ljust(64, b"\0")
    inner_copy = hashlib.sha256(bytes(byte ^ 0x36 for byte in block)).copy
    outer_copy = hashlib.sha256(bytes(byte ^ 0x5C for byte in block)).copy

    def salt(canonical_record: bytes) -> str:
        digest = inner_copy()
        digest.update(canonical_record)
        final = outer_copy()
        final.update(digest.digest())
        return final.digest()[:16].hex()

    return salt


def salt_of(canonical_record: bytes, salt_key: bytes) -> str:
    """First 16 bytes (32 hex) of HMAC-SHA256 over the record's canonical bytes."""
    return salter(salt_key)(canonical_record)


def salt_for(record: Any, salt_key: bytes) -> str:
    return salt_of(canonical(record), salt_key)


def prepare(record: Any, salt_key: bytes) -> PreparedRecord:
    """Canonical bytes and salt of one record; raises CanonicalizationError for non-JSON values."""
    data = canonical(record)
    return PreparedRecord(data, salt_of(data, salt_key))


def prepare_all(records: Iterable[Any], salt_key: bytes) -> Iterator[PreparedRecord]:
    salt = salter(salt_key)
    for record in records:
        data = canonical(record)
        yield PreparedRecord(data, salt(data))


def line_from(seq: int, prepared: PreparedRecord) -> bytes:
    """The archived line (without newline) of a prepared record at leaf index `seq`."""
    return b'{"record":%b,"salt":"%b","seq":%d}' % (
        prepared.canonical,
        prepared.salt.encode(),
        seq,
    )


def record_bytes(line: bytes) -> bytes:
    """The record's canonical bytes inside an archived line (without newline): `line_from`
    undone, so a reader of a verified bag does not canonicalise the record again."""
    return line[len(b'{"record":') : line.rindex(b',"salt":"')]


def canonical_line(seq: int, salt: str, record: Any) -> bytes:
    """The archived line of `record` at `seq` with `salt`, computed without writing anything."""
    return line_from(seq, PreparedRecord(canonical(record), salt))
