"""Benchmark: a whole audit, from the emulator's hour files to a signed bag, beside a plain script.

    .venv/bin/python bench/bench_end_to_end.py [--records 100000] [--workers 2]
        [--baseline-records 20000] [--msg-id-order ordered|snowflake|random]
        [--policy bench/hold_all.yaml] [--profile spy.txt] [--perf perf.data]

The emulator serves a synthetic history of `--records` messages (about 4,200 an hour, so a
bigger size means more hours, not bigger ones) from a process of its own, every hour file built
before any timing: generating records is the emulator's cost, not the auditor's. Each
measurement then runs in a fresh interpreter, so its peak memory is its own:

- the audit: `run_audit` with `--workers` processes, the example policy (or `--policy`'s:
  `bench/hold_all.yaml` holds every record, a finding each), attachments skipped,
  from the token request to the published, signed bag with findings and report. Reported: records
  per second, peak RSS of the coordinator and of its largest child (a worker, or the child that
  writes the report page at the end), CPU seconds of each side, and the commit (the copy of the
  run's message index into the state, and `commit` waiting for it). `--msg-id-order` serves
  msg_ids snowflake-style or in random order instead of growing with time (the default);
- pull over HTTP: `HourFileSource.fetch` of every hour (download, parse, settle) in one process,
  beside `requests` + `gzip` + `json.loads` of the same files;
- the baseline, the plain script a user would write: `requests` for the token and hour files,
  `json.loads`, `jsonschema` with the same schema files, a `term in text` loop over the policy's
  terms and `re.findall` per detector over the same texts, `hashlib.sha256(json.dumps(record,
  sort_keys=True))`, a line written per record. Single process, on the first hours holding at
  least `--baseline-records` records; it reports its rate.

Targets (issue 8): at least 60,000 records/s with two workers and 15x the baseline; time linear in
size and peak memory at 1,000,000 records within 50 MB of 100,000 (`run_all.py` compares sizes).
`--profile FILE` also runs the audit once under py-spy (if installed; untimed) and prints where
the samples fell, by process and stage; `--perf FILE` runs it once under `perf record` and
prints the shares of the libraries the CPU time was spent in (the interpreter's, orjson's,
OpenSSL's...), which py-spy, seeing Python frames only, cannot tell apart. The exit status is 0
either way (figures, not tests).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from common import (
    SECRET,
    children_cpu_seconds,
    children_peak_mb,
    history_days,
    in_fresh_process,
    peak_mb,
    warmed_emulator,
)

TARGET_RATE = 60_000
TARGET_RATIO = 15
ORG, APP, CLIENT = "demo-org", "demo-app", "demo-client"


def _source(base_url: str):
    from auditor.sources.settings import ConnectionSettings

    return ConnectionSettings(
        base_url=base_url, org=ORG, app=APP, client_id=CLIENT, client_secret=SECRET
    )


def _partitions(records: int) -> list:
    from auditor.emulator.dataset import DEFAULT_START_MS
    from auditor.partitions import DAY_MS, partitions_between

    end = DEFAULT_START_MS + history_days(records) * DAY_MS
    return list(partitions_between(DEFAULT_START_MS, end))


# -- the audit ------------------------------------------------------------------------------------


def measure_run(argv: list[str]) -> dict[str, Any]:
    """`run_audit` over the whole history: argv is [base_url, records, workers], then optionally
    [folder, since_ms, until_ms]: a folder kept for the next call (its keys, archive and state
    reused, so a run can be measured over a state earlier runs filled) and the window to audit;
    anywhere in it, `policy=PATH` audits with that policy instead of the example one."""
    from auditor.archive.keys import generate_key_files

    policy = next((each[7:] for each in argv if each.startswith("policy=")), None)
    argv = [each for each in argv if not each.startswith("policy=")]
    base_url, records, workers = argv[0], int(argv[1]), int(argv[2])
    partitions = _partitions(records)
    since_ms, until_ms = partitions[0].start_ms, partitions[-1].end_ms
    if len(argv) > 3:
        folder = Path(argv[3])
        since_ms, until_ms = int(argv[4]), int(argv[5])
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    try:
        key = folder / "keys" / "auditor-signing-key.pem"
        if not key.exists():
            key = generate_key_files(folder / "keys", identity="bench").private_key
        return _timed_run(base_url, workers, folder, key, (since_ms, until_ms), policy)
    finally:
        if len(argv) <= 3:
            shutil.rmtree(folder, ignore_errors=True)


def _timed_run(
    base_url: str,
    workers: int,
    folder: Path,
    key: Path,
    window: tuple[int, int],
    policy: str | None = None,
) -> dict[str, Any]:
    from auditor.pipeline import Progress, RunSettings, run_audit
    from auditor.resources import example_policy
    from auditor.state import RunCompletion

    settings = RunSettings(
        source=_source(base_url),
        policy_path=Path(policy) if policy else example_policy(),
        key_path=key,
        out_dir=folder / "archive",
        state_path=folder / "state.db",
        since_ms=window[0],
        until_ms=window[1],
        workers=workers,
        attachments="skip",
        fail_on="none",
        ready_delay_hours=0,
    )
    # The commit: the thread copying the run's index into the state, and `commit` (waiting for
    # that copy, then the commit and its syncs), each timed around the state's own methods;
    # `commit_wait` is the part of `commit` spent waiting for the copy.
    spans: dict[str, float] = {}
    copy, commit, wait = RunCompletion._index, RunCompletion.commit, RunCompletion._join

    def timed(name, method):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spans[name] = time.perf_counter() - began

        return wrapper

    RunCompletion._index = timed("index_copy", copy)
    RunCompletion.commit = timed("commit", commit)
    RunCompletion._join = timed("commit_wait", wait)
    marks: dict[str, float] = {}
    progress = Progress(phase=lambda name: marks.setdefault(name, time.perf_counter()))
    cpu, children_cpu = time.process_time(), children_cpu_seconds()
    started = time.perf_counter()
    try:
        outcome = run_audit(settings, progress)
    finally:
        RunCompletion._index, RunCompletion.commit, RunCompletion._join = copy, commit, wait
    seconds = time.perf_counter() - started
    archived = marks.get("archive", started + seconds)
    bag_mb = sum(p.stat().st_size for p in outcome.bag_path.rglob("*") if p.is_file()) / 1e6
    return {
        "records": outcome.records,
        "findings": outcome.findings,
        "seconds": seconds,
        "rate": outcome.records / seconds,
        "workers_seconds": archived - started,
        "archive_seconds": started + seconds - archived,
        "index_copy_seconds": spans.get("index_copy"),
        "commit_seconds": spans.get("commit"),
        "commit_wait_seconds": spans.get("commit_wait"),
        "state_mb": (folder / "state.db").stat().st_size / 1e6,
        "coordinator_cpu": time.process_time() - cpu,
        "workers_cpu": children_cpu_seconds() - children_cpu,
        "coordinator_peak_mb": peak_mb(),
        "worker_peak_mb": children_peak_mb(),
        "bag_mb": bag_mb,
    }


# -- pull over HTTP -------------------------------------------------------------------------------


def _token(session: requests.Session, base_url: str) -> dict[str, str]:
    answer = session.post(
        f"{base_url}/{ORG}/{APP}/token",
        json={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET},
        timeout=60,
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _hour_file(session: requests.Session, base_url: str, label: str, headers) -> bytes | None:
    answer = session.get(
        f"{base_url}/{ORG}/{APP}/chatmessages/{label}", headers=headers, timeout=60
    )
    if answer.status_code == 404:
        return None
    return session.get(answer.json()["data"][0]["url"], timeout=120).content


def measure_pull(argv: list[str]) -> dict[str, Any]:
    """Every hour through the auditor's hour-file source, then through requests + json."""
    from auditor.sources.settings import make_source

    base_url, records = argv[0], int(argv[1])
    partitions = _partitions(records)
    source = make_source(_source(base_url))
    started = time.perf_counter()
    pulled = sum(len(source.fetch(partition).records) for partition in partitions)
    ours = time.perf_counter() - started
    source.close()

    with requests.Session() as session:
        started = time.perf_counter()
        headers = _token(session, base_url)
        served = 0
        for partition in partitions:
            data = _hour_file(session, base_url, partition.label(), headers)
            if data is not None:
                served += len([json.loads(line) for line in gzip.decompress(data).splitlines()])
        theirs = time.perf_counter() - started
    return {"records": pulled, "rate": pulled / ours, "baseline_rate": served / theirs}


