"""An hour whose every line is unreadable: the worker writes each piece's finding as it makes
it, so what spooling the hour holds beyond the pieces themselves does not grow with them."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest
import run_support

import auditor.stages as stages
from auditor.partitions import Partition
from auditor.sources.interface import PartitionResult, Unreadable
from auditor.sources.local import LocalFileSource

HOUR = Partition(1_793_491_200_000)


@pytest.fixture
def processor(tmp_path, monkeypatch):
    """A worker's stages, a fresh spool each call."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "2026110100.jsonl").write_bytes(b"{cut off\n")
    source = LocalFileSource([tmp_path / "in"])
    made = iter(range(100))
    return lambda: run_support.stage_processor(tmp_path / str(next(made)), monkeypatch, source)


def spooled_beyond_the_pieces(processor, pieces: int) -> tuple[int, list[dict]]:
    """The peak bytes spooling an hour of `pieces` unreadable lines allocates beyond the
    settled hour, and the findings it spooled."""
    processor = processor()
    result = PartitionResult(
        HOUR,
        (),
        unreadable=tuple(
            Unreadable(f"2026110100:{n}", "not JSON", b"{cut off %d" % n)
            for n in range(1, pieces + 1)
        ),
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        outcome = processor._spooled(HOUR, result, [])
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    paths = stages.spool_paths(processor.spool_dir, HOUR, outcome.attempt)
    lines = paths["findings"].read_bytes().splitlines()
    return peak, [orjson.loads(line) for line in lines]


def test_spooling_an_unreadable_hour_holds_no_finding_a_line(processor):
    # both past the 1 MiB the spool's digest reads at a time
    small, _ = spooled_beyond_the_pieces(processor, 8_000)
    large, findings = spooled_beyond_the_pieces(processor, 24_000)

    assert [f["details"]["line"] for f in findings] == list(range(1, 24_001))
    assert {f["rule"] for f in findings} == {"unreadable"}
    # a finding held a line took ~620 bytes: 10 MB more for the 16,000 more lines
    assert large - small < 64 * 1024, (small, large)
