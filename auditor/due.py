"""`auditor due`: what the retention policy asks of the officer on a day, over a whole chain.

Each run judges the messages it archives at its reference time and writes what it decided into
the state's message index: when the message's retention ends, the rule (or hold) that decided
it, and what that rule says then (`delete`, `review`, `keep`, or `hold`). So the chain's answer
for any day is one query, not a re-read of every bag; each message is named with the bag that
holds it and its `seq` there (its line among the bag's records, from 0, and its Merkle leaf);
`auditor prove` takes the bag and the msg_id.

Holds are as the run that archived a message judged them: a hold added to the policy since then
applies to the messages of later runs only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath

from auditor.partitions import format_instant
from auditor.state_reading import reading_state

# Verdicts in the order they are listed; `kept` (retention still running) is only counted.
VERDICTS = ("delete", "review", "hold", "no-retention", "expired", "keep")
LISTED = ("delete", "review", "hold", "no-retention", "expired")
EXPLAINED = {
    "delete": "retention ended, the rule says delete: delete at the source, purge from the archive",
    "review": "retention ended, the rule says review: decide by hand",
    "hold": "under a legal hold: do not delete",
    "no-retention": "no retention could be computed (no timestamp, or no rule applies): review",
    "expired": "retention ended; the rule is unknown (indexed by an earlier version): review",
    "keep": "retention ended, the rule says keep",
    "kept": "retention still running",
}


@dataclass(frozen=True, slots=True)
class DueMessage:
    verdict: str
    msg_id: str
    retain_until: str | None
    rule: str | None
    run: int
    bag: str | None
    seq: int | None


@dataclass(frozen=True, slots=True)
class DueReport:
    on: str
    counts: dict[str, int]
    messages: list[DueMessage]

    def to_dict(self) -> dict:
        return {
            "on": self.on,
            "counts": self.counts,
            "explained": {name: EXPLAINED[name] for name in self.counts},
            "messages": [asdict(message) for message in self.messages],
        }


def verdict_on(action: str | None, retain_until_ms: int | None, on_ms: int) -> str:
    """What is due for one indexed message at `on_ms`."""
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


def due(state_path: Path, on_ms: int, since_ms: int | None = None) -> DueReport:
    """The chain's messages by what is due at `on_ms`; with `since_ms`, only the retentions that
    ended after it are listed (what became due since the last look), holds always."""
    counts: Counter[str] = Counter()
    listed: list[DueMessage] = []
    with reading_state(state_path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        action = "m.action" if "action" in columns else "NULL"
        rule = "m.rule" if "rule" in columns else "NULL"
        seq = "m.seq" if "seq" in columns else "NULL"
        rows = db.execute(
            f"SELECT m.msg_id, m.retain_until_ms, {action}, {rule}, m.first_run, r.bag_path,"
            f" {seq} FROM messages m LEFT JOIN runs r ON r.sequence = m.first_run"
            " ORDER BY m.retain_until_ms, m.msg_id"
        )
        for msg_id, until, act, rule_id, run, bag, seq_ in rows:
            verdict = verdict_on(act, until, on_ms)
            counts[verdict] += 1
            if verdict not in LISTED:
                continue
            if (
                since_ms is not None
                and verdict != "hold"
                and until is not None
                and until <= since_ms
            ):
                continue
            listed.append(
                DueMessage(
                    verdict,
                    msg_id,
                    format_instant(until) if until is not None else None,
                    rule_id or None,
                    run,
                    PurePath(bag).name if bag else None,
                    seq_,
                )
            )
    listed.sort(key=lambda message: LISTED.index(message.verdict))
    ordered = {name: counts[name] for name in (*VERDICTS, "kept") if counts[name]}
    return DueReport(format_instant(on_ms), ordered, listed)


def as_table(report: DueReport) -> list[str]:
    lines = [f"due on {report.on}:"]
    for name, count in report.counts.items():
        lines.append(f"  {name:<13} {count:>9,}  {EXPLAINED[name]}")
    if report.messages:
        lines.append("")
        lines.append(
            f"{'verdict':<13} {'msg_id':<24} {'retain until':<24} {'rule':<20} {'run':>5} "
            f"{'seq':>7} bag"
        )
        for message in report.messages:
            lines.append(
                f"{message.verdict:<13} {message.msg_id:<24} {message.retain_until or '-':<24} "
                f"{message.rule or '-':<20} {message.run:>5} "
                f"{'-' if message.seq is None else message.seq:>7} {message.bag or '-'}"
            )
    return lines


CSV_FIELDS = ("verdict", "msg_id", "retain_until", "rule", "run", "bag", "seq")
