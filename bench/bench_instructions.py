"""Benchmark: instructions a record under callgrind, which the machine's load cannot move.

    .venv/bin/python bench/bench_instructions.py [--hours 2] [--baseline-records 200]
        [--only worker,coordinator,baseline,steps] [--python OTHER/.venv/bin/python]
        [--keep DIR] [--json FILE] [--msg-id-order ordered|snowflake|random]
    .venv/bin/python bench/bench_instructions.py --compare BEFORE.json AFTER.json

Wall-clock rates on this shared machine swing 2-3x between sessions with its load, baselines
included, so they cannot tell a slower machine from slower code. Callgrind counts the
instructions a process executes in user space (not the kernel's, not other processes'), the
same count for the same code and input whenever it runs. Each figure is a difference, so that
start-up falls out: callgrind runs with `--dump-before=getppid` and the measured process calls
`os.getppid()` between its phases (start-up | warming | counted | exit), each counted apart:

- worker: `PartitionProcessor.process` over prebuilt hour files of the benchmark's synthetic
  history (about 4,170 records an hour), as a worker runs them, the files built before any
  counting and served from memory by a stand-in for the HTTP client: one hour warming, then
  `--hours` counted (gunzip, parse, settle, canonical bytes, salt, validation, policies, report
  facts, header, spool line, spool digest, checkpoint);
- coordinator: `run_audit --workers 2` against the emulator (its own process, not counted) on
  loopback, run three times in one process: one hour (warming), `--hours` and twice that; the
  coordinator's count of the third less the second's, a record of the difference, so what a
  run costs whatever its size also falls out (reading spools, dedup, index rows, bag lines,
  leaf hashes, Merkle tree, findings). The forked workers are not in it;
- steps: each of the worker's steps alone over a whole hour, one after another;
- baseline: the plain script of `bench_end_to_end.py` (`json.loads`, `jsonschema`, `term in
  text` over the example policy's terms, `re.findall` per detector, `hashlib.sha256(json.dumps
  (record, sort_keys=True))`, a line written) over records of the same hour file, read from
  memory rather than with `requests`; it is ~100x dearer, so it gets `--baseline-records`.

Each is split by shared object: the self count of each (orjson, jsonschema-rs, OpenSSL, SQLite,
zlib, ahocorasick-rs, the mypyc-compiled policy path, libc, the interpreter), which add up to
the total, and inclusive counts of calls into the libraries and into the compiled
`PolicyEngine.evaluate` (what they call included), which py-spy cannot see inside.

`--python` counts another checkout's venv on this checkout's hour files and emulator, so two
versions of the code see the same input. The default allocator (pymalloc) is kept, since
PYTHONMALLOC=malloc changes the count, and PYTHONHASHSEED is fixed so set orders repeat.
Callgrind's CPU has no SHA extensions: OpenSSL's share is far above its native share. The four
processes run at once; bench/README.md ("Instructions a record") says how long they take.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HOUR_MS = 3_600_000
SECRET = "bench-secret"
ORG, APP, CLIENT = "demo-org", "demo-app", "demo-client"
# The benchmark's history: 100,000 records over a day, about 4,170 an hour.
MESSAGES, DAYS = 100_000, 1

# Shared objects, by a part of their file name, and the name each is shown under.
OBJECTS = (
    ("orjson", "orjson"),
    ("jsonschema_rs", "jsonschema-rs"),
    ("libcrypto", "OpenSSL (sha256, HMAC)"),
    ("_hashlib", "OpenSSL (sha256, HMAC)"),
    ("libsqlite3", "SQLite"),
    ("_sqlite3", "SQLite"),
    ("libz.", "zlib"),
    ("zlib.cpython", "zlib"),
    ("ahocorasick", "ahocorasick-rs"),
    ("__mypyc", "mypyc: compiled modules"),
    ("auditor/policies", "mypyc: compiled modules"),
    ("auditor/report", "mypyc: compiled modules"),
    ("libc.so", "libc (malloc, memcpy...)"),
    ("ld-linux", "libc (malloc, memcpy...)"),
    ("libm.", "libc (malloc, memcpy...)"),
    ("python3", "CPython interpreter"),
    ("libpython", "CPython interpreter"),
    ("_json", "CPython interpreter"),
    ("_sre", "CPython interpreter"),
)
# -- what runs under callgrind --------------------------------------------------------------------


def _mark() -> None:
    """Ends one part of the count and begins the next: callgrind runs with
    `--dump-before=getppid`, and nothing on the counted paths of this process calls it."""
    os.getppid()


class _Served:
    """Stands in for `EasemobClient`: an hour's URL is its label, its download the prebuilt file."""

    base_url, org, app = "http://127.0.0.1:9", ORG, APP

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def hour_file_url(self, label: str) -> str | None:
        return label if label in self.files else None

    def download(self, url: str) -> bytes:
        return self.files[url]

    def close(self) -> None:
        pass


