"""Legacy ql/cursor source under load: a real `auditor run --api legacy` against a real emulator
subprocess, optionally killed with SIGKILL at random moments and resumed, then the bag's records
compared with the emulator's ground truth (msg_id set equality, content multiset equality, no
duplicate). Prints records/s and the peak RSS of the (last, uninterrupted) run.

    .venv/bin/python repro/legacy_load.py --messages 100000 --days 2
    .venv/bin/python repro/legacy_load.py --messages 100000 --days 2 --kills 4 \
        --emu --fail-rate=0.05 --emu --duplicate-rate=0.1 --emu --short-page-rate=0.2
"""

# ruff: noqa: E501, SIM115
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import Emulator, EmulatorOptions
from auditor.partitions import DAY_MS
from auditor.records import content_hash

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
ENTITY_FIELDS = ("uuid", "type", "created", "modified")


def start_emulator(folder: Path, messages: int, days: int, extra: list[str]):
    ready = folder / "ready"
    process = subprocess.Popen(
        [str(BIN / "auditor"), "emulator", "--port", "0", "--messages", str(messages),
         "--days", str(days), "--ready-file", str(ready), *extra],
        stdout=subprocess.DEVNULL, stderr=open(folder / "emulator.err", "w"),
        start_new_session=True,
    )  # fmt: skip
    for _ in range(600):
        if ready.exists():
            return process, ready.read_text().strip()
        if process.poll() is not None:
            sys.exit(
                f"emulator exited {process.returncode}: {(folder / 'emulator.err').read_text()}"
            )
        time.sleep(0.1)
    sys.exit("emulator did not start")


def run_args(base_url: str, folder: Path, days: int, workers: int, extra: list[str]) -> list[str]:
    config = folder / "auditor.yaml"
    config.write_text(
        "source:\n  api: legacy\n  backoff_base: 0.01\n  backoff_cap: 0.1\n  max_retries: 8\n"
    )
    until = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime((DEFAULT_START_MS + days * DAY_MS) / 1000))
    return [
        str(BIN / "auditor"), "run", "--config", str(config), "--base-url", base_url,
        "--org", "demo-org", "--app", "demo-app", "--client-id", "demo-client",
        "--policies", str(ROOT / "policies.example.yaml"), "--key", str(folder / "keys" /
        "auditor-signing-key.pem"), "--out", str(folder / "archive"), "--state",
        str(folder / "state.db"), "--since", "2026-11-01T00:00Z", "--until", until,
        "--as-of", until, "--fail-on", "none", "--workers", str(workers), *extra,
    ]  # fmt: skip


def bag_records(archive: Path) -> list[dict]:
    records = []
    for bag in sorted(p for p in archive.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted((bag / "data" / "records").glob("*.jsonl")):
            with path.open("rb") as lines:
                records += [json.loads(line)["record"] for line in lines]
    return records


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--kills", type=int, default=0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--emu", action="append", default=[], help="an emulator flag")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--api", default="legacy", choices=("legacy", "hourfiles"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="legacy19-load-"))
    env = dict(os.environ, EASEMOB_CLIENT_SECRET="demo-secret")
    subprocess.run([str(BIN / "auditor"), "keygen", "--out", str(folder / "keys")],
                   check=True, capture_output=True, env=env)  # fmt: skip
    emulator, base_url = start_emulator(folder, args.messages, args.days, args.emu)
    try:
        command = run_args(base_url, folder, args.days, args.workers, ["--api", args.api])
        log = open(folder / "run.err", "a")
        for kill in range(args.kills):
            started = time.monotonic()
            run = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
            delay = rng.uniform(1.0, 5.0 + args.messages / 500)
            try:
                run.wait(delay)
                print(
                    f"kill {kill + 1}: run ended by itself ({run.returncode}) before {delay:.1f} s"
                )
                break
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                print(f"kill {kill + 1}: SIGKILL after {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        final = subprocess.run(
            ["/usr/bin/time", "-f", "maxrss_kb=%M user_s=%U sys_s=%S", *command], env=env, capture_output=True,
            text=True,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        print(
            f"final run: exit {final.returncode} in {elapsed:.1f} s; {final.stderr.strip().splitlines()[-1]}"
        )
        if final.returncode not in (0, 1):
            print(final.stdout[-2000:], final.stderr[-3000:])
        options = EmulatorOptions(messages=args.messages, days=args.days, **emu_options(args.emu))
        expected = Emulator(options).expected_records(
            DEFAULT_START_MS, DEFAULT_START_MS + args.days * DAY_MS
        )
        records = bag_records(folder / "archive")
        got = Counter(
            content_hash({k: v for k, v in r.items() if k not in ENTITY_FIELDS}) for r in records
        )
        want = Counter(content_hash(r) for r in expected)
        ids_got = Counter(r.get("msg_id") for r in records)
        ids_want = Counter(r.get("msg_id") for r in expected)
        print(
            f"records: bag {len(records)}, expected {len(expected)}; rate {len(records) / elapsed:,.0f} rec/s (final run, wall)"
        )
        print(
            f"msg_id sets equal: {set(ids_got) == set(ids_want)}; missing {len(set(ids_want) - set(ids_got))}, extra {len(set(ids_got) - set(ids_want))}"
        )
        print(
            f"content multisets equal: {got == want}; missing {sum((want - got).values())}, duplicated/extra {sum((got - want).values())}"
        )
        print(f"msg_id multiplicities equal: {ids_got == ids_want}")
        ok = got == want and set(ids_got) == set(ids_want)
        print("OK" if ok else f"MISMATCH (folder kept: {folder})")
        args.keep = args.keep or not ok
        return 0 if ok else 1
    finally:
        os.killpg(emulator.pid, signal.SIGTERM)
        emulator.wait()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def emu_options(flags: list[str]) -> dict:
    """The EmulatorOptions fields of `--x-rate=0.1` style flags that shape the served records."""
    options = {}
    for flag in flags:
        name, _, value = flag.lstrip("-").partition("=")
        field = name.replace("-", "_")
        if field in ("duplicate_rate", "conflict_rate", "late_rate", "short_page_rate", "seed"):
            options[field] = (
                type(getattr(EmulatorOptions, field, 0.0))(value) if field != "seed" else int(value)
            )
    return options


if __name__ == "__main__":
    sys.exit(main())
