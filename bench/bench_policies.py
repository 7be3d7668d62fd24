"""Benchmark: the policy engine against a naive scanner, over the same synthetic records.

The engine applies the example policy (retention, hold, keyword lists padded with generated
filler terms to `--terms`, every normalisation, all six detectors) through
`PolicyEngine.evaluate`. The baseline is what the issue names: for each scanned text, a Python
loop of `term in text` over the same terms plus `re.findall` for each detector's pattern (no
normalisation, no checks). Records are generated before any timing and kept as pickled hours of
`HOUR_RECORDS`; each pass unpickles an hour (untimed) and times its records, as a worker of a
run parses an hour file and evaluates its records while they are in the cache. The baseline may
run on a subset (`--baseline-records`) and reports a rate.
Every figure is the best of `--repeats` passes, taken in rounds (engine, then baseline, then
again), and the ratio of each round is printed too, so a busy machine shows as a spread.
Targets (issue 4): at least 80,000 records/s and at least 8x the baseline, on one core.

Rates are records per second of this process's CPU time, which is what one core delivers even
when other jobs share the machine; the wall-clock factor is printed so a busy machine shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import pickle
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from auditor.emulator.dataset import SyntheticHistory
from auditor.policies.engine import MEMO_SIZE, PolicyEngine
from auditor.policies.loading import load_policy
from auditor.policies.model import Policy, Term
from auditor.policies.reading import glance, scanned_fields
from auditor.policies.retention import RetentionDecider
from auditor.records import Record
from auditor.resources import example_policy

HOUR_RECORDS = 4_167  # records of an hour of `make bench`'s end-to-end history
NOW_MS = 1_796_083_200_000  # 2026-12-01: a month after the synthetic window, as a scheduled run
BASELINE_PATTERNS = (
    r"1[3-9]\d{9}",
    r"\d{17}[\dXx]",
    r"\d{16,19}",
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    r"(?:\d{1,3}\.){3}\d{1,3}",
    r"https?://[^\s，。]+",
)


def pickled_hours(records: Iterable[Record]) -> list[bytes]:
    """The records in order, `HOUR_RECORDS` to a pickle. A list of every record (1.3 KB of
    objects each) is read from memory by each pass, at 17 last-level cache misses a record
    (cachegrind) that a run, which evaluates an hour's records just parsed, does not pay:
    see bench/README.md's "Thirty-first session"."""
    hours: list[bytes] = []
    hour: list[Record] = []
    for record in records:
        hour.append(record)
        if len(hour) == HOUR_RECORDS:
            hours.append(pickle.dumps(hour, 5))
            hour = []
    if hour:
        hours.append(pickle.dumps(hour, 5))
    return hours


def each_hour(hours: list[bytes], limit: int | None = None) -> Iterator[list[Record]]:
    """The records of each hour in turn, unpickled; the first `limit` of them in all."""
    left = limit
    for blob in hours:
        if left is not None and left <= 0:
            return
        records: list[Record] = pickle.loads(blob)
        if left is not None:
            records = records[:left]
            left -= len(records)
        yield records


def texts_of(records: list[Record]) -> list[list[str]]:
    """The texts each record's policies scan: the matching stage's and the baseline's input."""
    return [[text for _pointer, text, _key in scanned_fields(record)] for record in records]


