"""`auditor state show`: what a chain's state database holds, read without writing it.

The operator's view over a chain of runs: each run's window, counts, bag and policy digest,
the hours it lost, and the chain head the next run links to; the database's size and what
takes it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

from auditor import expected_head, state_verbatim
from auditor.archive.untrusted import shown
from auditor.partitions import format_instant
from auditor.state import GENESIS
from auditor.state_reading import check_whole, reading_state
from auditor.state_schema import has_table

FORMAT = 1
"""The version of `state show --format json`: raised when a field is renamed or removed or its
meaning changes (a field added keeps it)."""


@dataclass(frozen=True, slots=True)
class RunRow:
    sequence: int
    status: str
    since: str
    until: str
    started: str | None
    finished: str | None
    records: int | None
    findings: int | None
    lost_hours: int | None
    bag: str | None
    policy_sha256: str | None
    policy_changed: bool
    tagmanifest_sha256: str | None


@dataclass(frozen=True, slots=True)
class StateView:
    state: str
    file_bytes: int
    wal_bytes: int
    messages: int
    unidentified: int
    verbatim: int
    """Messages with no RFC 8785 form, which bags keep verbatim in `data/unreadable/` without a
    leaf (`state_verbatim`); not among `messages`."""
    head_run: int | None
    head_tagmanifest_sha256: str
    runs: list[RunRow]

    def to_dict(self) -> dict:
        """The view as JSON, with the `format` of that JSON (`FORMAT`) first."""
        return {"format": FORMAT, **asdict(self)}


def show(state_path: Path, expect_head: str | None = None) -> StateView:
    """Reads the state at `state_path` (see `reading_state` for the lock and read-only open);
    raises `HeadMismatch` (exit 1) when no run it records has the head `expect_head`."""
    with reading_state(state_path) as db:
        check_whole(db, state_path)
        expected_head.check_state(db, expect_head, str(state_path))
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
        cursor = db.execute("SELECT * FROM runs ORDER BY sequence")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        unidentified = (
            db.execute("SELECT count(*) FROM unidentified").fetchone()[0]
            if has_table(db, "unidentified")
            else 0
        )
        verbatim = state_verbatim.count(db)
    runs: list[RunRow] = []
    previous_policy = None
    for row in rows:
        policy = row.get("policy_sha256") if "policy_sha256" in columns else None
        runs.append(
            RunRow(
                sequence=row["sequence"],
                status=row["status"],
                since=format_instant(row["since_ms"]),
                until=format_instant(row["until_ms"]),
                started=_instant(row["started_at"]),
                finished=_instant(row["finished_at"]),
                records=row["record_count"],
                findings=row["finding_count"],
                lost_hours=_lost_hours(row["outcome"]),
                bag=PurePath(row["bag_path"]).name if row["bag_path"] else None,
                policy_sha256=policy,
                policy_changed=bool(policy and previous_policy and policy != previous_policy),
                tagmanifest_sha256=row["tagmanifest_sha256"],
            )
        )
        if row["status"] == "completed" and policy:
            previous_policy = policy
    head = next((run for run in reversed(runs) if run.status == "completed"), None)
    return StateView(
        state=str(state_path),
        file_bytes=os.path.getsize(state_path),
        wal_bytes=_size(Path(f"{state_path}-wal")),
        messages=messages,
        unidentified=unidentified,
        verbatim=verbatim,
        head_run=head.sequence if head else None,
        head_tagmanifest_sha256=(head.tagmanifest_sha256 or GENESIS) if head else GENESIS,
        runs=runs,
    )


def _instant(ms: int | None) -> str | None:
    return format_instant(ms) if ms is not None else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _lost_hours(outcome: str | None) -> int | None:
    if not outcome:
        return None
    try:
        value = json.loads(outcome).get("lost_hours")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def as_table(view: StateView) -> list[str]:
    """The view as lines for a terminal."""
    head = (
        f"run {view.head_run}, tagmanifest sha256 {view.head_tagmanifest_sha256}"
        if view.head_run
        else "none (the next run starts a chain)"
    )
    lines = [
        f"state: {shown(view.state)} ({view.file_bytes:,} bytes, "
        f"write-ahead log {view.wal_bytes:,})",
        f"message index: {view.messages:,} message(s), {view.unidentified:,} without a msg_id, "
        f"{view.verbatim:,} kept verbatim (no leaf)",
        f"chain head: {head}",
        "",
        f"{'run':>5} {'status':<9} {'window':<41} {'records':>9} {'findings':>8} {'lost h':>6} "
        f"{'policy':<13} bag",
    ]
    for run in view.runs:
        policy = (run.policy_sha256 or "-")[:12] + ("*" if run.policy_changed else "")
        lines.append(
            f"{run.sequence:>5} {run.status:<9} {run.since + ' .. ' + run.until:<41} "
            f"{_count(run.records):>9} {_count(run.findings):>8} {_count(run.lost_hours):>6} "
            f"{policy:<13} {run.bag or '-'}"
        )
    if any(run.policy_changed for run in view.runs):
        lines.append("* the policy changed since the previous completed run")
    return lines


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
