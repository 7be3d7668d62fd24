"""Benchmark: a whole `auditor run` on the Dask executor, beside the local executor.

    .venv/bin/python bench/bench_dask.py [--records 50000] [--workers 2] [--repeats 3]

The emulator serves `--records` messages over one day on loopback, its hour files built before
any timing (`warm()`); attachments are skipped. The baseline is the same run with the local
executor and one worker (every stage in this process). Then the local executor's process pool
and a `distributed.LocalCluster` of `--workers` single-threaded processes (started before the
clock) audit the same day. Each line is the best of `--repeats` runs into fresh folders and gives
records/s for the whole run, the partition phase (pull, validate, policies, spool: the part that
spreads over workers) and the archive phase (the coordinator alone: Merkle tree, bag, report,
signatures, state), the bag's and the state database's bytes per record, and checks that every
bag's payload is the baseline's, byte for byte. The emulator shares these cores, so figures on a
small machine are a floor. The exit status is 0 either way (figures, not tests).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from distributed import LocalCluster

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import DAY_MS
from auditor.pipeline import Progress, RunSettings, run_audit
from auditor.resources import example_policy
from auditor.sources.settings import ConnectionSettings

SECRET = "bench-secret"


def payload(bag: Path) -> dict[str, bytes]:
    """What two runs of one history must agree on (as `tests/run_support.payload`): the payload
    but the dated report, and the undated bag-info with the report's bytes out of its oxum."""
    files: dict[str, bytes] = {}
    report_bytes = report_files = 0
    for path in sorted((bag / "data").rglob("*")):
        if path.is_file() and path.parent.name == "report":
            report_bytes += path.stat().st_size
            report_files += 1
        elif path.is_file():
            files[str(path.relative_to(bag))] = path.read_bytes()
    kept = []
    for line in (bag / "bag-info.txt").read_text().splitlines():
        if line.startswith("Payload-Oxum: "):
            size, count = map(int, line.removeprefix("Payload-Oxum: ").split("."))
            line = f"Payload-Oxum less the report: {size - report_bytes}.{count - report_files}"
        if not line.startswith("Bagging-Date"):
            kept.append(line)
    files["bag-info.txt"] = "\n".join(kept).encode()
    return files


def timed_run(settings: RunSettings) -> tuple[float, float, float, Path, int]:
    """Seconds of the whole run, of its partition phase and of its archive phase."""
    marks: dict[str, float] = {}
    progress = Progress(
        started=lambda total: marks.setdefault("partitions", time.perf_counter()),
        phase=lambda name: marks.setdefault(name, time.perf_counter()),
    )
    started = time.perf_counter()
    outcome = run_audit(settings, progress)
    ended = time.perf_counter()
    return (
        ended - started,
        marks["archive"] - marks["partitions"],
        ended - marks["archive"],
        outcome.bag_path,
        outcome.records,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs each")
    args = parser.parse_args()

    options = EmulatorOptions(messages=args.records, days=1, client_secret=SECRET)
    with (
        tempfile.TemporaryDirectory(prefix="bench-dask-") as temporary,
        run_emulator(options) as emulator,
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
    ):
        folder = Path(temporary)
        keys = generate_key_files(folder / "keys", identity="bench")
        emulator.warm()
        source = ConnectionSettings(
            emulator.base_url, options.org, options.app, options.client_id, SECRET
        )

        def settings(name: str, **overrides) -> Callable[[int], RunSettings]:
            return lambda attempt: RunSettings(
                source=source,
                policy_path=example_policy(),
                key_path=keys.private_key,
                out_dir=folder / f"{name}-{attempt}" / "archive",
                state_path=folder / f"{name}-{attempt}" / "state.db",
                since_ms=DEFAULT_START_MS,
                until_ms=DEFAULT_START_MS + DAY_MS,
                attachments="skip",
                fail_on="none",
                ready_delay_hours=0,
                **overrides,
            )

        runs = [
            ("baseline: local, 1 worker", settings("base")),
            (
                f"local, {args.workers} processes",
                settings("local", workers=args.workers),
            ),
            (
                f"dask, {args.workers} workers",
                settings(
                    "dask",
                    executor="dask",
                    executor_options={"scheduler": cluster.scheduler_address},
                ),
            ),
        ]
        reference = None
        base_rate = None
        for name, settings_of in runs:
            tries = [settings_of(attempt) for attempt in range(args.repeats)]
            attempts = [(timed_run(run_settings), run_settings) for run_settings in tries]
            (total, partitions, archive, bag, records), run_settings = min(
                attempts, key=lambda attempt: attempt[0][0]
            )
            reference = reference or payload(bag)
            rate = records / total
            base_rate = base_rate or rate
            size = sum(p.stat().st_size for p in bag.rglob("*") if p.is_file())
            state = run_settings.state_path.stat().st_size
            print(
                f"{name:<28} {rate:>9,.0f} records/s ({rate / base_rate:.2f}x)  "
                f"partitions {records / partitions:>9,.0f}/s  archive {records / archive:>9,.0f}/s"
                f"  bag {size / records:,.0f} B/record  state {state / records:,.0f} B/record"
                f"  {'same bytes' if payload(bag) == reference else 'DIFFERENT BYTES'}"
            )
    print(f"{records:,} records in 24 hour partitions")


if __name__ == "__main__":
    main()
