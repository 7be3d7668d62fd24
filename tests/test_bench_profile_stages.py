"""`bench_end_to_end.py --profile` sorts py-spy's samples by stage. Compiled code (mypyc) has
no Python frame, so a sample inside the compiled `PolicyEngine.evaluate` ends at the line of
stages.py that calls it: it must count as the policies, not as the loop's own work."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_end_to_end

from auditor import stages


def _line(text: str) -> int:
    lines, first = inspect.getsourcelines(stages.PartitionProcessor._spooled)
    return first + next(n for n, line in enumerate(lines) if text in line)


def _stack(*frames: str) -> str:
    """A worker's stack as py-spy's raw format writes it: the coordinator's process, the
    worker's, then the frames."""
    return ";".join(['process 1:"python run"', 'process 2:"python run"', *frames])


def test_a_sample_in_compiled_code_counts_for_the_step_that_called_it(tmp_path: Path) -> None:
    spooled = "PartitionProcessor._spooled (auditor/stages.py:{})"
    raw = tmp_path / "spy.txt"
    raw.write_text(
        f"{_stack(spooled.format(_line('= evaluate(record)')))} 7\n"
        f"{_stack(spooled.format(_line('archived_facts(record')))} 5\n"
        f"{_stack(spooled.format(_line('write(dumps(header)')))} 3\n"
    )
    assert dict(bench_end_to_end.summarise_profile(raw)) == {
        "worker: policies": 7,
        "worker: report facts": 5,
        "worker: header, spool line, digest": 3,
    }
