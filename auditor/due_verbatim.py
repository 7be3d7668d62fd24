"""`auditor due --policy CURRENT.yaml` for the messages the bags keep verbatim.

A message with no RFC 8785 form has no leaf and no seq (`state_verbatim`), so `due_holds`, which
reads a bag's lines by seq, cannot read it. It is read here from its line of `data/unreadable/`
instead, checked against the SHA-256 of that line its run indexed, and judged against the
current policy's holds as `due_holds.rejudge` judges an archived message: the same candidates
(due for deletion or review, held under a released hold, or kept by a run that did not apply a
hold now open), the same verdicts, the same counts in `policy_holds`. Such messages are rare:
each is read on its own, with no memo.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path, PurePath

from auditor.archive import layout
from auditor.archive.untrusted import unreadable_files
from auditor.due import VERDICT_SQL
from auditor.due_holds import (
    REJUDGED,
    UNAPPLIED,
    Rejudged,
    after_release,
    open_holds,
    released_holds,
)
from auditor.policies.model import Policy
from auditor.policies.reading import facts_of
from auditor.policies.retention import RetentionDecider, longest_hold
from auditor.policies.scope import ScopeSet
from auditor.state_verbatim import REJUDGED as TABLE
from auditor.state_verbatim import TABLE_NAME
from auditor.verbatim_kept import lines_at, record_of


def rejudge(
    db: sqlite3.Connection,
    policy: Policy,
    out_dir: Path,
    on_ms: int,
    unapplied: list[int],
    outcome: Rejudged,
) -> None:
    """Fills `TABLE` with the messages kept verbatim that a hold of `policy` not ended at
    `on_ms` covers, those whose released hold lets the retention rules judge them, and those
    whose line could not be checked (`unchecked`, counted in `outcome` by why)."""
    db.execute(
        f"CREATE TABLE {TABLE} (run INTEGER NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL,"
        " verdict TEXT NOT NULL, hold TEXT, PRIMARY KEY (run, file, line)) WITHOUT ROWID"
    )
    holds = open_holds(policy, on_ms)
    released = released_holds(policy, on_ms)
    if not holds and not released:
        return
    verdict = VERDICT_SQL.format(action="d.action", until="x.retain_until_ms")
    candidates = db.execute(
        "SELECT x.run, r.bag_path, x.file, x.line, x.line_sha256,"
        f" CASE WHEN {verdict} = 'hold' THEN d.rule END FROM {TABLE_NAME} x"
        " LEFT JOIN verdicts d ON d.id = x.verdict LEFT JOIN runs r ON r.sequence = x.run"
        f" WHERE {verdict} IN ({', '.join(map(repr, REJUDGED))})"
        f" OR ({verdict} = 'hold' AND d.rule IN (SELECT value FROM json_each(:released)))"
        f" OR ({verdict} IN ({', '.join(map(repr, UNAPPLIED))})"
        " AND x.run IN (SELECT value FROM json_each(:unapplied)))"
        " ORDER BY x.run, x.file, x.line",
        {"on": on_ms, "released": json.dumps(released), "unapplied": json.dumps(unapplied)},
    ).fetchall()
    scopes = ScopeSet([hold.scope for hold in holds])
    ends = {hold.id: hold.ends_ms for hold in policy.holds}
    retention = RetentionDecider(dataclasses.replace(policy, holds=()), on_ms)
    found: list[tuple[int, str, int, str, str | None]] = []
    for run, bag, file, line, digest, held_under in candidates:
        record, why = _read(out_dir, bag, file, line, digest)
        if record is None:
            outcome.not_checked(why)
            if why == "no-bag":
                name = PurePath(bag).name if bag else ""
                outcome.missing_bags[name] = outcome.missing_bags.get(name, 0) + 1
            found.append((run, file, line, "unchecked", None))
            continue
        outcome.read += 1
        mask = scopes.mask(facts_of(record))
        if mask:
            covering = [hold for bit, hold in enumerate(holds) if mask >> bit & 1]
            found.append((run, file, line, "hold", longest_hold(covering).id))
            outcome.held += 1
        elif held_under is not None and held_under in released:
            judged = after_release(retention, record, ends[held_under], on_ms)
            found.append((run, file, line, *judged))
            outcome.released += 1
    db.executemany(f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?, ?, ?, ?)", found)


def _read(
    out_dir: Path, bag: str | None, file: str, line: int, digest: str
) -> tuple[dict | None, str]:
    """The record a bag keeps verbatim at `file`:`line`, or None and why not
    (`due_holds.UNCHECKED_WHY`)."""
    folder = out_dir / PurePath(bag).name if bag else None
    if folder is None or not (folder / layout.RECORDS).is_dir():
        return None, "no-bag"
    files = {f"{layout.UNREADABLE}/{path.name}": path for path in unreadable_files(folder)}
    if file not in files:
        return None, "missing"
    raw = next((raw for _number, raw in lines_at(files[file], [line])), None)
    if raw is None:
        return None, "missing"
    record = record_of(raw)
    if record is None or hashlib.sha256(raw).hexdigest() != digest:
        return None, "changed"
    return record, ""
