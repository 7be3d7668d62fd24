"""`auditor due --policy CURRENT.yaml`: today's legal holds applied to what `due` would have the
officer delete or review.

The message index holds each message as the run that archived it judged it, so a hold added to
the policy after that run is not in it. Every message `due` would list as `delete`, `review`,
`expired` or `no-retention` is read again from its bag, by its bag and `seq` (its line among the
bag's records), and so is each message of a run that did not apply one of the policy's holds
whose retention still runs (`runs_without`: a hold added since covers it now, not once its
retention has ended: 36 in probe months25); what that reading learns is kept in `due_memo`, so
the next call takes those messages from there instead of reading the bag again. Each is judged
against the holds of the current policy that have not ended on the day asked about (begun or
not: a message shown as held before its hold begins is only kept a little longer). Those a hold
covers are listed as `hold`, named after it. A message the index holds under a hold that the
current policy says has ended by then (legal released it by setting its `ends:` after the run,
when the run had it open-ended) is read again too: held by another hold of the policy, it stays
`hold`; else the policy's retention rules judge it (the index holds only the hold, not the rule
under it), and it is due as they say once both its retention and the released hold have ended
(`delete`, `review` or `keep`, named after the rule), or not listed while its retention runs.
Without this, a released hold's messages were listed as `hold` for ever (probe months25 #1).
Those whose line could not be checked (the bag's line is not the message the index names, it has
no such line, or its bag is not in the folder) are listed as `unchecked`, never with the verdict
the index gave: an officer who feeds the list of deletions to a script would otherwise delete a
message a hold may cover.

The candidates come sorted by bag and seq from SQLite (sorted on disk past its cache), each bag's
record files are read once, line by line, and what the holds cover goes to a temporary table of
the same connection: memory stays flat however many messages are due.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from heapq import heappop, heappush
from itertools import groupby
from pathlib import Path, PurePath

from auditor.archive import layout
from auditor.archive.baginfo import check_format, parse_bag_info
from auditor.archive.lines import record_bytes
from auditor.archive.record_line import parse_record_line
from auditor.archive.untrusted import TAG_FILE_LIMIT, read_bag_file, record_files, shown
from auditor.due_memo import Coverage, HoldsMemo, bag_key, scope_key
from auditor.errors import ConfigError, InputError
from auditor.partitions import parse_instant
from auditor.policies.in_bag import load_bag_policy
from auditor.policies.model import Hold, Policy
from auditor.policies.reading import facts_of
from auditor.policies.retention import RetentionDecider, longest_hold
from auditor.policies.scope import ScopeSet
from auditor.records import msg_id
from auditor.sources.settle import content_sha256, entity_fields_of

TABLE = "temp.rejudged"
"""`(msg_id, content_hash, verdict, hold)`: the candidates a hold of the current policy covers
(`hold`, and its id), and those that could not be checked (`unchecked`, no hold)."""
REJUDGED = ("delete", "review", "expired", "no-retention")
"""The index's verdicts read again; also `hold`, when its hold is one of `released_holds`, and
`kept` and `keep` of the runs `runs_without` names."""
UNAPPLIED = ("kept", "keep")
"""The index's verdicts read again only for a run that did not apply every hold of the policy."""
_BATCH = 10_000


UNCHECKED_WHY = {
    "no-seq": "indexed without its line (by an earlier version): rebuild the state from the bags",
    "changed": "its line is not the message indexed (its msg_id or content hash differs): the "
    "bag was changed since its run (auditor verify-chain OUT)",
    "missing": "its bag has no such line (cut short since its run: auditor verify-chain OUT)",
    "no-bag": "its bag is not in the folder of bags (moved or deleted since its run: restore it, "
    "or give the folder that holds it with --out)",
}
"""Why a candidate could not be checked, by the name `policy_holds.unchecked_why` counts it."""


def open_holds(policy: Policy, on_ms: int) -> tuple[Hold, ...]:
    """The policy's holds not ended by `on_ms`, begun or not."""
    return tuple(hold for hold in policy.holds if hold.ends_ms is None or hold.ends_ms > on_ms)