def _hour_files(folder: Path) -> list[tuple[int, bytes]]:
    starts = sorted(int(path.stem) for path in folder.glob("*.gz"))
    return [(start, (folder / f"{start}.gz").read_bytes()) for start in starts]


def inner_worker(folder: Path, hours: int) -> int:
    """A worker's stages: the first hour file (warming), then the next `hours` (counted)."""
    from auditor.partitions import partitions_between
    from auditor.resources import example_policy
    from auditor.sources.hourfiles import HourFileSource
    from auditor.sources.settings import ConnectionSettings
    from auditor.stages import PartitionProcessor, StageSettings

    files = _hour_files(folder)[: 1 + hours]
    spool = Path(tempfile.mkdtemp(prefix="bench-icount-"))
    try:
        settings = StageSettings(
            source=ConnectionSettings(
                base_url=_Served.base_url, org=ORG, app=APP, client_id=CLIENT, client_secret=SECRET
            ),
            policy_path=str(example_policy()),
            profile="loose",
            reference_ms=files[0][0] + 30 * 24 * HOUR_MS,
            salt_key=b"k" * 32,
            spool_dir=str(spool),
            fetch_attachments=False,
        )
        processor = PartitionProcessor(settings)
        partitions = {p.start_ms: p for p in partitions_between(files[0][0], files[-1][0] + 1)}
        served = _Served({partitions[start].label(): data for start, data in files})
        processor.source = HourFileSource(served, attempts=1)  # type: ignore[arg-type]
        _mark()
        processor.process(partitions[files[0][0]])
        _mark()
        records = sum(processor.process(partitions[start]).records for start, _ in files[1:])
        _mark()
        processor.close()
        return records
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def inner_baseline(folder: Path, wanted: int) -> int:
    """The plain script of `bench_end_to_end.measure_baseline`: 20 records (warming), then
    `wanted` (counted)."""
    from bench_policies import BASELINE_PATTERNS

    from auditor.policies.loading import load_policy
    from auditor.policies.reading import scanned_fields
    from auditor.resources import example_policy
    from auditor.validation import reference_validator

    validator = reference_validator("loose")
    policy = load_policy(example_policy())
    terms = [term.text for keyword_list in policy.keyword_lists for term in keyword_list.terms]
    patterns = [re.compile(pattern) for pattern in BASELINE_PATTERNS]
    lines = gzip.decompress(_hour_files(folder)[0][1]).splitlines()[: 20 + wanted]
    with (
        tempfile.TemporaryDirectory(prefix="bench-icount-") as spool,
        (Path(spool) / "archive.jsonl").open("w", encoding="utf-8") as out,
    ):
        _mark()
        for number, line in enumerate(lines):
            if number == 20:
                _mark()
            record = json.loads(line)
            errors = len(list(validator.iter_errors(record)))
            for field in scanned_fields(record):  # (pointer, text, ...): older versions had 2
                text = field[1]
                errors += len([term for term in terms if term in text])
                for pattern in patterns:
                    errors += len(pattern.findall(text))
            digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
            out.write(f"{json.dumps(record, ensure_ascii=False)}\t{digest}\n")
        _mark()
    return len(lines) - 20


