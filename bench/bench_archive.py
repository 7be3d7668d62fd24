"""Benchmark: writing and verifying a signed bag, against hashing `json.dumps(sort_keys=True)`.

    .venv/bin/python bench/bench_archive.py [--records 100000] [--repeats 3]

The records come from the emulator's generator, generated before any timing and moved out of the
garbage collector's reach. The baseline is `sha256(json.dumps(record, sort_keys=True))` per
record, the cheapest thing that could be called hashing a record. Then, each as records per
second and as a multiple of the baseline (best of three, except the slow reference):
the `rfc8785` package (reference canonical form), `canonical` (orjson fast path, same bytes),
`canonical_of` (the same bytes from the sorted JSON `settle` already wrote, as a worker gets
them), `prepare` (canonical bytes + salt), the writer alone on prepared lines (the
coordinator's share), a whole bag from records (canonical form, salt, seq, leaf hashes, Merkle
tree, files, manifests, signatures, fsync) and `verify_bag` on that bag.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditor.archive.bag import BagWriter
from auditor.archive.canonical import canonical, canonical_of
from auditor.archive.keys import derive_salt_key
from auditor.archive.lines import prepare
from auditor.archive.verify import verify_bag
from auditor.emulator.dataset import SyntheticHistory
from auditor.partitions import HOUR_MS, Partition


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def write_bag(root: Path, key, hours: list[tuple[str, list]], prepared: bool) -> Path:
    writer = BagWriter(root, "run-000001", key, "0" * 64, 1, {"Source-API": "bench"})
    for label, items in hours:
        if prepared:
            writer.add_partition_lines(label, items)
        else:
            writer.add_partition(label, items)
    return writer.finish().path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many passes")
    arguments = parser.parse_args(argv)
    count, repeats = arguments.records, arguments.repeats

    started = time.perf_counter()
    history = SyntheticHistory(messages=count, days=max(1, count // 100_000))
    hours = [
        (Partition(start).label(), list(history.records_between(start, start + HOUR_MS)))
        for start in range(history.start_ms, history.end_ms, HOUR_MS)
    ]
    records = [record for _label, items in hours for record in items]
    print(f"generated {count:,} records in {time.perf_counter() - started:.1f} s (not timed)")
    key = Ed25519PrivateKey.generate()
    salt_key = derive_salt_key(key)
    prepared_hours = [(label, [prepare(r, salt_key) for r in items]) for label, items in hours]
    gc.collect()
    gc.freeze()

    def baseline() -> None:
        for record in records:
            hashlib.sha256(json.dumps(record, sort_keys=True).encode()).digest()

    base = count / best_of(repeats, baseline)
    print(f"{'baseline sha256(json.dumps(sort_keys))':<44}{base:>12,.0f} records/s   1.00x")

    rates: dict[str, float] = {}

    def show(name: str, seconds: float) -> None:
        rate = rates[name] = count / seconds
        print(f"{name:<44}{rate:>12,.0f} records/s  {rate / base:5.2f}x")

    show(
        "rfc8785.dumps (reference, 1 pass)", best_of(1, lambda: [rfc8785.dumps(r) for r in records])
    )
    show("canonical (orjson fast path)", best_of(repeats, lambda: [canonical(r) for r in records]))
    settled = [memoryview(orjson.dumps(r, option=orjson.OPT_SORT_KEYS)).tobytes() for r in records]
    show(
        "canonical_of (from settle's sorted JSON)",
        best_of(
            repeats, lambda: [canonical_of(r, s) for r, s in zip(records, settled, strict=True)]
        ),
    )
    show(
        "prepare (canonical + salt, per worker)",
        best_of(repeats, lambda: [prepare(r, salt_key) for r in records]),
    )

    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:

        def fresh(prepared: bool) -> Callable[[], object]:
            def run() -> None:
                shutil.rmtree(work / "out", ignore_errors=True)
                data = prepared_hours if prepared else hours
                write_bag(work / "out", key, data, prepared)

            return run

        show("bag writer on prepared lines (coordinator)", best_of(repeats, fresh(True)))
        show("whole bag from records", best_of(repeats, fresh(False)))
        bag = work / "out" / "run-000001"
        size = sum(path.stat().st_size for path in bag.rglob("*") if path.is_file())
        public = key.public_key()
        verified = {}

        def verify() -> None:
            verified["report"] = verify_bag(bag, public)

        show("verify_bag (every check)", best_of(repeats, verify))
        problems = len(verified["report"].problems)
        print(f"bag: {size / 1e6:.1f} MB, {len(hours)} partitions, {problems} problems on verify")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    baseline_name = "sha256(json.dumps(sort_keys=True))"
    rows = [
        ("archive: whole bag from records", "whole bag from records"),
        ("archive: writer on prepared lines", "bag writer on prepared lines (coordinator)"),
        ("archive: verify_bag", "verify_bag (every check)"),
    ]
    return {
        "rows": [
            {"stage": stage, "rate": rates[name], "baseline": baseline_name, "baseline_rate": base}
            for stage, name in rows
        ],
        "figures": rates,
    }


if __name__ == "__main__":
    main()
