"""`digested`: a pull folder's file hashed in the read that archives it must give the digest and
line count a read of its own would (`folder._checked` compares them with the pull's checkpoint),
whatever the reader above it skips or reads twice."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from auditor.archive import untrusted
from auditor.jsonl import read_opened
from auditor.sources.digested import Digest, digested

RECORD = b'{"msg_id":"1","timestamp":1761955200000,"payload":{}}'


def read_through(path) -> tuple[int, Digest]:
    """The lines `jsonl.read_opened` gives of `path`, and the digest of the same read."""
    with digested(path, "hour file") as (reader, raw):
        parsed = sum(1 for _ in read_opened(reader, str(path)))
        return parsed, raw.digest()


def digest_of(data: bytes) -> Digest:
    lines = data.count(b"\n") + (data[-1:] not in (b"", b"\n"))
    return Digest(hashlib.sha256(data).hexdigest(), lines, len(data))


@pytest.mark.parametrize(
    "data",
    [b"", RECORD + b"\n", RECORD + b"\n" + RECORD, b"not json\n\n" + RECORD + b"\n"],
    ids=["empty", "one line", "last line unended", "a blank and a bad line"],
)
def test_the_digest_of_a_file_read_line_by_line_is_that_of_its_bytes(tmp_path, data):
    path = tmp_path / "2026110100.jsonl"
    path.write_bytes(data)

    _parsed, found = read_through(path)

    assert found == digest_of(data)


def test_a_gzip_read_twice_at_its_start_and_a_line_skipped_past_are_hashed_once(
    tmp_path, monkeypatch
):
    """`is_gzip` reads the first bytes and seeks back; a line past the limit is read past in
    pieces, never held: the digest is still the file's bytes, each once."""
    monkeypatch.setattr(untrusted, "LINE_LIMIT", 1000)
    data = gzip.compress(RECORD + b"\n" + b"x" * 250_000 + b"\n" + RECORD + b"\n")
    path = tmp_path / "2026110100.jsonl"
    path.write_bytes(data)

    parsed, found = read_through(path)

    assert parsed == 3
    assert found == digest_of(data)