# A worker's steps for one record, each counted alone over a whole hour (`inner_steps`).
STEPS = (
    "gunzip + parse (read_hour_file)",
    "settle",
    "canonical bytes (canonical_of)",
    "salt (HMAC)",
    "validation (RecordValidator.check)",
    "policies (PolicyEngine.evaluate)",
    "report facts (_facts)",
    "content sha256",
    "header + spool line (orjson.dumps)",
)


def inner_steps(folder: Path, _unused: int) -> int:
    """The worker's steps one at a time, each over every record of an hour before the next
    begins (the first hour warming, the second counted), so each gets a part of its own."""
    import orjson

    from auditor.archive.canonical import canonical_of
    from auditor.archive.lines import salter
    from auditor.partitions import partitions_between
    from auditor.policies.engine import PolicyEngine
    from auditor.policies.loading import load_policy
    from auditor.resources import example_policy
    from auditor.sources.hourfiles import read_hour_file
    from auditor.sources.settle import settle
    from auditor.validation import RecordValidator

    try:
        from auditor.report.facts import archived_facts as _facts
    except ImportError:  # before the twenty-fifth session (interpreted, in stages.py)
        from auditor.stages import _facts  # type: ignore[attr-defined,no-redef]

    try:
        from auditor.sources.settle import content_sha256
    except ImportError:  # before content_sha256 (the tenth session hashed the bytes in place)

        def content_sha256(_record: Any, canonical: bytes, _fields: Any) -> str:
            return hashlib.sha256(canonical).hexdigest()

    files = _hour_files(folder)[:2]
    partitions = {p.start_ms: p for p in partitions_between(files[0][0], files[-1][0] + 1)}
    validator = RecordValidator("loose")
    engine = PolicyEngine(load_policy(example_policy()), files[0][0] + 30 * 24 * HOUR_MS)
    salt_of = salter(b"k" * 32)
    check, evaluate, dumps = validator.check, engine.evaluate, orjson.dumps
    none: frozenset[str] = frozenset()
    counted = 0
    for start, data in files:
        partition = partitions[start]
        _mark()
        served = read_hour_file(data, partition.label())
        _mark()
        result = settle(partition, served)
        records = result.records
        contents = result.content or (None,) * len(records)
        _mark()
        canonicals = [canonical_of(r, c) for r, c in zip(records, contents, strict=True)]
        _mark()
        salts = [salt_of(canonical) for canonical in canonicals]
        _mark()
        found = [check(record) for record in records]
        _mark()
        verdicts = [evaluate(record) for record in records]
        _mark()
        facts = [_facts(r, c) for r, c in zip(records, canonicals, strict=True)]
        _mark()
        sha = [content_sha256(r, c, none) for r, c in zip(records, canonicals, strict=True)]
        _mark()
        for index, canonical in enumerate(canonicals):
            retain_until, verdict, policy_findings = verdicts[index]
            both = [*found[index], *policy_findings]
            header = [
                salts[index],
                sha[index],
                verdict.disposition,
                verdict.winning_rule,
                retain_until,
                [finding.to_dict() for finding in both] if both else [],
                [],
                *facts[index],
            ]
            dumps(header) + b"\t" + canonical + b"\n"
        counted = len(records)
    _mark()
    return counted


def _audit(base_url: str, since_ms: int, hours: int, policy: str) -> int:
    """`run_audit --workers 2` over `hours` hours from `since_ms`; returns records archived."""
    from auditor.archive.keys import generate_key_files
    from auditor.pipeline import RunSettings, run_audit
    from auditor.resources import example_policy
    from auditor.sources.settings import ConnectionSettings

    folder = Path(tempfile.mkdtemp(prefix="bench-icount-"))
    try:
        key = generate_key_files(folder / "keys", identity="bench").private_key
        settings = RunSettings(
            source=ConnectionSettings(
                base_url=base_url, org=ORG, app=APP, client_id=CLIENT, client_secret=SECRET
            ),
            policy_path=Path(policy) if policy else example_policy(),
            key_path=key,
            out_dir=folder / "archive",
            state_path=folder / "state.db",
            since_ms=since_ms,
            until_ms=since_ms + hours * HOUR_MS,
            workers=2,
            attachments="skip",
            fail_on="none",
            ready_delay_hours=0,
        )
        return run_audit(settings).records
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def inner_run(base_url: str, since_ms: int, hours: int, policy: str = "") -> int:
    """Three audits in one process: one hour (warming; run in this process, as a one-hour
    window is), then `hours` and `2 * hours` (two forked workers each), each counted apart;
    returns the records the third archived beyond the second."""
    from auditor import pipeline  # noqa: F401  (imported before the count, as a run's CLI does)

    _mark()
    _audit(base_url, since_ms, 1, policy)
    _mark()
    smaller = _audit(base_url, since_ms, hours, policy)
    _mark()
    larger = _audit(base_url, since_ms, 2 * hours, policy)
    _mark()
    return larger - smaller