def runs_without(
    db: sqlite3.Connection,
    policy: Policy,
    on_ms: int,
    out_dir: Path,
    memo: HoldsMemo | None = None,
) -> list[int]:
    """The runs that did not apply one of the policy's holds open on `on_ms`: their policy (the
    bag's `data/policy.yaml`) had no hold of the same scope not ended at their reference time.

    A run indexes what each hold of its policy covers as held, so the messages of the other
    runs need no reading while their retention runs: they are due for deletion only once it
    ends, and read again then. A run whose bag, or its policy, cannot be read is named too (an
    older bag kept no policy), and its bag is then asked for its lines as any other. What a
    bag's policy applied is a fact of the bag: `memo` keeps it, so each distinct policy (with
    term files, seconds each) is loaded by the first call only."""
    holds = {scope_key(hold.scope) for hold in open_holds(policy, on_ms)}
    if not holds:
        return []
    keys = bag_keys(db)
    loaded: dict[tuple, Policy | None] = {}
    unapplied = []
    for sequence, bag in db.execute(
        "SELECT sequence, bag_path FROM runs WHERE status = 'completed' ORDER BY sequence"
    ):
        key = keys.get(sequence)
        applied = memo.applied(key) if memo is not None and key else None
        if applied is None:
            applied = _applied(out_dir, bag, loaded)
            if applied is not None and memo is not None and key:
                memo.remember_applied(key, applied)
        if applied is None or holds - applied:
            unapplied.append(sequence)
    return unapplied


def _applied(out_dir: Path, bag: str | None, loaded: dict[tuple, Policy | None]) -> set[str] | None:
    """The scopes (`scope_key`) of the holds a bag's policy had open at its reference time;
    None when its bag-info or policy cannot be read. `loaded` keeps each policy loaded."""
    folder = out_dir / PurePath(bag).name if bag else None
    raw = read_bag_file(folder / layout.BAG_INFO, TAG_FILE_LIMIT) if folder else None
    info = parse_bag_info(raw, "")[0] if raw else {}
    named = _policy_named(info)
    if named not in loaded:
        loaded[named] = _bag_policy(folder, info)
    run_policy = loaded[named]
    try:
        reference = parse_instant(info["Policy-Reference-Time"])
    except (KeyError, ConfigError):
        return None
    if run_policy is None:
        return None
    return {scope_key(hold.scope) for hold in open_holds(run_policy, reference)}


def _policy_named(info: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The bag-info labels that name the run's policy (its digest and its term files'): one
    policy is loaded for each distinct set, not one a bag."""
    return tuple(
        sorted(
            (label, value)
            for label, value in info.items()
            if label == "Policy-SHA256" or label.startswith(layout.POLICY_TERM_FILE)
        )
    )


def _bag_policy(folder: Path | None, info: dict[str, str]) -> Policy | None:
    """The policy a bag's run applied, None when the bag holds none that can be read."""
    if folder is None:
        return None
    try:
        return load_bag_policy(folder, info, matchers=False)
    except (ConfigError, InputError, OSError):
        return None


def released_holds(policy: Policy, on_ms: int) -> list[str]:
    """The ids of the policy's holds that have ended by `on_ms`: a message the index holds under
    one of them is held no longer unless another hold covers it."""
    return [hold.id for hold in policy.holds if hold.ends_ms is not None and hold.ends_ms <= on_ms]


@dataclass(slots=True)
class Rejudged:
    """What re-judging found: candidates read, those now held, those whose hold was released
    since (judged by the policy's retention rules), and those that could not be checked, in all
    and by why (`UNCHECKED_WHY`)."""

    read: int = 0
    remembered: int = 0
    """Kept or keep messages judged by what an earlier `due` learnt of their bags, not read."""
    held: int = 0
    released: int = 0
    unchecked: int = 0
    unchecked_why: dict[str, int] = field(default_factory=dict)
    missing_bags: dict[str, int] = field(default_factory=dict)
    """The bags not found, each with how many of its messages were listed as `unchecked`."""

    def not_checked(self, why: str) -> None:
        self.unchecked += 1
        self.unchecked_why[why] = self.unchecked_why.get(why, 0) + 1


