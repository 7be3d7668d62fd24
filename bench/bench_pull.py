"""How fast the client side settles and writes history, beside only parsing the same lines.

    .venv/bin/python bench/bench_pull.py [--records 200000]

The records come from the emulator's generator, written once (with 5 % exact copies and 1 %
conflicting versions, as Easemob's "recorded repeatedly" warning allows) as one gzip hour file
per hour, before any timing. Baseline: decompressing and `orjson.loads`-ing every line, the least
any source must do. Then, as records per second and a share of the baseline (best of three):
`read_hour_file` + `settle` (what the hour-file source does once a file has arrived:
window, dedup by msg_id and content hash, sort), and `pull` from those files through
`LocalFileSource` into a fresh folder (index pass, settle, one fsynced file per hour,
checkpoint).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from auditor.emulator.dataset import SyntheticHistory
from auditor.emulator.faults import conflicting_version
from auditor.partitions import HOUR_MS, Partition
from auditor.sources.hourfiles import read_hour_file
from auditor.sources.local import LocalFileSource
from auditor.sources.pull import pull
from auditor.sources.settle import settle


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def hour_files(history: SyntheticHistory, folder: Path) -> dict[Partition, bytes]:
    files = {}
    for start in range(history.start_ms, history.end_ms, HOUR_MS):
        lines = []
        for index in history.index_range(start, start + HOUR_MS):
            record = history.record(index)
            lines.append(orjson.dumps(record))
            if index % 20 == 0:
                lines.append(orjson.dumps(record))
            if index % 100 == 7 and "msg_id" in record:
                lines.append(orjson.dumps(conflicting_version(record)))
        partition = Partition(start)
        files[partition] = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=6, mtime=0)
        (folder / f"{partition.label()}.gz").write_bytes(files[partition])
    return files


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args(argv)
    rows = []
    days = max(1, args.records // 100_000)
    history = SyntheticHistory(messages=args.records, days=days)
    work = Path(tempfile.mkdtemp(prefix="bench-pull-"))
    try:
        (work / "in").mkdir()
        files = hour_files(history, work / "in")
        served = sum(len(gzip.decompress(data).splitlines()) for data in files.values())

        def parse_only() -> None:
            for data in files.values():
                for line in gzip.decompress(data).splitlines():
                    orjson.loads(line)

        def settle_hours() -> None:
            for partition, data in files.items():
                settle(partition, read_hour_file(data, partition.label()))

        def pull_folder() -> None:
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            pull(LocalFileSource([work / "in"]), history.start_ms, history.end_ms, out)

        baseline = best_of(3, parse_only)
        print(f"{served:,} served lines ({args.records:,} records) in {len(files)} hour files")
        print(f"baseline  gunzip + orjson.loads     {served / baseline:>12,.0f} lines/s  1.00x")
        for name, job in (
            ("settle    read_hour_file + settle", settle_hours),
            ("pull      local files -> folder  ", pull_folder),
        ):
            seconds = best_of(3, job)
            print(f"{name}  {served / seconds:>12,.0f} lines/s  {baseline / seconds:.2f}x")
            rows.append(
                {
                    "stage": f"{name.split()[0]}: {' '.join(name.split()[1:])}",
                    "rate": served / seconds,
                    "baseline": "gunzip + orjson.loads",
                    "baseline_rate": served / baseline,
                }
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "served_lines": served}


if __name__ == "__main__":
    main()