# -- the baseline ---------------------------------------------------------------------------------


def measure_baseline(argv: list[str]) -> dict[str, Any]:
    """The plain script over the first hours holding at least argv[2] records."""
    from bench_policies import BASELINE_PATTERNS

    from auditor.policies.loading import load_policy
    from auditor.policies.reading import scanned_fields
    from auditor.resources import example_policy
    from auditor.validation import reference_validator

    base_url, records, wanted = argv[0], int(argv[1]), int(argv[2])
    validator = reference_validator("loose")
    policy = load_policy(example_policy())
    terms = [term.text for keyword_list in policy.keyword_lists for term in keyword_list.terms]
    patterns = [re.compile(pattern) for pattern in BASELINE_PATTERNS]
    counts: Counter[str] = Counter()
    with (
        tempfile.TemporaryDirectory(prefix="bench-baseline-") as folder,
        (Path(folder) / "archive.jsonl").open("w", encoding="utf-8") as out,
        requests.Session() as session,
    ):
        started = time.perf_counter()
        headers = _token(session, base_url)
        for partition in _partitions(records):
            data = _hour_file(session, base_url, partition.label(), headers)
            for line in gzip.decompress(data).splitlines() if data else []:
                record = json.loads(line)
                counts["schema errors"] += len(list(validator.iter_errors(record)))
                for _pointer, text, _key in scanned_fields(record):
                    counts["keyword hits"] += len([term for term in terms if term in text])
                    for pattern in patterns:
                        counts["pattern hits"] += len(pattern.findall(text))
                digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
                out.write(f"{json.dumps(record, ensure_ascii=False)}\t{digest}\n")
                counts["records"] += 1
            if counts["records"] >= wanted:
                break
        seconds = time.perf_counter() - started
    return {"rate": counts["records"] / seconds, "seconds": seconds, **counts}