def _inner(argv: list[str]) -> int:
    kind, *rest = argv
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if kind == "worker":
        records = inner_worker(Path(rest[0]), int(rest[1]))
    elif kind == "baseline":
        records = inner_baseline(Path(rest[0]), int(rest[1]))
    elif kind == "steps":
        records = inner_steps(Path(rest[0]), int(rest[1]))
    else:
        records = inner_run(rest[0], int(rest[1]), int(rest[2]), rest[3])
    Path(rest[-1]).write_text(str(records))
    return 0


# -- counting -------------------------------------------------------------------------------------


def build_hour_files(folder: Path, hours: int) -> int:
    """The first `hours` hour files of the benchmark's history, gzipped as the emulator serves
    them; returns the first hour's start."""
    from auditor.emulator.dataset import DEFAULT_START_MS
    from auditor.emulator.server import Emulator, EmulatorOptions

    feed = Emulator(EmulatorOptions(messages=MESSAGES, days=DAYS, client_secret=SECRET)).feed
    for hour in range(hours):
        start = DEFAULT_START_MS + hour * HOUR_MS
        (folder / f"{start}.gz").write_bytes(feed.build(start)[True])
    return DEFAULT_START_MS


_KIND = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn"}


def read_part(path: Path) -> dict[str, Any]:
    """One part of a callgrind output: its total, the self cost of each shared object (which
    add up to the total), the inclusive cost of calls into each object from another one (what
    it called back included; a library called again from what it called counts twice), and of
    calls into the engine's entry points."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}, "fl": {}}
    own: dict[str, int] = defaultdict(int)
    entered: dict[str, int] = defaultdict(int)
    watched: dict[str, int] = defaultdict(int)
    total = 0
    ob = fn = ""
    cob: str | None = None
    cfn = ""
    in_call = False
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            first = line[:1]
            if first.isdigit() or first in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if in_call:
                    callee = cob if cob is not None else ob
                    if callee != ob and _component(callee) != _component(ob):
                        entered[callee] += cost
                    if cfn in WATCHED and fn != cfn:
                        watched[cfn] += cost
                    in_call, cob = False, None
                else:
                    own[ob] += cost
            elif line.startswith("calls="):
                in_call = True
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
            elif "=" in line and line[:1].islower():
                key, _, value = line.rstrip("\n").partition("=")
                if key not in ("ob", "cob", "fn", "cfn", "fl", "fi", "fe", "cfi", "cfl"):
                    continue
                kind = _KIND.get(key, "fl")
                if value.startswith("("):
                    number, _, name = value.partition(")")
                    name = name.strip()
                    if name:
                        names[kind][number] = name
                    else:
                        name = names[kind].get(number, number)
                else:
                    name = value
                if key == "ob":
                    ob = name
                elif key == "cob":
                    cob = name
                elif key == "fn":
                    fn = name
                elif key == "cfn":
                    cfn = name
    return {"total": total, "own": dict(own), "entered": dict(entered), "watched": dict(watched)}


# The compiled engine's entry point: its inclusive count is the policies' whole cost.
WATCHED = {"CPyDef_engine___PolicyEngine___evaluate": "engine: PolicyEngine.evaluate"}


# Components whose calls from elsewhere are summed inclusive: the compiled engine is left out,
# as it calls the interpreter that calls it again (`PolicyEngine.evaluate` is counted instead).
LIBRARIES = (
    "orjson",
    "jsonschema-rs",
    "OpenSSL (sha256, HMAC)",
    "SQLite",
    "zlib",
    "ahocorasick-rs",
)


def components(part: dict[str, Any]) -> dict[str, float]:
    """A part's counts by the components this benchmark names."""
    figures: dict[str, float] = defaultdict(float)
    figures["total"] = part["total"]
    for ob, cost in part["own"].items():
        figures["self: " + _component(ob)] += cost
    for ob, cost in part["entered"].items():
        name = _component(ob)
        if name in LIBRARIES:
            figures["inclusive: " + name] += cost
    for symbol, cost in part["watched"].items():
        figures["inclusive: " + WATCHED[symbol]] += cost
    return dict(figures)


