"""Fetch-only speed of the legacy source (no pipeline): an emulator in this process serves N
messages over D days; the source fetches every hour. Prints records/s, pages, and peak RSS.

    .venv/bin/python repro/legacy_fetch_speed.py 100000 2
"""

import resource
import sys
import time

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS, Partition
from auditor.sources.easemob import EasemobClient
from auditor.sources.legacy import LegacyQuerySource

messages, days = int(sys.argv[1]), int(sys.argv[2])
with run_emulator(EmulatorOptions(messages=messages, days=days)) as emu:
    client = EasemobClient(emu.base_url, "demo-org", "demo-app", "demo-client", "demo-secret")
    source = LegacyQuerySource(client)
    started, cpu0, total = time.monotonic(), time.process_time(), 0
    for n in range(24 * days):
        total += sum(1 for _ in source.served(Partition(DEFAULT_START_MS + n * HOUR_MS)))
    wall, cpu = time.monotonic() - started, time.process_time() - cpu0
    print(
        f"{total} entities in {wall:.1f} s wall ({total / wall:,.0f}/s), {cpu:.1f} s CPU "
        f"(client+emulator), pages {emu.stats.by_route('legacy')}, "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB"
    )