def remembered_runs(
    db: sqlite3.Connection, memo: HoldsMemo | None, unapplied: list[int], policy: Policy, on_ms: int
) -> dict[int, str]:
    """Of the runs `unapplied`, those whose every message the memo judged against the scope of
    each hold of `policy` open on `on_ms`, by their bag's key."""
    scopes = [scope_key(hold.scope) for hold in open_holds(policy, on_ms)]
    if memo is None or not unapplied:
        return {}
    keys = bag_keys(db)
    known = memo.checked((keys[run] for run in unapplied if keys.get(run)), scopes)
    return {run: keys[run] for run in unapplied if keys.get(run) in known}


def bag_keys(db: sqlite3.Connection) -> dict[int, str]:
    """Each completed run's bag as `due_memo` knows it."""
    return {
        sequence: key
        for sequence, tagmanifest in db.execute(
            "SELECT sequence, tagmanifest_sha256 FROM runs WHERE status = 'completed'"
        )
        if (key := bag_key(sequence, tagmanifest))
    }


@dataclass(frozen=True, slots=True)
class Learning:
    """What `rejudge` takes from the memo and teaches it: `remembered`, the runs of `unapplied`
    whose kept and keep messages (`rows`, a query's FROM and WHERE over `messages m`) the memo
    answers by their bag's key; the other runs of `unapplied` are read, and learnt."""

    memo: HoldsMemo | None = None
    unapplied: list[int] = field(default_factory=list)
    remembered: dict[int, str] = field(default_factory=dict)
    rows: str = ""


def rejudge(
    db: sqlite3.Connection,
    candidates: str,
    params: dict,
    policy: Policy,
    out_dir: Path,
    on_ms: int,
    learning: Learning | None = None,
) -> Rejudged:
    """Fills `TABLE` with the candidates that a hold of `policy` not ended at `on_ms` covers,
    and those that could not be checked against its holds.

        `candidates` is a query of `(bag, seq, msg_id, content_hash, released hold, run)` sorted
        by bag and seq, the released hold None but for a message the index holds under a
        released hold. The kept and keep messages of the runs the memo answers are not among
        them: SQLite counts them, and only those the memo says a scope covers are looked up
        (`_remembered`). What is learnt of the runs read is kept in the memo (not of a run with
        a line that could not be checked).
        A bag not in `out_dir` makes its candidates `unchecked` (`Rejudged.missing_bags` names
        it): the rest of the chain is still answered. Raises `InputError` (exit 2) when no bag
        of the chain is there: `out_dir` is the wrong folder, not a folder missing a bag."""
    db.execute(
        f"CREATE TABLE {TABLE} (msg_id TEXT NOT NULL, content_hash TEXT NOT NULL, verdict TEXT"
        " NOT NULL, hold TEXT, PRIMARY KEY (msg_id, content_hash)) WITHOUT ROWID"
    )
    holds = open_holds(policy, on_ms)
    outcome = Rejudged()
    if not holds and not released_holds(policy, on_ms):
        return outcome
    _check_bags_there(db, out_dir)
    scopes = ScopeSet([hold.scope for hold in holds])
    keys = [scope_key(hold.scope) for hold in holds]
    ends = {hold.id: hold.ends_ms for hold in policy.holds}
    retention = RetentionDecider(dataclasses.replace(policy, holds=()), on_ms)
    found: list[tuple[str, str, str, str | None]] = []
    learning = learning or Learning()
    memo = learning.memo
    learnt = (
        {run for run in learning.unapplied if run not in learning.remembered} if memo else set()
    )
    coverage = Coverage(keys)
    spoiled: set[int] = set()
    if memo is not None and learning.remembered:
        _remembered(db, learning, params, holds, keys, outcome)

    rows = db.execute(candidates, params)
    for bag, wanted in groupby(rows, key=lambda row: row[0]):
        for row, record, why in _records(out_dir, bag, wanted):
            identity, content_hash, released, run = row[2], row[3], row[4], row[5]
            if record is None:
                outcome.not_checked(why)
                spoiled.add(run)
                if why == "no-bag":
                    name = PurePath(bag).name if bag else ""
                    outcome.missing_bags[name] = outcome.missing_bags.get(name, 0) + 1
                found.append((identity, content_hash, "unchecked", None))
                continue
            outcome.read += 1
            mask = scopes.mask(facts_of(record))
            if run in learnt:
                coverage.see(run, row[1], mask)
            if mask:
                covering = [hold for bit, hold in enumerate(holds) if mask >> bit & 1]
                found.append((identity, content_hash, "hold", longest_hold(covering).id))
                outcome.held += 1
            elif released is not None:
                found.append(
                    (
                        identity,
                        content_hash,
                        *after_release(retention, record, ends[released], on_ms),
                    )
                )
                outcome.released += 1
            if len(found) >= _BATCH:
                _store(db, found)
    _store(db, found)
    if memo is not None and learnt:
        runs = bag_keys(db)
        for run in learnt:
            if run not in spoiled and run in runs:
                memo.remember(runs[run], coverage.of(run))
    return outcome