def _component(where: str) -> str:
    for part, name in OBJECTS:
        if part in where:
            return name
    return "other: " + Path(where).name if where not in ("???", "") else "other"


def counted(python: str, out_dir: Path, name: str, argv: list[str]) -> tuple[int, list[Path]]:
    """Runs `--inner argv` under callgrind; the records it counted and its parts' files, in
    order (forked children write files of their own, which are not among them)."""
    result = out_dir / f"{name}.records"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out_dir}/{name}.%p.out",
        "--dump-before=getppid",
        "--quiet",
        python,
        str(Path(__file__).resolve()),
        "--inner",
        *argv,
        str(result),
    ]
    # The same hash seed each time: set and dict orders of strings, hence the work, repeat.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONMALLOC"}
    environment["PYTHONHASHSEED"] = "0"
    process = subprocess.Popen(command, env=environment)
    if process.wait() != 0:
        raise RuntimeError(f"{name}: exit {process.returncode}: {' '.join(command)}")
    stem = out_dir / f"{name}.{process.pid}.out"
    parts = sorted(out_dir.glob(f"{stem.name}.*"), key=lambda path: int(path.suffix[1:]))
    return int(result.read_text()), [*parts, stem]


def per_record(records: int, large: Path, small: Path | None = None) -> dict[str, Any]:
    """Instructions a record, by component: of the part `large`, less the part `small`."""
    counts = components(read_part(large))
    less = components(read_part(small)) if small is not None else {}
    figures: dict[str, Any] = {
        name: (counts.get(name, 0) - less.get(name, 0)) / records
        for name in set(counts) | set(less)
    }
    figures["records"] = records
    return figures


def measure(
    python: str,
    hours: int,
    baseline_records: int,
    only: set[str],
    keep: Path | None,
    msg_id_order: str = "ordered",
    policy: Path | None = None,
):
    """Counts what `only` names, each in a callgrind process of its own, all at once: a count
    does not depend on what else runs, so they share the cores."""
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-icount-"))
    folder.mkdir(parents=True, exist_ok=True)
    files = folder / "hours"
    files.mkdir(exist_ok=True)
    began = time.perf_counter()
    first = build_hour_files(files, 1 + hours)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import warmed_emulator

    jobs = {
        "worker": ["worker", str(files), str(hours)],
        "steps": ["steps", str(files), "1"],
        "baseline": ["baseline", str(files), str(baseline_records)],
    }
    figures: dict[str, Any] = {}
    try:
        with (
            warmed_emulator(MESSAGES, msg_id_order=msg_id_order) as (_options, base_url, _),
            ThreadPoolExecutor(max_workers=4) as pool,
        ):
            jobs["coordinator"] = [
                "run",
                base_url,
                str(first),
                str(hours),
                str(policy.resolve()) if policy else "",
            ]
            running = {
                kind: pool.submit(counted, python, folder, kind, argv)
                for kind, argv in jobs.items()
                if kind in only
            }
            done = {kind: future.result() for kind, future in running.items()}
        if "worker" in done:
            figures["worker"] = per_record(done["worker"][0], done["worker"][1][2])
        if "coordinator" in done:
            records, parts = done["coordinator"]
            figures["coordinator"] = per_record(records, parts[3], parts[2])
        if "steps" in done:
            records, parts = done["steps"]
            counted_parts = parts[1 + len(STEPS) : 1 + 2 * len(STEPS)]
            figures["steps"] = {
                step: read_part(part)["total"] / records
                for step, part in zip(STEPS, counted_parts, strict=True)
            }
            figures["steps"]["records"] = records
        if "baseline" in done:
            figures["baseline"] = per_record(done["baseline"][0], done["baseline"][1][2])
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    figures["seconds"] = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return figures


