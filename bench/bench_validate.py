"""Benchmark: schema validation of synthetic records, against a plain `jsonschema` baseline.

    python bench/bench_validate.py [--records 200000] [--baseline 10000] [--profile loose]
    python bench/bench_validate.py --memory [--records 1000000] [--compare 200000]

The records come from the emulator's generator and are generated before any timing, then moved
out of the garbage collector's reach (`gc.freeze()`). The auditor's rate is the best of three
passes of `RecordValidator.check` over all of them; the baseline validates the first `--baseline`
records with the same schema files in plain `jsonschema` (all errors, as `check` reports).
Targets (issue 3): at least 400,000 records/s on one core and at least 25x the baseline.

`--memory` streams records from the generator straight into the validator and reports the peak
RSS after `--compare` records and after `--records`; it should not grow by more than 20 MB.
Each mode prints whether its target was met; the exit status is 0 either way (figures, not tests).
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from typing import Any

from auditor.emulator.dataset import SyntheticHistory
from auditor.validation import RecordValidator, reference_validator

TARGET_RATE = 400_000
TARGET_RATIO = 25
MEMORY_SLACK_MB = 20


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} records/s"


def speed(records: int, baseline: int, profile: str) -> dict[str, Any]:
    started = time.perf_counter()
    corpus = list(SyntheticHistory(messages=records))
    print(f"generated {records:,} records in {time.perf_counter() - started:.1f} s (not timed)")
    gc.collect()
    gc.freeze()

    validator = RecordValidator(profile)
    check = validator.check
    best, findings = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        findings = sum(len(check(record)) for record in corpus)
        best = min(best, time.perf_counter() - started)
    valid = [record for record in corpus if not check(record)]
    fast = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for record in valid:
            check(record)
        fast = min(fast, time.perf_counter() - started)

    reference = reference_validator(profile)
    sample = corpus[: min(baseline, records)]
    started = time.perf_counter()
    for record in sample:
        list(reference.iter_errors(record))
    slow = time.perf_counter() - started

    ours, theirs = records / best, len(sample) / slow
    print(f"profile {profile}: {records - len(valid):,} invalid records, {findings:,} findings")
    print(f"auditor (jsonschema-rs)      {_rate(records, best)}  all {records:,} records")
    print(f"  fast path alone            {_rate(len(valid), fast)}  the {len(valid):,} valid ones")
    print(f"baseline (plain jsonschema)  {_rate(len(sample), slow)}  first {len(sample):,}")
    print(f"ratio                        {ours / theirs:>12,.0f}x")
    met = ours >= TARGET_RATE and ours / theirs >= TARGET_RATIO
    verdict = "met" if met else "NOT met"
    print(f"target >= {TARGET_RATE:,} records/s and >= {TARGET_RATIO}x: {verdict}")
    return {
        "stage": f"validate ({profile})",
        "rate": ours,
        "baseline": "jsonschema iter_errors",
        "baseline_rate": theirs,
        "target": f">= {TARGET_RATE:,}/s, >= {TARGET_RATIO}x",
        "met": met,
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(records: int, compare: int, profile: str) -> dict[str, Any]:
    validator = RecordValidator(profile)
    check = validator.check
    history = SyntheticHistory(messages=records)
    peaks: dict[int, float] = {}
    started = time.perf_counter()
    findings = 0
    for index, record in enumerate(history, start=1):
        findings += len(check(record))
        if index in (compare, records):
            peaks[index] = _peak_mb()
    seconds = time.perf_counter() - started
    growth = peaks[records] - peaks[compare]
    print(f"streamed {records:,} records in {seconds:.1f} s, {findings:,} findings")
    print(f"peak RSS after {compare:>9,} records: {peaks[compare]:8.1f} MB")
    print(f"peak RSS after {records:>9,} records: {peaks[records]:8.1f} MB")
    ok = growth <= MEMORY_SLACK_MB
    print(f"growth {growth:+.1f} MB (limit {MEMORY_SLACK_MB} MB): {'met' if ok else 'NOT met'}")
    return {"stage": f"validate, streamed ({profile})", "rate": records / seconds, "met": ok}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=None, help="records to validate")
    parser.add_argument("--baseline", type=int, default=10_000, help="records for jsonschema")
    parser.add_argument("--profile", choices=("loose", "strict"), default="loose")
    parser.add_argument("--memory", action="store_true", help="peak RSS, streamed records")
    parser.add_argument("--compare", type=int, default=200_000, help="--memory: first mark")
    args = parser.parse_args(argv)
    if args.memory:
        records = args.records or 1_000_000
        return {"rows": [memory(records, min(args.compare, records), args.profile)]}
    return {"rows": [speed(args.records or 200_000, args.baseline, args.profile)]}


if __name__ == "__main__":
    main()
