"""A state database with N indexed messages (default 1,000,000) in one run, all retention ended
by 2030 and action delete, to measure `auditor due` at scale: usage big_state.py PATH [N]."""

import sys

from auditor.state import State

path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
state = State(path)
with state.transaction() as db:
    db.execute(
        "INSERT INTO runs (sequence, status, since_ms, until_ms, started_at, record_count,"
        " previous_tagmanifest_sha256, bag_path, config_digest) VALUES (1, 'completed',"
        " 1793491200000, 1793577600000, 1793577600000, ?, ?, 'run-000001-x', 'd')",
        (n, "0" * 64),
    )
    db.executemany(
        "INSERT INTO messages (msg_id, content_hash, timestamp_ms, retain_until_ms, first_run,"
        " last_run, hour_ms, action, rule, seq) VALUES (?, ?, ?, ?, 1, 1, 0, 'delete',"
        " 'default', ?)",
        (
            (f"2000000700{i:08d}", f"{i:064x}", 1793491200000 + i, 1825027200000 + i, i)
            for i in range(n)
        ),
    )
state.close()