def _print(figures: dict[str, Any]) -> None:
    sides = [side for side in ("worker", "coordinator", "baseline") if side in figures]
    if sides:
        names = {n for side in sides for n in figures[side] if n not in ("total", "records")}
        first = figures[sides[0]]
        order = sorted(names, key=lambda n: (not n.startswith("self"), -first.get(n, 0)))
        width = max(len(name) for name in [*names, "instructions a record"]) + 2
        print(f"{'instructions a record':<{width}}" + "".join(f"{side:>14}" for side in sides))
        for name in ["total", *order]:
            values = [figures[side].get(name, 0) for side in sides]
            if all(abs(value) < 50 for value in values):
                continue
            print(f"{name:<{width}}" + "".join(f"{value:>14,.0f}" for value in values))
        counts = "".join(f"{figures[side]['records']:>14,}" for side in sides)
        print(f"{'records counted':<{width}}" + counts)
    ours = [side for side in ("worker", "coordinator") if side in figures]
    if "baseline" in figures and ours:
        own = sum(figures[side]["total"] for side in ours)
        print(
            f"baseline {figures['baseline']['total']:,.0f} against {' + '.join(ours)} "
            f"{own:,.0f} instructions a record: {figures['baseline']['total'] / own:.1f}x"
        )
    if "steps" in figures:
        print(f"\nthe worker's steps alone, over {figures['steps']['records']:,} records:")
        for step in STEPS:
            print(f"  {step:<40}{figures['steps'][step]:>10,.0f}")
    print(
        f"({figures['seconds']:.0f} s, {figures.get('cpu_seconds', 0):.0f} s of CPU under "
        "callgrind; the counts do not depend on the machine's load, the time does)"
    )


def compare(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Two `--json` files side by side: each figure before, after and the difference."""
    print(f"{'instructions a record':<52}{'before':>12}{'after':>12}{'change':>10}")
    for side in ("worker", "coordinator", "baseline", "steps"):
        names = sorted((set(before.get(side, {})) | set(after.get(side, {}))) - {"records"})
        for name in names:
            old, new = before.get(side, {}).get(name, 0), after.get(side, {}).get(name, 0)
            if max(abs(old), abs(new)) < 50:
                continue
            change = f"{(new - old) / old:+.1%}" if old else "new"
            print(f"{side + ': ' + name:<52}{old:>12,.0f}{new:>12,.0f}{change:>10}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hours",
        type=int,
        default=2,
        help="hours counted (at least 2: a one-hour run has no workers)",
    )
    parser.add_argument("--baseline-records", type=int, default=200)
    parser.add_argument("--only", default="worker,coordinator,baseline,steps")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to count")
    parser.add_argument("--keep", type=Path, help="keep hour files and callgrind outputs here")
    parser.add_argument(
        "--policy",
        type=Path,
        help="the coordinator's run with this policy instead of the example (bench/hold_all.yaml:"
        " a finding a record, for the coordinator's cost a finding)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument(
        "--msg-id-order",
        choices=("ordered", "snowflake", "random"),
        default="ordered",
        help="msg_ids of the coordinator's emulator (the worker's hour files keep theirs)",
    )
    parser.add_argument(
        "--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="print two --json files"
    )
    options = parser.parse_args(argv)
    if options.hours < 2 and "coordinator" in options.only:
        parser.error("--hours must be at least 2: a one-hour run has no worker processes")
    if options.compare:
        compare(*(json.loads(path.read_text()) for path in options.compare))
        return {}
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("bench_instructions: valgrind (callgrind) is not installed", file=sys.stderr)
        return {}
    figures = measure(
        options.python,
        options.hours,
        options.baseline_records,
        set(options.only.split(",")),
        options.keep,
        options.msg_id_order,
        options.policy,
    )
    _print(figures)
    if options.json:
        options.json.write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inner"]:
        sys.exit(_inner(sys.argv[2:]))
    main()
