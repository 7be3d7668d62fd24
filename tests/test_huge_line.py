"""A single huge line in a downloaded hour file: read a piece at a time, it is held about as
many times as parsing it needs, not once more for each piece it arrived in.

Measured as the resident memory a fresh process grows by (tracemalloc would count the pool
orjson reserves for a document, 12-13 times its size, of which a line of text touches none)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SIZE = 32 << 20
LINES = {
    "garbage": 'b"{cut off " + b"x" * (SIZE - 9)',
    "record": 'orjson.dumps({"msg_id": "1", "timestamp": 1, "payload": {"bodies": [{"type": '
    '"txt", "msg": "y" * (SIZE - 100)}]}})',
}
MEASURE = """
import resource, orjson
from auditor.sources.hourfiles import stream_hour_file
SIZE = {size}
data = {line}
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
found = list(stream_hour_file(data, "2026110100"))
assert len(found) == 1
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - grown) * 1024)
"""


@pytest.mark.parametrize("line", sorted(LINES))
def test_a_huge_line_is_held_a_few_times_not_once_more_for_every_piece_it_came_in(line):
    code = MEASURE.format(size=SIZE, line=LINES[line])
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)

    grown = int(output.stdout)
    # kept as every piece read (the blank-file check) and rejoined at each: 3.0 times its size
    assert grown < 2.4 * SIZE, grown / SIZE
