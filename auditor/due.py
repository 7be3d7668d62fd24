"""`auditor due`: what the retention policy asks of the officer on a day, over a whole chain.

Each run judges the messages it archives at its reference time and writes what it decided into
the state's message index: when the message's retention ends, the rule (or hold) that decided
it, and what that rule says then (`delete`, `review`, `keep`, or `hold`). So the chain's answer
for any day is one query, not a re-read of every bag; each message is named with the bag that
holds it and its `seq` there (its line among the bag's records, from 0, and its Merkle leaf);
`auditor prove` takes the bag and the msg_id.

Holds are as the run that archived a message judged them, with every hold of its policy that had
not ended then, begun or not: a message a hold will cover is shown as held before the hold begins
(kept a little longer, which is safe), never as due for deletion once it has begun. A hold added
to the policy since a run applies to that run's messages only with `--policy CURRENT.yaml`
(`auditor.due_holds`), which reads each message `due` would list for deletion or review again
from its bag, and those of a run that did not apply one of its holds whose retention runs; so
does a hold that policy says has ended since, which a run judged open-ended: its messages would
otherwise be listed as held for ever. Without `--policy`, `due` cannot know a hold added since.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import islice
from json.encoder import encode_basestring
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, NamedTuple

from auditor import expected_head, state_verbatim
from auditor.partitions import format_instant
from auditor.records import LATEST_MS
from auditor.state_reading import check_whole, reading_state

if TYPE_CHECKING:
    from auditor.due_holds import Rejudged
    from auditor.policies.model import Policy

# Verdicts in the order they are listed; `kept` (retention still running) is only counted.
VERDICTS = ("delete", "review", "unchecked", "hold", "no-retention", "expired", "keep")
LISTED = ("delete", "review", "unchecked", "hold", "no-retention", "expired")
EXPLAINED = {
    "delete": "retention ended, the rule says delete: delete at the source, purge from the archive",
    "review": "retention ended, the rule says review: decide by hand",
    "unchecked": "due by the index, but its line in its bag could not be checked against the "
    "current policy's holds (policy_holds.unchecked_why says why): do not delete before "
    "checking it by hand",
    "hold": "under a legal hold (or one that begins later): do not delete",
    "no-retention": "no retention could be computed (no timestamp, or no rule applies): review",
    "expired": "retention ended; the rule is unknown (indexed by an earlier version): review",
    "keep": "retention ended, the rule says keep",
    "kept": "retention still running",
}


class DueMessage(NamedTuple):
    """One message to act on. `earlier_versions`: versions of the message (changed content)
    that earlier runs archived; the index holds each, `due` lists the newest (or a held one)
    once. A tuple, not a dataclass: a listing builds a million of them."""

    verdict: str
    msg_id: str
    retain_until: str | None
    rule: str | None
    run: int
    bag: str | None
    seq: int | None
    earlier_versions: int = 0
    kept_verbatim: str | None = None
    """`FILE:LINE` in its bag of a message with no RFC 8785 form, hence no leaf (`seq` None),
    which the bag keeps verbatim in `data/unreadable/` (`auditor.state_verbatim`)."""


@dataclass(frozen=True, slots=True)
class DueReport:
    """Counts per verdict, and the messages to act on as an iterator read from the state while
    `due` holds it open: a chain of millions of messages is listed without holding them all."""

    on: str
    counts: dict[str, int]
    messages: Iterator[DueMessage]
    rejudged: Rejudged | None = None

    def json_chunks(self) -> Iterator[str]:
        """The report as one JSON object, written a message at a time."""
        head_fields: dict = {
            "on": self.on,
            "counts": self.counts,
            "explained": {name: EXPLAINED[name] for name in self.counts},
        }
        if self.rejudged is not None:
            head_fields["policy_holds"] = asdict(self.rejudged)
        head = json.dumps(head_fields, indent=2, ensure_ascii=False)
        yield head[:-2] + ',\n  "messages": ['
        lines = map(_json_line, self.messages)
        separator = "\n    "
        while batch := list(islice(lines, _BATCH)):
            yield separator + ",\n    ".join(batch)
            separator = ",\n    "
        yield "\n  ]\n}\n"


_BATCH = 1_000
"""Messages per chunk written: one write each, not one per message."""
_JSON_LINE = "{" + ", ".join(f'"{name}": %s' for name in DueMessage._fields) + "}"
_NULL = "null"


def _json_line(message: DueMessage) -> str:
    """`json.dumps(message._asdict(), ensure_ascii=False)`, byte for byte, at a third of its
    cost: strings are escaped by the function `json.dumps` uses (the verdict, one of
    `VERDICTS`, needs none), ints written as their repr; a value of another type (a state
    edited by hand) goes through `json.dumps` itself."""
    verdict, msg_id, until, rule, run, bag, seq, earlier, verbatim = message
    if (
        type(msg_id) is str
        and (rule is None or type(rule) is str)
        and type(run) is int
        and (seq is None or type(seq) is int)
        and (verbatim is None or type(verbatim) is str)
    ):
        return (
            f'{{"verdict": "{verdict}", "msg_id": {encode_basestring(msg_id)}, "retain_until": '
            f"{_NULL if until is None else encode_basestring(until)}, "
            f'"rule": {_NULL if rule is None else encode_basestring(rule)}, "run": {run}, '
            f'"bag": {_NULL if bag is None else encode_basestring(bag)}, '
            f'"seq": {_NULL if seq is None else seq}, "earlier_versions": {earlier}, '
            f'"kept_verbatim": {_NULL if verbatim is None else encode_basestring(verbatim)}}}'
        )
    return _JSON_LINE % tuple(map(_json_value, message))


def _json_value(value: object) -> str:
    if value is None:
        return _NULL
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value, ensure_ascii=False)


class _Instants:
    """`format_instant` for the instants of a listing sorted by them: the date's text is made
    once a day, not once a message (`format_instant` costs about 8 us; a listing of a million
    messages spent seconds in it)."""

    def __init__(self) -> None:
        self._day: int | None = None
        self._date = ""

    def __call__(self, timestamp_ms: int) -> str:
        seconds, millis = divmod(timestamp_ms, 1000)
        day, second = divmod(seconds, 86_400)
        if day != self._day:
            self._date = format_instant(day * 86_400_000).removesuffix("00:00:00Z")
            self._day = day
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        text = f"{self._date}{hour:02d}:{minute:02d}:{second:02d}"
        return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def verdict_on(action: str | None, retain_until_ms: int | None, on_ms: int) -> str:
    """What is due for one indexed message at `on_ms` (`VERDICT_SQL` says the same in SQL)."""
    if action == "hold" and (retain_until_ms is None or retain_until_ms > on_ms):
        return "hold"
    if retain_until_ms is None:
        return "no-retention"
    if retain_until_ms > on_ms:
        return "kept"
    if action is None:
        return "expired"
    if action == "hold":  # the hold has ended; the rule under it is not in the index
        return "review"
    return action if action in ("delete", "review", "keep") else "review"


def judged_at(on_ms: int) -> int:
    """The instant a day is judged at: short of the calendar's last (`LATEST_MS - 1`, the
    policies' `LAST_INSTANT_MS`), where a retention past the year 9999 ends. That one never
    ends, so the last instant is judged as the one before it, where no other retention can end;
    the report still shows the instant asked for."""
    return min(on_ms, LATEST_MS - 2)


VERDICT_SQL = """CASE
 WHEN {action} = 'hold' AND ({until} IS NULL OR {until} > :on) THEN 'hold'
 WHEN {until} IS NULL THEN 'no-retention'
 WHEN {until} > :on THEN 'kept'
 WHEN {action} IS NULL THEN 'expired'
 WHEN {action} IN ('delete', 'review', 'keep') THEN {action}
 ELSE 'review' END"""


@contextmanager
def due(
    state_path: Path,
    on_ms: int,
    since_ms: int | None = None,
    policy: Policy | None = None,
    out_dir: Path | None = None,
    expect_head: str | None = None,
) -> Iterator[DueReport]:
    """The chain's messages by what is due at `on_ms`; with `since_ms`, only the retentions that
    ended after it are listed (what became due since the last look), holds always; with
    `policy` (and the chain's folder `out_dir`), the messages due for deletion or review that a
    hold of `policy` covers are listed as held (`auditor.due_holds`). SQLite counts and sorts
    (on disk past its cache), so memory stays flat however long the chain."""
    asked_ms, on_ms = on_ms, judged_at(on_ms)
    with reading_state(state_path) as db:
        check_whole(db, state_path)
        expected_head.check_state(db, expect_head, str(state_path))
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        action = "m.action" if "action" in columns else "NULL"
        rule = "m.rule" if "rule" in columns else "NULL"
        seq = "m.seq" if "seq" in columns else "NULL"
        verdict = VERDICT_SQL.format(action=action, until="m.retain_until_ms")
        params = {"on": on_ms, "since": since_ms}
        joined = "messages m"
        rejudged = None
        if policy is not None:
            # imported here: the bag reader and the policy loader are a daily `due`'s main cost
            from auditor import due_holds, due_memo

            bags_dir = out_dir or state_path.parent
            params["released"] = json.dumps(due_holds.released_holds(policy, on_ms))
            # the memo names messages by their seq, which an index of an earlier version lacks
            memo = due_memo.HoldsMemo.open(state_path) if policy.holds and seq != "NULL" else None
            unapplied = due_holds.runs_without(db, policy, on_ms, bags_dir, memo)
            remembered = due_holds.remembered_runs(db, memo, unapplied, policy, on_ms)
            kept = f"{verdict} IN ({', '.join(map(repr, due_holds.UNAPPLIED))})"
            params["unapplied"] = json.dumps([run for run in unapplied if run not in remembered])
            params["remembered"] = json.dumps(sorted(remembered))
            candidates = (
                f"SELECT r.bag_path, {seq}, m.msg_id, m.content_hash,"
                f" CASE WHEN {verdict} = 'hold' THEN {rule} END, m.first_run FROM messages m"
                " LEFT JOIN runs r ON r.sequence = m.first_run"
                f" WHERE {verdict} IN ({', '.join(map(repr, due_holds.REJUDGED))})"
                f" OR ({verdict} = 'hold' AND {rule} IN (SELECT value FROM json_each(:released)))"
                f" OR ({kept} AND m.first_run IN (SELECT value FROM json_each(:unapplied)))"
                f" ORDER BY r.bag_path, {seq}"
            )
            memo_rows = (
                f"FROM messages m WHERE {kept}"
                " AND m.first_run IN (SELECT value FROM json_each(:remembered))"
            )
            try:
                rejudged = due_holds.rejudge(
                    db, candidates, params, policy, bags_dir, on_ms,
                    due_holds.Learning(memo, unapplied, remembered, memo_rows),
                )  # fmt: skip
                if state_verbatim.any_in(db):
                    from auditor import due_verbatim

                    due_verbatim.rejudge(db, policy, bags_dir, on_ms, unapplied, rejudged)
            finally:
                if memo is not None:
                    memo.close()
            joined = (
                f"messages m LEFT JOIN {due_holds.TABLE} h"
                " ON h.msg_id = m.msg_id AND h.content_hash = m.content_hash"
            )
            verdict = f"coalesce(h.verdict, {verdict})"
            rule = f"coalesce(h.hold, {rule})"
        ranked = (
            f"SELECT {verdict} AS v, m.msg_id, m.retain_until_ms, {rule} AS rule, m.first_run,"
            f" {seq} AS seq, coalesce(n.count, 1) AS versions, NULL AS kept_verbatim"
            f" FROM {joined} {_newest_versions(db, columns)}"
        )
        if state_verbatim.any_in(db):  # else the query is as before: a union costs 7 %
            ranked += f" UNION ALL {_kept_verbatim(rejudged is not None)}"
        found = dict(db.execute(f"SELECT v, count(*) FROM ({ranked}) GROUP BY v", params))
        order = " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(LISTED))
        bags = {
            sequence: PurePath(path).name
            for sequence, path in db.execute("SELECT sequence, bag_path FROM runs")
            if path
        }
        instant = _Instants()
        rows = db.execute(
            "SELECT v, msg_id, retain_until_ms, rule, first_run, seq, versions, kept_verbatim"
            f" FROM ({ranked})"
            f" WHERE v IN ({', '.join(repr(name) for name in LISTED)})"
            " AND (:since IS NULL OR v IN ('hold', 'unchecked') OR retain_until_ms IS NULL"
            " OR retain_until_ms > :since)"
            f" ORDER BY CASE v {order} END, retain_until_ms, msg_id",
            params,
        )
        messages = (
            DueMessage(
                verdict_,
                msg_id,
                None if until is None else instant(until),
                rule_id or None,
                run,
                bags.get(run),
                seq_,
                versions - 1,
                verbatim,
            )
            for verdict_, msg_id, until, rule_id, run, seq_, versions, verbatim in rows
        )
        ordered = {name: found[name] for name in (*VERDICTS, "kept") if found.get(name)}
        yield DueReport(format_instant(asked_ms), ordered, messages, rejudged)


def _kept_verbatim(rejudged: bool) -> str:
    """The query of the messages kept verbatim (`state_verbatim`) as `due`'s listing takes
    them: each (msg_id, line's bytes) once, in the first run that kept it, with no seq and no
    earlier versions; with `rejudged`, as `due_verbatim` judged them against today's policy."""
    verdict = VERDICT_SQL.format(action="d.action", until="x.retain_until_ms")
    rule = "d.rule"
    joined = ""
    if rejudged:
        verdict, rule = f"coalesce(h.verdict, {verdict})", f"coalesce(h.hold, {rule})"
        joined = (
            f" LEFT JOIN {state_verbatim.REJUDGED} h"
            " ON h.run = x.run AND h.file = x.file AND h.line = x.line"
        )
    return (
        f"SELECT {verdict}, x.msg_id, x.retain_until_ms, {rule}, x.run, NULL, 1,"
        f" x.file || ':' || x.line FROM {state_verbatim.TABLE_NAME} x"
        f" LEFT JOIN verdicts d ON d.id = x.verdict{joined} WHERE NOT EXISTS (SELECT 1 FROM"
        f" {state_verbatim.TABLE_NAME} y WHERE y.msg_id = x.msg_id"
        " AND y.line_sha256 = x.line_sha256 AND y.run < x.run)"
    )


def _newest_versions(db: sqlite3.Connection, columns: set[str]) -> str:
    """The join and condition that keep, of a message the index holds in several versions, its
    newest (one its run held first; each of equals) and give every row `n.count`, its versions.

    The msg_ids held more than once are found first, in one read of the key's index, into a
    temporary table: a message is rarely changed at the source, so the table is small, and each
    row of the listing looks it up there. Looking each row up in the key's index instead took
    3.4 s of each query's 5.1 s at 1,000,000 messages (this: 0.6 s, once); a window over msg_id
    read the table in the key's order (28.6 s against 9.6 s)."""
    db.execute(
        "CREATE TABLE temp.msg_versions (msg_id TEXT PRIMARY KEY, count INTEGER NOT NULL)"
        " WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO temp.msg_versions SELECT msg_id, count(*) FROM messages GROUP BY msg_id"
        " HAVING count(*) > 1"
    )
    db.execute(
        "CREATE TABLE temp.newest_versions (msg_id TEXT NOT NULL, content_hash TEXT NOT NULL,"
        " PRIMARY KEY (msg_id, content_hash)) WITHOUT ROWID"
    )

    def key(row: str) -> str:
        action = f"{row}.action" if "action" in columns else "NULL"
        seq = f"{row}.seq" if "seq" in columns else "NULL"
        return f"(coalesce({action} = 'hold', 0), {row}.first_run, coalesce({seq}, -1))"

    db.execute(
        "INSERT INTO temp.newest_versions SELECT m.msg_id, m.content_hash FROM"
        " temp.msg_versions n CROSS JOIN messages m ON m.msg_id = n.msg_id WHERE NOT EXISTS"
        f" (SELECT 1 FROM messages x WHERE x.msg_id = m.msg_id AND {key('x')} > {key('m')})"
    )
    return (
        "LEFT JOIN temp.msg_versions n ON n.msg_id = m.msg_id WHERE n.msg_id IS NULL OR EXISTS"
        " (SELECT 1 FROM temp.newest_versions k WHERE k.msg_id = m.msg_id"
        " AND k.content_hash = m.content_hash)"
    )


def as_table(report: DueReport) -> Iterator[str]:
    """The report as lines for a terminal, a message at a time."""
    yield f"due on {report.on}:"
    for name, count in report.counts.items():
        yield f"  {name:<13} {count:>9,}  {EXPLAINED[name]}"
    header = (
        f"\n{'verdict':<13} {'msg_id':<24} {'retain until':<24} {'rule':<20} {'run':>5} "
        f"{'seq':>7} bag"
    )
    for message in report.messages:
        if header:
            yield header
            header = ""
        yield (
            f"{message.verdict:<13} {message.msg_id:<24} {message.retain_until or '-':<24} "
            f"{message.rule or '-':<20} {message.run:>5} "
            f"{'-' if message.seq is None else message.seq:>7} {message.bag or '-'}"
            + _kept_where(message.kept_verbatim)
            + (
                f" (+{message.earlier_versions} earlier version(s))"
                if message.earlier_versions
                else ""
            )
        )


def _kept_where(place: str | None) -> str:
    if place is None:
        return ""
    file, _colon, line = place.rpartition(":")
    return f" (kept verbatim: line {line} of {file}, no leaf)"


CSV_FIELDS = DueMessage._fields