def filler_terms(count: int, seed: int = 4) -> list[str]:
    """Plausible extra terms: Chinese words of 2-4 ideographs and English words or pairs."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        if rng.random() < 0.5:
            term = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 4)))
        else:
            words = rng.randint(1, 2)
            term = " ".join(
                "".join(chr(rng.randint(97, 122)) for _ in range(rng.randint(5, 9)))
                for _ in range(words)
            )
        found[term] = None
    return list(found)


def padded_policy(terms: int) -> Policy:
    """The example policy with its keyword lists padded to `terms` terms in all."""
    policy = load_policy(example_policy())
    present = sum(len(each.terms) for each in policy.keyword_lists)
    extra = filler_terms(max(0, terms - present))
    lists = list(policy.keyword_lists)
    half = len(extra) // 2
    for index, chunk in ((0, extra[:half]), (1, extra[half:])):
        added = tuple(Term(term, 0) for term in chunk)
        lists[index] = dataclasses.replace(lists[index], terms=lists[index].terms + added)
    return dataclasses.replace(policy, keyword_lists=tuple(lists))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--baseline-records", type=int, default=20_000)
    parser.add_argument("--terms", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many passes")
    args = parser.parse_args(argv)

    policy = padded_policy(args.terms)
    terms = [term.text for each in policy.keyword_lists for term in each.terms]
    print(
        f"policy: {len(terms)} terms in {len(policy.keyword_lists)} lists, normalisations "
        f"{', '.join(policy.keyword_lists[0].normalize)}; detectors "
        f"{', '.join(rule.detector for rule in policy.detectors)}"
    )
    started = time.perf_counter()
    hours = pickled_hours(SyntheticHistory(messages=args.records))
    count = sum(len(records) for records in each_hour(hours))
    print(
        f"generated {count:,} records in {time.perf_counter() - started:.1f} s, kept as "
        f"{len(hours):,} pickled hours of {HOUR_RECORDS:,} ({sum(map(len, hours)) / 1e6:.0f} MB)"
    )
    gc.collect()
    gc.freeze()

    counting = PolicyEngine(policy, NOW_MS).evaluate
    findings = sum(
        len(found) for records in each_hour(hours) for _u, _v, found in map(counting, records)
    )

    contention: list[float] = []

    def evaluate_pass(memo_size: int) -> float:
        """One pass by a fresh engine (built untimed) with an empty memo: its CPU seconds."""
        evaluate = PolicyEngine(policy, NOW_MS, memo_size=memo_size).evaluate
        spent = wall = 0.0
        for records in each_hour(hours):
            started, began = time.process_time(), time.perf_counter()
            for record in records:
                evaluate(record)
            spent += time.process_time() - started
            wall += time.perf_counter() - began
        contention.append(wall / spent)
        return spent

    def matching_pass(memo_size: int) -> float:
        """The matching stage alone (the baseline's job) over the same texts of every record."""
        matches = PolicyEngine(policy, NOW_MS, memo_size=memo_size).matches
        spent = 0.0
        for records in each_hour(hours):
            texts = texts_of(records)
            started = time.process_time()
            for each in texts:
                for text in each:
                    matches(text)
            spent += time.process_time() - started
        return spent

    def reading_pass() -> float:
        """What evaluate does besides matching: read each record's facts and strings, decide
        its retention verdict (a part of the evaluate figure, for where the time goes)."""
        decide = RetentionDecider(policy, NOW_MS).decide_facts
        spent = 0.0
        for records in each_hour(hours):
            started = time.process_time()
            for record in records:
                decide(glance(record)[0])
            spent += time.process_time() - started
        return spent

    subset = min(args.baseline_records, count)
    patterns = [re.compile(pattern) for pattern in BASELINE_PATTERNS]

    def baseline_pass() -> float:
        spent = 0.0
        for records in each_hour(hours, subset):
            texts = texts_of(records)
            started = time.process_time()
            for each in texts:
                for text in each:
                    [term for term in terms if term in text]
                    for pattern in patterns:
                        pattern.findall(text)
            spent += time.process_time() - started
        return spent

    passes: dict[str, tuple[Callable[[], float], int]] = {
        "evaluate": (lambda: evaluate_pass(MEMO_SIZE), count),
        "evaluate, memo off": (lambda: evaluate_pass(0), count),
        "matching": (lambda: matching_pass(MEMO_SIZE), count),
        "matching, memo off": (lambda: matching_pass(0), count),
        "reading": (reading_pass, count),
        "baseline": (baseline_pass, subset),
    }
    # In rounds, each figure once a round, so that a slow spell of a shared machine falls on the
    # engine and the baseline alike (one pass of the baseline varied by half between runs).
    rates: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(args.repeats):
        for name, (one_pass, count) in passes.items():
            rates[name].append(count / one_pass())
    engine_rate, cold_rate = max(rates["evaluate"]), max(rates["evaluate, memo off"])
    match_rate, cold_match_rate = max(rates["matching"]), max(rates["matching, memo off"])
    read_rate, baseline_rate = max(rates["reading"]), max(rates["baseline"])
    rounds = [each / base for each, base in zip(rates["evaluate"], rates["baseline"], strict=True)]
    print(f"findings: {findings:,} ({findings / count:.3f} per record)")
    print(
        "records per CPU second (same fields of each record for engine and baseline); "
        f"wall/CPU time of the engine passes: {min(contention):.2f}-{max(contention):.2f}; "
        f"evaluate / baseline in each of {len(rounds)} rounds: "
        + ", ".join(f"{ratio:.1f}x" for ratio in rounds)
    )
    rows = [
        ("engine: evaluate (retention, holds, matching, findings)", engine_rate),
        ("engine: evaluate, text memo off", cold_rate),
        ("engine: matching stage only", match_rate),
        ("engine: matching stage only, text memo off", cold_match_rate),
        ("engine: reading + retention verdict only (no matching)", read_rate),
        (f"baseline: term-in-text loop + re.findall ({subset:,} records)", baseline_rate),
    ]
    for label, value in rows:
        ratio = f"{value / baseline_rate:5.1f}x baseline" if value is not baseline_rate else ""
        print(f"  {label:<66} {value:10,.0f}  {1e6 / value:6.2f} µs  {ratio}")
    verdicts = [
        ("evaluate >= 80,000 records/s", engine_rate >= 80_000),
        ("evaluate >= 8x baseline", engine_rate >= 8 * baseline_rate),
        ("matching stage >= 8x baseline", match_rate >= 8 * baseline_rate),
    ]
    for label, met in verdicts:
        print(f"target {label}: {'met' if met else 'NOT met'}")
    row = {
        "stage": f"policies ({len(terms):,} terms)",
        "rate": engine_rate,
        "baseline": "`term in text` loop + re.findall",
        "baseline_rate": baseline_rate,
        "target": ">= 80,000/s, >= 8x",
        "met": all(met for _label, met in verdicts),
    }
    return {"rows": [row], "figures": dict(rows)}


if __name__ == "__main__":
    main()