# -- the profile ----------------------------------------------------------------------------------

# What a sample was doing, by the first of these found in its stack's frames (workers' stacks
# also hold the coordinator's frames from before the fork, so each side has its own list).
# Compiled code (mypyc) has no Python frame: its samples show as the line that called it, so
# the worker's calls of `evaluate` and `archived_facts` are found by their lines in stages.py.
WORKER_STAGES = (
    ("PartitionProcessor.__init__", "worker: start-up (policy, schemas)"),
    ("auditor/report/forked.py", "report page (forked child)"),
    ("content_sha256", "worker: content sha256"),
    ("salter.<locals>.salt", "worker: salt (HMAC)"),
    ("canonical_of", "worker: canonical bytes"),
    ("RecordValidator.check", "worker: validate"),
    ("auditor/policies/", "worker: policies"),
    ("= evaluate(record)", "worker: policies"),
    ("archived_facts(record", "worker: report facts"),
    ("auditor/report/", "worker: report facts"),
    ("fetch", "worker: pull (download, gunzip, parse, settle)"),
    ("_with_attachments", "worker: pull (download, gunzip, parse, settle)"),
    ("_spooled (auditor/stages.py", "worker: header, spool line, digest"),
    ("spool_digest", "worker: header, spool line, digest"),
)
COORDINATOR_STAGES = (
    ("_bootstrap>", "coordinator: start-up (imports, policy)"),
    ("<module> (auditor/", "coordinator: start-up (imports, policy)"),
    ("auditor/policies/", "coordinator: start-up (imports, policy)"),
    ("auditor/yamlsafe.py", "coordinator: start-up (imports, policy)"),
    ("shutil.rmtree", "coordinator: spool removal"),
    ("_rmtree_safe_fd", "coordinator: spool removal"),
    ("_insert_rows", "coordinator: index rows into SQLite"),
    ("_batches", "coordinator: spool read + digest"),
    ("_Archiver.emit", "coordinator: findings (canonical line, report)"),
    ("_Archiver._kept", "coordinator: spool headers, dedup, counts"),
    ("BagWriter.add_partition_lines", "coordinator: bag lines, leaf hashes, Merkle"),
    ("RunCompletion", "coordinator: state commit (index copied by a thread)"),
    ("CsvFormat", "coordinator: findings.csv"),
    ("auditor/report/", "coordinator: report, other"),
    ("select (selectors.py", "coordinator: waiting (pool, locks)"),
    ("Condition.wait", "coordinator: waiting (pool, locks)"),
    ("_Archiver.archive", "coordinator: other archive work"),
)


def _stage_needles() -> tuple[tuple[str, str], ...]:
    """WORKER_STAGES with the lines of stages.py that call compiled code as `file:line)`."""
    from auditor import stages

    source = Path(stages.__file__).read_text().splitlines()
    needles = []
    for needle, name in WORKER_STAGES:
        if "(record" in needle:
            found = [n for n, line in enumerate(source, start=1) if needle in line]
            needles.extend((f"auditor/stages.py:{n})", name) for n in found)
        else:
            needles.append((needle, name))
    return tuple(needles)