def _remembered(
    db: sqlite3.Connection,
    learning: Learning,
    params: dict,
    holds: tuple[Hold, ...],
    keys: list[str],
    outcome: Rejudged,
) -> None:
    """Judges the kept and keep messages of the runs the memo answers: counted by SQLite, and
    those a scope covers found and written to `TABLE` by it too, by their seq in `_segments`
    (a temporary table of the same connection): one statement and one lookup a message,
    however many holds are open and whatever share of the chain they cover."""
    memo = learning.memo
    if memo is None:
        return
    outcome.remembered = db.execute(f"SELECT count(*) {learning.rows}", params).fetchone()[0]
    order = _by_longest(holds)
    rank_of: dict[str, int] = {}
    for rank, bit in enumerate(order):
        rank_of.setdefault(keys[bit], rank)
    db.execute(
        "CREATE TABLE temp.memo_segments (run INTEGER NOT NULL, first INTEGER NOT NULL,"
        " last INTEGER NOT NULL, rank INTEGER NOT NULL, PRIMARY KEY (run, first)) WITHOUT ROWID"
    )
    db.execute("CREATE TABLE temp.memo_holds (rank INTEGER PRIMARY KEY, hold TEXT NOT NULL)")
    db.executemany(
        "INSERT INTO temp.memo_holds VALUES (?, ?)",
        ((rank, holds[bit].id) for rank, bit in enumerate(order)),
    )
    for run, key in learning.remembered.items():
        db.executemany(
            "INSERT INTO temp.memo_segments VALUES (?, ?, ?, ?)",
            ((run, *segment) for segment in _segments(memo.ranges_of(key), rank_of)),
        )
    outcome.held += db.execute(
        f"INSERT INTO {TABLE} SELECT c.msg_id, c.content_hash, 'hold', h.hold FROM"
        " (SELECT m.msg_id, m.content_hash, (SELECT CASE WHEN s.last >= m.seq THEN s.rank END"
        " FROM temp.memo_segments s WHERE s.run = m.first_run AND s.first <= m.seq"
        f" ORDER BY s.first DESC LIMIT 1) AS rank {learning.rows}) c"
        " JOIN temp.memo_holds h ON h.rank = c.rank",
        params,
    ).rowcount


def _segments(
    ranges: Iterable[tuple[str, int, int]], rank_of: dict[str, int]
) -> Iterator[tuple[int, int, int]]:
    """`(first, last, rank)`: the seqs of one bag that the memo's `(scope, first, last)` ranges
    cover, cut where the covering scopes change into segments that do not overlap, each with
    the smallest rank (in `_by_longest` order) of the open holds of a scope covering it.

    A message then takes its hold from the one segment it falls in: with a lookup for each
    hold, as before, the cost grew with the holds open, and their bits had to fit an SQLite
    integer (62 holds at most, past which the bags were read every day)."""
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for scope, first, last in ranges:
        rank = rank_of.get(scope)
        if rank is not None:
            starts.setdefault(first, []).append(rank)
            ends.setdefault(last + 1, []).append(rank)
    active: dict[int, int] = {}
    heap: list[int] = []
    current: tuple[int, int] | None = None  # (first, rank) of the segment not yet ended
    for point in sorted(starts.keys() | ends.keys()):  # the last point ends every range
        for rank in ends.get(point, ()):
            active[rank] -= 1
        for rank in starts.get(point, ()):
            if not active.get(rank):
                heappush(heap, rank)
            active[rank] = active.get(rank, 0) + 1
        while heap and not active.get(heap[0]):
            heappop(heap)
        best = heap[0] if heap else None
        if current is not None and current[1] != best:
            yield current[0], point - 1, current[1]
            current = None
        if current is None and best is not None:
            current = (point, best)


