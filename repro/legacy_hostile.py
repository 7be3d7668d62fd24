"""The legacy source against each hostile-server mode (auditor/emulator/hostile.py) and the
emulator's request faults, over loopback HTTP: for each, the outcome of fetching a few hours
(records complete and undoubled, or the one-line error), the time taken, and the requests made.

    .venv/bin/python repro/legacy_hostile.py            # every mode
    .venv/bin/python repro/legacy_hostile.py drop=1     # one spec
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import AuditorError
from auditor.partitions import HOUR_MS, Partition
from auditor.records import content_hash
from auditor.sources.easemob import EasemobClient, RetryPolicy
from auditor.sources.legacy import LegacyQuerySource

HOURS = 3
ENTITY_FIELDS = ("uuid", "type", "created", "modified")
CASES: dict[str, dict] = {
    "overlap=3": {"legacy_hostile": "overlap=3"},
    "overlap=99 (page of 100)": {"legacy_hostile": "overlap=99"},
    "repeat=2": {"legacy_hostile": "repeat=2"},
    "loop=3 (same cursors)": {"legacy_hostile": "loop=3"},
    "loop=3 loop_fresh=1": {"legacy_hostile": "loop=3,loop_fresh=1"},
    "drop=1 (count claims limit)": {"legacy_hostile": "drop=1"},
    "count=+5 (nothing lost)": {"legacy_hostile": "count=5"},
    "cursor_ttl=0.05 + slow pages": {
        "legacy_hostile": "cursor_ttl=0.05", "slow_rate": 0.3, "slow_seconds": 0.1,
    },
    "garbage (malformed JSON) 0.3": {"garbage_rate": 0.3},
    "5xx 0.3 + 429 0.2 + 503 0.1": {
        "fail_rate": 0.3, "rate_limit_rate": 0.2, "legacy_503_rate": 0.1,
    },
    "token ttl 1 s, slow pages": {"token_ttl": 1, "slow_rate": 0.5, "slow_seconds": 0.3},
    "token expires early (server side)": {"token_expire_early": 0.5, "slow_rate": 0.5,
                                          "slow_seconds": 0.3},
    "duplicate 0.3 + short 0.5": {"duplicate_rate": 0.3, "short_page_rate": 0.5},
}  # fmt: skip


def probe(name: str, options: dict) -> None:
    with run_emulator(EmulatorOptions(messages=24000, **options)) as emu:
        client = EasemobClient(
            emu.base_url, "demo-org", "demo-app", "demo-client", "demo-secret",
            retry=RetryPolicy(max_retries=6, backoff_base=0.001, backoff_cap=0.01),
        )  # fmt: skip
        source = LegacyQuerySource(client, limit=100)
        started = time.monotonic()
        try:
            results = [
                source.fetch(Partition(DEFAULT_START_MS + n * HOUR_MS)) for n in range(HOURS)
            ]
        except AuditorError as error:
            outcome = f"{type(error).__name__}: {error}"
        else:
            got = Counter(
                content_hash({k: v for k, v in r.items() if k not in ENTITY_FIELDS})
                for result in results
                for r in result.records
            )
            want = Counter(
                content_hash(r)
                for r in emu.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + HOURS * HOUR_MS)
            )
            lost, extra = sum((want - got).values()), sum((got - want).values())
            outcome = "complete" if not lost and not extra else f"LOST {lost}, EXTRA {extra}"
            outcome += f" ({sum(got.values())} records)"
        finally:
            client.close()
        legacy = emu.stats.by_route("legacy")
        print(f"{name:36} {time.monotonic() - started:6.2f} s  requests {legacy}\n    {outcome}")


def main() -> None:
    chosen = sys.argv[1:]
    for name, options in CASES.items():
        if not chosen:
            probe(name, options)
    for spec in chosen:
        probe(spec, {"legacy_hostile": spec})


if __name__ == "__main__":
    main()
