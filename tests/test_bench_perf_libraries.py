"""`bench_end_to_end.py --perf` reads a real `perf record` file by library: the interpreter's own
time must land under CPython, whatever the build names its binary (Debian links CPython into
the `python3.11` executable, with no libpython; pyenv's build loads `libpython3.11.so`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_end_to_end

LOOP = "total = 0\nfor n in range(1_000_000):\n    total += n * n % 7\n"


def test_a_pure_python_loop_is_counted_as_the_interpreter(tmp_path: Path) -> None:
    if shutil.which("perf") is None:
        pytest.skip("perf is not installed")
    out = tmp_path / "perf.data"
    record = ["perf", "record", "-e", "cpu-clock", "--freq", "499", "--output", str(out)]
    recorded = subprocess.run(
        [*record, "--", sys.executable, "-c", LOOP],
        capture_output=True,
        check=False,
    )
    if recorded.returncode != 0 or not out.exists():
        pytest.skip("perf may not record here (perf_event_paranoid)")
    groups = dict(bench_end_to_end.summarise_perf(out)[0])
    assert groups.get(bench_end_to_end.LIBRARIES[0][1], 0) > 50, groups
