"""Every benchmark at every size, each in a fresh process: one table and `bench/results.json`.

    .venv/bin/python bench/run_all.py [--sizes 100000,1000000] [--only end_to_end,validate]
        [--out bench/results.json]

This is what `make bench` runs. Each stage benchmark (`bench_<stage>.py`) and the end-to-end one
run once per size in an interpreter of their own (`common.in_fresh_process`), so the peak memory
of a size is that size's alone. Each prints its own figures as it goes; at the end comes one
table: stage, size, records per second, peak RSS of the process that measured it (for the stage
benchmarks, that includes the records they generate and keep in memory; for the end to end, the
larger of the coordinator and a worker), the baseline's records per second, the ratio, and
whether the stage's target is met. The end-to-end targets that compare sizes (time linear in
size, peak memory within 50 MB) follow the table. Every figure also goes to `--out` as JSON.

The sizes count records, except for the report (records observed, 20,000 distinct ones cycled)
and pull (lines served, 6 % of them copies or conflicting versions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import BENCH_DIR, history_days, in_fresh_process

LINEAR_SLACK = 1.10  # time at the larger size may exceed the proportional time by 10 %
MEMORY_SLACK_MB = 50


def _repeats(size: int) -> str:
    return "3" if size <= 200_000 else "1"


# name -> (module, its arguments for a size)
BENCHES: dict[str, tuple[str, Callable[[int], list[str]]]] = {
    "emulator": (
        "bench_emulator",
        lambda n: ["--records", str(n), "--days", str(history_days(n))],
    ),
    "pull": ("bench_pull", lambda n: ["--records", str(n)]),
    "validate": ("bench_validate", lambda n: ["--records", str(n), "--baseline", "10000"]),
    # Best of three at every size: its 100,000 figure was the best of three passes and its
    # 1,000,000 one a single pass, so a busy spell made the larger size look slower a record.
    "policies": ("bench_policies", lambda n: ["--records", str(n), "--repeats", "3"]),
    "archive": ("bench_archive", lambda n: ["--records", str(n), "--repeats", _repeats(n)]),
    "report": ("bench_report", lambda n: ["--records", str(n)]),
    "end_to_end": ("bench_end_to_end", lambda n: ["--records", str(n)]),
}


def run(names: list[str], sizes: list[int]) -> dict[str, Any]:
    """Runs the benchmarks `names` at each of `sizes`; their rows, details and failures."""
    rows: list[dict[str, Any]] = []
    details: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for size in sizes:
        for name in names:
            module, arguments = BENCHES[name]
            print(f"\n=== {name} at {size:,} records ===", flush=True)
            started = time.perf_counter()
            try:
                measured = in_fresh_process(f"{module}:main", arguments(size))
            except RuntimeError as error:
                failures.append(f"{name} at {size:,}: {error}")
                print(f"FAILED: {error}", flush=True)
                continue
            result = measured["result"]
            process_peak = max(measured["peak_mb"], measured["children_peak_mb"])
            for row in result.get("rows", []):
                rate, baseline = row.get("rate"), row.get("baseline_rate")
                rows.append(
                    {
                        "bench": name,
                        "size": size,
                        "peak_mb": row.get("peak_mb", process_peak),
                        "ratio": rate / baseline if rate and baseline else None,
                        **row,
                    }
                )
            details[f"{name}@{size}"] = {
                "seconds": time.perf_counter() - started,
                "peak_mb": measured["peak_mb"],
                "children_peak_mb": measured["children_peak_mb"],
                **{key: value for key, value in result.items() if key != "rows"},
            }
    return {"rows": rows, "details": details, "failures": failures}


def growth_checks(details: dict[str, dict[str, Any]], sizes: list[int]) -> list[dict[str, Any]]:
    """The end-to-end targets that compare the smallest and the largest size."""
    runs = {size: details.get(f"end_to_end@{size}", {}).get("end_to_end") for size in sizes}
    measured = [size for size in sizes if runs[size]]
    if len(measured) < 2:
        return []
    small, large = min(measured), max(measured)
    a, b = runs[small], runs[large]
    allowed = a["seconds"] * (b["records"] / a["records"]) * LINEAR_SLACK
    checks = [
        {
            "check": f"time linear in size ({small:,} -> {large:,} records)",
            "figure": f"{a['seconds']:.1f} s -> {b['seconds']:.1f} s "
            f"(proportional: {a['seconds'] * b['records'] / a['records']:.1f} s)",
            "met": b["seconds"] <= allowed,
        }
    ]
    # The coordinator's children are its workers and the child that writes the report page.
    for side, name in (("coordinator", "coordinator"), ("worker", "largest child")):
        grown = b[f"{side}_peak_mb"] - a[f"{side}_peak_mb"]
        checks.append(
            {
                "check": f"{name} peak memory within {MEMORY_SLACK_MB} MB "
                f"({small:,} -> {large:,} records)",
                "figure": f"{a[f'{side}_peak_mb']:.0f} MB -> {b[f'{side}_peak_mb']:.0f} MB "
                f"({grown:+.0f} MB)",
                "met": grown <= MEMORY_SLACK_MB,
            }
        )
    return checks


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "NO")


def table(rows: list[dict[str, Any]], checks: list[dict[str, Any]]) -> str:
    head = ("stage", "size", "records/s", "peak MB", "baseline/s", "ratio", "target met?")
    lines = [
        (
            row["stage"],
            f"{row['size']:,}",
            f"{row['rate']:,.0f}",
            f"{row['peak_mb']:,.0f}",
            f"{row['baseline_rate']:,.0f}" if row.get("baseline_rate") else "-",
            f"{row['ratio']:.1f}x" if row.get("ratio") else "-",
            _verdict(row.get("met")) + (f" ({row['target']})" if row.get("target") else ""),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [head, *lines]) for i in range(len(head))]
    right = {1, 2, 3, 4, 5}

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    out = [fmt(head), rule, *(fmt(line) for line in lines)]
    if checks:
        out.append("")
    out += [f"- {check['check']}: {check['figure']}: {_verdict(check['met'])}" for check in checks]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated record counts")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHES)}")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.json")
    args = parser.parse_args(argv)
    sizes = sorted(int(size.replace("_", "")) for size in args.sizes.split(","))
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHES)}")

    started = time.perf_counter()
    results = run(names, sizes)
    checks = growth_checks(results["details"], sizes)
    seconds = time.perf_counter() - started
    print(f"\n=== all benchmarks, {seconds / 60:.1f} minutes ===\n")
    print(table(results["rows"], checks))
    for failure in results["failures"]:
        print(f"FAILED: {failure}")
    args.out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    # The interpreter the venv was made from: builds differ (bench/README.md).
                    "interpreter": getattr(sys, "_base_executable", sys.executable),
                    "build": sys.version,
                    "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                },
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sizes": sizes,
                "seconds": seconds,
                "rows": results["rows"],
                "checks": checks,
                "details": results["details"],
                "failures": results["failures"],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\nwritten: {args.out}")
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