def _by_longest(holds: tuple[Hold, ...]) -> list[int]:
    """The bits of `holds`, the one `longest_hold` names first: the first of them a message's
    mask sets names the hold it is listed under."""
    left = list(range(len(holds)))
    order = []
    while left:
        best = longest_hold([holds[bit] for bit in left])
        order.append(next(bit for bit in left if holds[bit] is best))
        left.remove(order[-1])
    return order


_ACTIONS = {"dispose": "delete", "review": "review", "keep": "keep"}


def after_release(
    retention: RetentionDecider, record: dict, hold_end_ms: int | None, on_ms: int
) -> tuple[str, str | None]:
    """`(verdict, rule)` on `on_ms` of a record no hold covers any longer: as the retention
    rules say, once both its retention and the released hold have ended."""
    until, verdict = retention.decide(record)
    if until is None:
        return "no-retention", verdict.winning_rule or None
    if until > on_ms or (hold_end_ms is not None and hold_end_ms > on_ms):
        return "kept", verdict.winning_rule
    return _ACTIONS.get(verdict.disposition, "review"), verdict.winning_rule


def _check_bags_there(db: sqlite3.Connection, out_dir: Path) -> None:
    """Refuses a folder holding none of the chain's bags: every message read again would be
    `unchecked`, which says nothing but that the folder is not the chain's."""
    names = [
        PurePath(path).name
        for (path,) in db.execute(
            "SELECT bag_path FROM runs WHERE status = 'completed' AND bag_path IS NOT NULL"
        )
    ]
    if names and not any((out_dir / name / layout.RECORDS).is_dir() for name in names):
        raise InputError(
            f"{out_dir}: none of the chain's bags is there (such as {shown(names[-1])}), whose "
            "messages `due --policy` must read to apply today's holds; give the chain's folder "
            "with --out, or the runs' config with --config"
        )


def _store(db: sqlite3.Connection, found: list[tuple[str, str, str, str | None]]) -> None:
    db.executemany(f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?, ?, ?)", found)
    found.clear()


def _records(
    out_dir: Path, bag: str | None, wanted: Iterator[tuple]
) -> Iterator[tuple[tuple, dict | None, str]]:
    """`(row, record, "")` of the wanted `(bag, seq, msg_id, content_hash, ...)` rows of one
    bag (sorted by seq, those without one first), read from its record files in order (its
    lines are its seqs from 0); `(row, None, why)` for each whose line could not be checked
    (`UNCHECKED_WHY`), every row of a bag not in `out_dir` among them."""
    folder = out_dir / PurePath(bag).name if bag else None
    if folder is None or not (folder / layout.RECORDS).is_dir():
        for row in wanted:
            yield row, None, "no-bag"
        return
    info, _ = parse_bag_info(read_bag_file(folder / layout.BAG_INFO, TAG_FILE_LIMIT) or b"", "")
    check_format(info, shown(folder), "read")
    entity_fields = entity_fields_of(info)
    row = next(wanted, None)
    while row is not None and row[1] is None:
        yield row, None, "no-seq"
        row = next(wanted, None)
    line_seq = 0
    for path in record_files(folder):
        with path.open("rb") as lines:
            for line in lines:
                if row is None:
                    return
                if row[1] == line_seq:
                    line = line.rstrip(b"\n")
                    value, problem = parse_record_line(line)
                    record = value.get("record") if value and problem is None else None
                    if (
                        isinstance(record, dict)
                        and value is not None
                        and value["seq"] == line_seq
                        and msg_id(record) == row[2]
                        and content_sha256(record, record_bytes(line), entity_fields) == row[3]
                    ):
                        yield row, record, ""
                    else:
                        yield row, None, "changed"
                    row = next(wanted, None)
                line_seq += 1
    while row is not None:  # seqs past the bag's lines
        yield row, None, "missing"
        row = next(wanted, None)
