"""Compares two state databases table by table, row by row: usage rebuild_compare.py A.db B.db.
Prints, per table and column, how many rows differ (rows matched by primary key)."""

import sqlite3
import sys
from contextlib import closing

KEYS = {
    "runs": "sequence",
    "messages": "msg_id, content_hash",
    "unidentified": "content_hash",
    "partitions": "sequence, start_ms",
}
a, b = sys.argv[1], sys.argv[2]
with closing(sqlite3.connect(a)) as da, closing(sqlite3.connect(b)) as dbb:
    for table, key in KEYS.items():
        cols = [r[1] for r in da.execute(f"PRAGMA table_info({table})")]
        ra = {
            tuple(r[: key.count(",") + 1]): r
            for r in da.execute(f"SELECT {key}, {', '.join(cols)} FROM {table}")
        }
        rb = {
            tuple(r[: key.count(",") + 1]): r
            for r in dbb.execute(f"SELECT {key}, {', '.join(cols)} FROM {table}")
        }
        n = key.count(",") + 1
        print(
            f"{table}: {len(ra)} rows vs {len(rb)}; only in first {len(ra.keys() - rb.keys())},"
            f" only in second {len(rb.keys() - ra.keys())}"
        )
        for i, col in enumerate(cols):
            diff = [k for k in ra.keys() & rb.keys() if ra[k][n + i] != rb[k][n + i]]
            if diff:
                k = diff[0]
                print(
                    f"   {col}: {len(diff)} differ, e.g. {k}: {ra[k][n + i]!r} vs {rb[k][n + i]!r}"
                )
