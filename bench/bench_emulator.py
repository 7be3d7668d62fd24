"""How fast the emulator serves a history over loopback HTTP, beside generating it in-process.

Baseline: generating and serialising every record of the history in this process (the floor for
a cold serve, which must do the same work). Then: every hour file downloaded cold (built on
demand), again warm (from the cache), and the whole history paged through the legacy API with
`limit=1000`. Figures are records per second.

    .venv/bin/python bench/bench_emulator.py --records 200000
"""

from __future__ import annotations

import argparse
import gzip
import time
from typing import Any

import orjson
import requests

from auditor.emulator.dataset import SyntheticHistory
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS

CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "demo-client",
    "client_secret": "demo-secret",
}


def generate(history: SyntheticHistory) -> int:
    return sum(len(orjson.dumps(history.record(i))) for i in range(len(history)))


def pull_hours(session: requests.Session, emu, headers: dict[str, str]) -> int:
    count = 0
    for start in range(emu.history.start_ms, emu.history.end_ms, HOUR_MS):
        url = f"{emu.base_url}/demo-org/demo-app/chatmessages/{emu.hour_label(start)}"
        answer = session.get(url, headers=headers, timeout=120)
        if answer.status_code == 404:
            continue
        data = session.get(answer.json()["data"][0]["url"], timeout=120).content
        count += gzip.decompress(data).count(b"\n")
    return count


def pull_legacy(session: requests.Session, emu, headers: dict[str, str]) -> int:
    count, cursor = 0, None
    while True:
        params = {"ql": "select * where timestamp>0", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        url = f"{emu.base_url}/demo-org/demo-app/chatmessages"
        body = orjson.loads(session.get(url, params=params, headers=headers, timeout=120).content)
        count += body["count"]
        cursor = body.get("cursor")
        if not cursor:
            return count


def timed(label: str, work, baseline: float | None = None) -> float:
    began = time.perf_counter()
    records = work()
    seconds = time.perf_counter() - began
    rate = records / seconds
    versus = f"  ({rate / baseline:.2f}x baseline)" if baseline else ""
    print(f"{label:<40} {records:>9} records {seconds:7.2f} s {rate:>10,.0f} rec/s{versus}")
    return rate


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args(argv)
    options = EmulatorOptions(messages=args.records, days=args.days)
    history = SyntheticHistory(messages=args.records, days=args.days)
    baseline = timed(
        "baseline: generate + serialise in-process", lambda: generate(history) and len(history)
    )
    with run_emulator(options) as emu, requests.Session() as session:
        token = session.post(
            f"{emu.base_url}/demo-org/demo-app/token", json=CREDENTIALS, timeout=30
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        timed(
            "hour files, cold (built on demand)",
            lambda: pull_hours(session, emu, headers),
            baseline,
        )
        warm = timed(
            "hour files, warm (cached gzip)", lambda: pull_hours(session, emu, headers), baseline
        )
        legacy = timed(
            "legacy pages, limit=1000", lambda: pull_legacy(session, emu, headers), baseline
        )
    with run_emulator(options) as emu:
        timed("warm(): every hour file, all cores", lambda: emu.warm() and len(history), baseline)
    served = "generate + serialise in-process"
    return {
        "rows": [
            {
                "stage": "emulator: hour files, warm",
                "rate": warm,
                "baseline": served,
                "baseline_rate": baseline,
            },
            {
                "stage": "emulator: legacy pages",
                "rate": legacy,
                "baseline": served,
                "baseline_rate": baseline,
            },
        ]
    }


if __name__ == "__main__":
    main()
