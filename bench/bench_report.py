"""Benchmark: the report builder's cost per record and per finding, and the size of its page.

    python bench/bench_report.py [--records 1000000] [--findings 50000]

Records come from the emulator's generator (20,000 distinct ones, cycled), generated before any
timing. The builder's `observe_record` rate is printed beside a baseline measured in the same
process: the least any report must do, counting records by `auditor.records.message_type`.
`observe_record` is what re-rendering a bag's report costs; a run counts differently (its workers
read each record's facts and count a partition at its end, and the coordinator merges the
counts), and that rate is printed too, after checking that both give the same counts.
Findings are the ones the history planted (`auditor.report.synthetic`), cycled to `--findings`;
then all four files are rendered and their sizes printed. Targets: observing a record costs
less than 5 µs (the run's other stages take about 7 µs a record), and report.html stays under
10 MB. The exit status is 0 either way (figures, not tests).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import resource
import tempfile
import time
from collections import Counter
from operator import itemgetter
from pathlib import Path
from typing import Any

from auditor.emulator.dataset import SyntheticHistory
from auditor.partitions import Partition
from auditor.records import message_type
from auditor.report import ReportBuilder, RunInfo
from auditor.report.counts import RecordCounts, zone_offset_ms
from auditor.report.model import record_facts
from auditor.report.synthetic import planted_findings

DISTINCT = 20_000
TARGET_US = 5.0
PAGE_LIMIT = 10_000_000


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--findings", type=int, default=50_000)
    args = parser.parse_args(argv)

    history = SyntheticHistory(messages=min(args.records, DISTINCT) or 1, days=7)
    truths = [history.truth(index) for index in range(len(history))]
    labeled = [(t.record, Partition.containing(history.timestamp(t.index)).label()) for t in truths]
    planted = [finding for truth in truths for finding in planted_findings(truth)]
    records = list(itertools.islice(itertools.cycle(labeled), args.records))
    findings = list(itertools.islice(itertools.cycle(planted), args.findings)) if planted else []
    gc.collect()
    gc.freeze()
    print(f"{args.records:,} records, {len(findings):,} findings (generated, not timed)")

    started = time.perf_counter()
    counts: Counter[str] = Counter()
    for record, _label in records:
        counts[message_type(record)] += 1
    baseline = time.perf_counter() - started

    info = RunInfo(
        sequence=1, since_ms=history.start_ms, until_ms=history.end_ms, hour_timezone="+8"
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with ReportBuilder(info) as builder:
        started = time.perf_counter()
        for record, label in records:
            builder.observe_record(record, label)
        observing = time.perf_counter() - started
        started = time.perf_counter()
        for finding in findings:
            builder.observe_finding(finding)
        finding_time = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            files = builder.render(Path(folder))
            rendering = time.perf_counter() - started
            sizes = {name: path.stat().st_size for name, path in files.items()}
        counted_records = builder.summary()["records"]
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # The run's own path: a worker reads each record's facts and counts its partition at the
    # end (`RecordCounts.of`); the coordinator merges the counts once per partition.
    zone = info.timezone()
    offset = zone_offset_ms(zone)
    with ReportBuilder(info) as merged:
        started = time.perf_counter()
        for label, group in itertools.groupby(records, key=itemgetter(1)):
            facts = [record_facts(record) for record, _label in group]
            start_ms = Partition.from_label(label, zone).start_ms
            merged.observe_counts(RecordCounts.of(offset, facts, start_ms))
        counting = time.perf_counter() - started
        # the same counts (findings aside: this builder is given none)
        if _counts(merged.summary()["records"]) != _counts(counted_records):
            raise SystemExit("the run's partition counts differ from observe_record's")

    per_record = observing / max(args.records, 1) * 1e6
    print(f"baseline (message_type count) {args.records / baseline:>12,.0f} records/s")
    print(
        f"observe_record                {args.records / observing:>12,.0f} records/s "
        f"({per_record:.2f} µs each, {observing / baseline:.1f}x the baseline's time)"
    )
    print(
        f"run: facts + partition counts {args.records / counting:>12,.0f} records/s "
        f"({counting / max(args.records, 1) * 1e6:.2f} µs each, {counting / baseline:.1f}x)"
    )
    if findings:
        print(f"observe_finding               {len(findings) / finding_time:>12,.0f} findings/s")
    print(f"render (4 files)              {rendering:>12.2f} s")
    for name, size in sizes.items():
        print(f"  {name:<16} {size / 1e6:>10.2f} MB")
    print(f"peak RSS growth while building {(rss_after - rss_before) / 1024:>8.1f} MB")
    met = per_record < TARGET_US and sizes["report.html"] < PAGE_LIMIT
    print(f"target (< {TARGET_US} µs a record, page < 10 MB): {'met' if met else 'NOT met'}")
    row = {
        "stage": "report: observe_record",
        "rate": args.records / observing,
        "baseline": "Counter of message_type",
        "baseline_rate": args.records / baseline,
        "target": f"< {TARGET_US:g} µs a record, page < 10 MB",
        "met": met,
    }
    run_row = {
        "stage": "report: facts + partition counts (a run's path)",
        "rate": args.records / counting,
        "baseline": "Counter of message_type",
        "baseline_rate": args.records / baseline,
    }
    return {"rows": [row, run_row], "render_seconds": rendering, "sizes": sizes}


def _counts(records: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in records.items() if key != "failing_schema"}


if __name__ == "__main__":
    main()
