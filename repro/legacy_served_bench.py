"""The per-record cost of `LegacyQuerySource.served` alone: 100,000 emulator entities served
from memory by a fake client (no HTTP), old module vs new, alternated; best CPU time of each.

    .venv/bin/python repro/legacy_served_bench.py /tmp/legacy19_old_legacy.py
"""

import importlib.util
import sys
import time

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import Emulator, EmulatorOptions
from auditor.partitions import Partition
from auditor.sources import legacy as new

emulator = Emulator(EmulatorOptions(messages=2_400_000, days=1))
hour = Partition(DEFAULT_START_MS)
pages = []
cursor = None
while True:
    page = emulator.pager.page(
        __import__("auditor.emulator.ql", fromlist=["parse_ql"]).parse_ql(
            new.window_ql(hour.start_ms, hour.end_ms)
        ),
        1000,
        cursor,
    )
    pages.append({"entities": page.entities, "cursor": page.cursor, "count": len(page.entities)})
    cursor = page.cursor
    if cursor is None:
        break


class FakeClient:
    app_url = "http://fake"

    def __init__(self):
        self.at = 0

    def legacy_page(self, ql, limit, cursor=None):
        page = pages[self.at]
        self.at += 1
        return page


spec = importlib.util.spec_from_file_location("old_legacy", sys.argv[1])
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
best = {"old": [], "new": []}
for _ in range(5):
    for name, module in (("old", old), ("new", new)):
        source = module.LegacyQuerySource(FakeClient())
        started = time.process_time()
        count = sum(1 for _ in source.served(hour))
        best[name].append(time.process_time() - started)
for name, times in best.items():
    print(
        f"{name}: {count} entities, best {min(times):.3f} s CPU ({count / min(times):,.0f}/s), "
        f"all {[round(t, 3) for t in times]}"
    )