def summarise_profile(path: Path) -> list[tuple[str, int]]:
    """Samples of a `py-spy record --subprocesses -f raw` file, by process and stage."""
    worker_stages = _stage_needles()
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")
        worker = sum(frame.startswith("process ") for frame in frames) > 1
        stages = worker_stages if worker else COORDINATOR_STAGES
        found = (name for needle, name in stages if any(needle in f for f in frames))
        other = "worker: other (pool, imports)" if worker else "coordinator: other"
        counts[next(found, other)] += int(number)
    return counts.most_common()


def _audit_under(profiler: list[str], base_url: str, records: int, workers: int, out: Path) -> bool:
    """Runs the audit once (untimed) under `profiler`'s command line; whether it wrote `out`."""
    with tempfile.TemporaryDirectory(prefix="bench-e2e-profile-") as folder:
        command = [*profiler, sys.executable, str(Path(__file__).with_name("common.py"))]
        command += [str(Path(folder) / "r.json"), "bench_end_to_end:measure_run"]
        command += [base_url, str(records), str(workers)]
        subprocess.run(command, check=False, capture_output=True)
    return out.exists()


def profile_run(base_url: str, records: int, workers: int, out: Path) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("--profile: py-spy is not installed (pip install py-spy); no profile taken")
        return
    profiler = [spy, "record", "--subprocesses", "--rate", "200", "--format", "raw"]
    if not _audit_under([*profiler, "--output", str(out), "--"], base_url, records, workers, out):
        print("--profile: py-spy wrote no profile (it needs ptrace permission)")
        return
    counts = summarise_profile(out)
    total = sum(number for _stage, number in counts) or 1
    print(f"profile ({total:,} samples at 200 Hz across all processes, {out}):")
    for stage, number in counts:
        print(f"  {number / total:6.1%}  {stage}")


# Shared objects a `perf record` sample fell in, by what they do for a run. Debian's CPython is
# linked into its `python3.11` executable; pyenv's loads `libpython3.11.so`.
LIBRARIES = (
    ("libpython", "CPython: interpreter, objects, dicts, strings, cycle collector"),
    ("python3.", "CPython: interpreter, objects, dicts, strings, cycle collector"),
    ("auditor_native", "mypyc: compiled modules (policy engine, report)"),
    ("jsonschema_rs", "jsonschema-rs: schema checks"),
    ("orjson", "orjson: parsing and writing JSON"),
    ("libcrypto", "OpenSSL: SHA-256, HMAC"),
    ("_hashlib", "OpenSSL: SHA-256, HMAC"),
    ("sqlite", "SQLite: message index, state"),
    ("libz", "zlib: gunzip"),
    ("ahocorasick", "ahocorasick-rs: keyword automaton"),
    ("libc", "libc: malloc, memcpy, memcmp"),
    ("kernel", "kernel: files, sockets, page faults"),
)


