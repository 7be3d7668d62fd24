"""What the benchmarks share: a measurement in a fresh process, peak memory, the warmed emulator.

Each measurement runs in its own interpreter (`in_fresh_process`), so the peak resident memory it
reports belongs to that size alone: a million-record run cannot inherit the heap of a smaller
one, nor the other way round. The child writes its result as JSON to a file; what it prints goes
to the terminal as usual.

    python bench/common.py RESULT.json MODULE:FUNCTION [ARG ...]

runs `FUNCTION(list_of_args)` from `bench/MODULE.py` and writes `{"result": ..., "peak_mb": ...,
"children_peak_mb": ...}`: the peak RSS of that process and of the largest child it waited for
(the pool workers of a run, for instance).
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SECRET = "bench-secret"


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_mb() -> float:
    """Peak resident memory of the largest child process this one has waited for, in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The fastest of `runs` timings of `work()`, in seconds."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def in_fresh_process(target: str, argv: list[str]) -> dict[str, Any]:
    """Runs `module:function(argv)` of a bench script in a new interpreter; its result and peaks.

    Raises RuntimeError when the child fails, naming the command to run it alone.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), str(out), target, *argv]
        finished = subprocess.run(command, check=False)
        if finished.returncode != 0 or not out.exists():
            shown = " ".join([*command[1:2], "OUT.json", *command[3:]])
            raise RuntimeError(f"{target} failed (exit {finished.returncode}): python {shown}")
        return json.loads(out.read_text())


def call(target: str, argv: list[str]) -> Any:
    """Imports `bench/<module>.py` and calls its `function(argv)`."""
    module_name, _, function = target.partition(":")
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    module = importlib.import_module(module_name)
    return getattr(module, function or "main")(argv)


def history_days(records: int) -> int:
    """Days of history for `records`, so that every size has about 4,200 records an hour: the
    per-hour work (and memory) stays the same and only the number of hours grows."""
    return max(1, records // 100_000)


def _serve(options: Any, connection: Any) -> None:
    """The emulator process: warms every hour file, says where it listens, serves until told."""
    from auditor.emulator.server import run_emulator

    with run_emulator(options) as emulator:
        started = time.perf_counter()
        emulator.warm()
        connection.send((emulator.base_url, time.perf_counter() - started))
        connection.recv()


@contextmanager
def warmed_emulator(records: int, **overrides: Any) -> Iterator[tuple[Any, str, float]]:
    """An emulator over `records` synthetic messages in a process of its own, every hour file
    built before anyone times anything; yields (options, base URL, seconds spent warming).

    A process of its own keeps the cached hour files (over 100 MB at a million records) out of
    the memory of whatever is measured, though its serving still shares the machine's cores,
    as Easemob's servers would not.
    """
    from auditor.emulator.server import EmulatorOptions

    options = EmulatorOptions(
        messages=records, days=history_days(records), client_secret=SECRET, **overrides
    )
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(options, theirs))
    process.start()
    try:
        while not ours.poll(1):
            if not process.is_alive():
                raise RuntimeError(f"the emulator process ended (exit {process.exitcode})")
        base_url, warming = ours.recv()
        yield options, base_url, warming
    finally:
        if process.is_alive():
            ours.send("stop")
        process.join(30)
        if process.is_alive():
            process.kill()


def _main(arguments: list[str]) -> int:
    out, target, *argv = arguments
    result = call(target, argv)
    payload = {"result": result, "peak_mb": peak_mb(), "children_peak_mb": children_peak_mb()}
    Path(out).write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
