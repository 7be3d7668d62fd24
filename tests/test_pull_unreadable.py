"""A refetch of an hour of unreadable pieces: what it keeps of the earlier pull's pieces, and
that it holds neither the new pieces nor the earlier lines to decide it."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from pathlib import Path

from auditor.sources.pull import _earlier_pieces, _keep_unreadable, unreadable_path
from auditor.sources.settle import SpilledPieces, Unreadable

LABEL = "2026110100"


def garbage(n: int, kind: bytes) -> bytes:
    """One ~500-byte unreadable line, without its newline."""
    return b"{cut off %s line %06d " % (kind, n) + b"x" * 480


def spilled(folder: Path, lines: list[bytes]) -> SpilledPieces:
    pieces = SpilledPieces(folder)
    for number, raw in enumerate(lines, start=1):
        pieces.add(Unreadable(f"line {number}", "not JSON", raw))
    return pieces


def refetched(folder: Path, earlier: list[bytes], served: list[bytes]) -> bytes:
    """The hour's unreadable file after a refetch served `served` where a pull had `earlier`."""
    unreadable_path(folder, LABEL).write_bytes(b"".join(line + b"\n" for line in earlier))
    pieces = spilled(folder, served)
    _keep_unreadable(folder, LABEL, pieces, _earlier_pieces(folder, LABEL, pieces))
    return unreadable_path(folder, LABEL).read_bytes()


def test_a_refetch_keeps_after_the_new_pieces_each_earlier_line_as_often_as_it_is_not_served(
    tmp_path,
):
    old = [b"a", b"b", b"a", b"c\tx", b"a", b"d"]
    new = [b"b", b"a", b"e\nf", b"a"]

    kept = refetched(tmp_path, old, new)

    assert kept == b"b\na\ne f\na\n" + b"c\tx\na\nd\n"


def test_a_refetch_served_nothing_unreadable_keeps_the_earlier_file_whole(tmp_path):
    old = [garbage(n, b"old") for n in range(3)]

    assert refetched(tmp_path, old, []) == b"".join(line + b"\n" for line in old)


def refetch_peak(folder: Path, count: int) -> int:
    """Peak bytes allocated deciding and writing what a refetch keeps: `count` earlier pieces,
    half served again, and as many new ones (both on disk, as a large hour's are)."""
    folder.mkdir()
    old = [garbage(n, b"old") for n in range(count)]
    new = old[::2] + [garbage(n, b"new") for n in range(count // 2)]
    unreadable_path(folder, LABEL).write_bytes(b"".join(line + b"\n" for line in old))
    pieces = spilled(folder, new)
    del old, new
    tracemalloc.start()
    try:
        _keep_unreadable(folder, LABEL, pieces, _earlier_pieces(folder, LABEL, pieces))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    written = unreadable_path(folder, LABEL).read_bytes().splitlines()
    assert len(written) == count + count // 2
    assert Counter(written) == Counter(
        [garbage(n, b"old") for n in range(count)] + [garbage(n, b"new") for n in range(count // 2)]
    )
    return peak


def test_a_refetch_of_a_garbage_hour_holds_none_of_its_pieces(tmp_path):
    small = refetch_peak(tmp_path / "small", 4_000)
    large = refetch_peak(tmp_path / "large", 12_000)

    # held whole, the new pieces and the earlier lines kept took 3.40 -> 10.33 MB; counted by
    # 16-byte digest, the earlier lines kept by number, 0.37 -> 1.42 MB (the Counter's entries)
    assert large - small < 2 * 1024 * 1024, (small, large)