def summarise_perf(path: Path) -> tuple[list[tuple[str, float]], list[float]]:
    """Shares of a `perf record` file by library group, and each process's share (largest
    first), from `perf report`'s own tables."""

    def table(keys: str) -> list[tuple[float, list[str]]]:
        report = subprocess.run(
            ["perf", "report", "-i", str(path), "--sort", keys, "--stdio"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        rows = []
        for line in report.splitlines():
            fields = line.split()
            if fields and fields[0].endswith("%") and not line.startswith("#"):
                rows.append((float(fields[0][:-1]), fields[1:]))
        return rows

    groups: Counter[str] = Counter()
    for share, (library, *_rest) in table("dso"):
        name = next((label for needle, label in LIBRARIES if needle in library), "other")
        groups[name] += share
    processes = sorted((share for share, _pid in table("pid")), reverse=True)
    return groups.most_common(), processes


def perf_run(base_url: str, records: int, workers: int, out: Path) -> None:
    if shutil.which("perf") is None:
        print("--perf: perf is not installed (apt-get install linux-perf); no profile taken")
        return
    profiler = ["perf", "record", "--freq", "499", "--output", str(out), "--"]
    if not _audit_under(profiler, base_url, records, workers, out):
        print("--perf: perf wrote no profile (perf_event_paranoid may forbid it)")
        return
    groups, processes = summarise_perf(out)
    print(f"perf: CPU samples of the audit's processes by library ({out}):")
    for name, share in groups:
        print(f"  {share:5.1f}%  {name}")
    print("  by process: " + ", ".join(f"{share:.1f}%" for share in processes))


# -- putting it together --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-records", type=int, default=20_000)
    parser.add_argument(
        "--msg-id-order",
        choices=("ordered", "snowflake", "random"),
        default="ordered",
        help="how the emulator's msg_ids are ordered (`auditor emulator --msg-id-order`)",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        help="audit with this policy instead of the example one (bench/hold_all.yaml holds, "
        "and so flags, every record)",
    )
    parser.add_argument("--profile", type=Path, help="also profile one run with py-spy into FILE")
    parser.add_argument("--perf", type=Path, help="also record one run with perf into FILE")
    args = parser.parse_args(argv)

    with warmed_emulator(args.records, msg_id_order=args.msg_id_order) as (
        _options,
        base_url,
        warming,
    ):
        print(f"emulator: {args.records:,} messages warmed in {warming:.1f} s (not timed)")
        where = [base_url, str(args.records)]
        chosen = [f"policy={args.policy.resolve()}"] if args.policy else []
        run = in_fresh_process("bench_end_to_end:measure_run", [*where, str(args.workers), *chosen])
        pull = in_fresh_process("bench_end_to_end:measure_pull", where)
        baseline = in_fresh_process(
            "bench_end_to_end:measure_baseline", [*where, str(args.baseline_records)]
        )
        if args.profile:
            profile_run(base_url, args.records, args.workers, args.profile)
        if args.perf:
            perf_run(base_url, args.records, args.workers, args.perf)

    audit, pulled, plain = run["result"], pull["result"], baseline["result"]
    ratio = audit["rate"] / plain["rate"]
    met = audit["rate"] >= TARGET_RATE and ratio >= TARGET_RATIO
    print(
        f"end to end, {args.workers} workers: {audit['records']:,} records, "
        f"{audit['findings']:,} findings in {audit['seconds']:.1f} s = {audit['rate']:,.0f} "
        f"records/s ({audit['workers_seconds']:.1f} s workers, "
        f"{audit['archive_seconds']:.1f} s archive; msg_ids {args.msg_id_order}, index copy "
        f"{audit['index_copy_seconds']:.2f} s, commit {audit['commit_seconds']:.2f} s, of which "
        f"{audit['commit_wait_seconds']:.2f} s waiting for the copy)"
    )
    print(
        f"  CPU: workers {audit['workers_cpu']:.1f} s, coordinator {audit['coordinator_cpu']:.1f} "
        f"s; peak RSS: coordinator {audit['coordinator_peak_mb']:.0f} MB, largest child "
        f"{audit['worker_peak_mb']:.0f} MB; bag {audit['bag_mb']:.0f} MB"
    )
    print(
        f"baseline (plain script, {plain['records']:,} records): {plain['rate']:,.0f} records/s; "
        f"ratio {ratio:.1f}x"
    )
    print(
        f"pull over HTTP: {pulled['rate']:,.0f} records/s, requests + json.loads "
        f"{pulled['baseline_rate']:,.0f} records/s"
    )
    print(
        f"target (>= {TARGET_RATE:,} records/s and >= {TARGET_RATIO}x): "
        f"{'met' if met else 'NOT met'}"
    )
    peak = max(audit["coordinator_peak_mb"], audit["worker_peak_mb"])
    return {
        "records": args.records,
        "rows": [
            {
                "stage": "pull over HTTP (hour-file source, 1 process)",
                "rate": pulled["rate"],
                "baseline": "requests + gzip + json.loads",
                "baseline_rate": pulled["baseline_rate"],
                "peak_mb": run_peak(pull),
                "target": None,
                "met": None,
            },
            {
                "stage": f"end to end (--workers {args.workers})",
                "rate": audit["rate"],
                "baseline": "plain script (requests, json, jsonschema, `in`, hashlib)",
                "baseline_rate": plain["rate"],
                "peak_mb": peak,
                "target": f">= {TARGET_RATE:,}/s, >= {TARGET_RATIO}x",
                "met": met,
            },
        ],
        "end_to_end": audit,
        "baseline": plain,
        "pull": pulled,
        "warming_seconds": warming,
    }


def run_peak(measured: dict[str, Any]) -> float:
    return max(measured["peak_mb"], measured["children_peak_mb"])


if __name__ == "__main__":
    main()
