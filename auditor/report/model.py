"""The streaming accumulator behind the report: counts, bounded table samples and a findings spool.

A run may hold a million records and tens of thousands of findings, so the builder keeps only
counters, the most severe `table_rows` findings of each table, and a temporary file of every
finding that the CSV and JSONL formats replay. Findings are linked to their record's sender and
day through the record in `details["record"]`, a window of recently seen records, or (when
findings arrive first, as when re-rendering from a bag) a list of findings still waiting for their
record; a finding about a message the bag does not hold is undated, unless it states its send
time and sender (`details["sent"]`, `details["sender"]`), as the per-message `archived-earlier`
findings of bags written before 2026-11-27 do.
"""

from __future__ import annotations

import heapq
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date
from pathlib import Path
from typing import Any

import orjson

from auditor.errors import InputError, os_reason
from auditor.findings import SEVERITIES, Finding, fail_threshold
from auditor.partitions import DAY_MS, HOUR_MS
from auditor.records import LATEST_MS, content_hash, sender, timestamp_ms
from auditor.report import charts
from auditor.report.catalogue import Phrase
from auditor.report.content import Report, Table
from auditor.report.counts import RecordCounts, zone_offset_ms
from auditor.report.display import local_time, summary_name, utc_time, zone_name
from auditor.report.facts import RecordFacts, record_facts
from auditor.report.forked import ForkedWrite
from auditor.report.formats import default_formats
from auditor.report.formats.interface import ReportFormat
from auditor.report.policy import PolicyView
from auditor.report.runinfo import RunInfo
from auditor.report.scratch import Spilling
from auditor.report.senders import SenderTally
from auditor.report.tables import TABLES, severity_rank, table_for
from auditor.report.waiting import WaitingFindings

DISPOSITIONS = ("keep", "dispose", "review", "hold")
RECENT_RECORDS = 4_096
DISTINCT = 100
# Findings placed after they were spooled whose places memory holds before they move to disk
LATE_IN_MEMORY = 100_000
OTHER = "(other)"
NO_SENDER = "(no sender)"
HOURLY_UP_TO = 7 * 24
# The most columns a chart over the window draws a day each; a longer window is drawn by month,
# then by year: a run over years stays readable, and a bag-info window edited to span millennia
# costs a report seconds, not a minute and gigabytes.
DAILY_UP_TO = 1_000
# The source findings of served data a run keeps verbatim in `data/unreadable/`, one a line, as
# `parse` findings are the lines `scan` and `validate` could not read
UNREADABLE_RULES = frozenset({"unreadable", "not-canonical-json"})
SEVERITY_SERIES = tuple((name, f"sev-{name}") for name in reversed(SEVERITIES))


def _plain(value: Any) -> Any:
    """orjson's fallback for what a finding's details may hold besides plain JSON values."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _without_record(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The finding without the record its details show, saying why: the record is in the bag."""
    details = finding.get("details")
    if not isinstance(details, Mapping) or "record" not in details:
        raise TypeError(f"finding cannot be written as JSON: {finding.get('message')!r}")
    shown = {key: value for key, value in details.items() if key != "record"}
    return {**finding, "details": shown | {"record": "(not shown: nested too deeply)"}}


def verdict_line(count: int, fail_on: str) -> str:
    """`FAIL: 12 findings at or above 'high'` or `PASS: no findings at or above 'medium'`."""
    if fail_on == "none":
        return "PASS: --fail-on none, findings never fail this run"
    if count:
        noun = "finding" if count == 1 else "findings"
        return f"FAIL: {count:,} {noun} at or above '{fail_on}'"
    return f"PASS: no findings at or above '{fail_on}'"


class ReportBuilder:
    """Observes one run's records, findings and retention verdicts; renders the report files.

    Feed it in any order: `observe_record` per archived record (with its partition label, which
    dates nothing: a record without a send time counts as such, in no hour and no day),
    `observe_finding` per finding (a `Finding` or its `to_dict()`), `observe_verdict` per record's
    retention verdict; only a record's schema findings come one after another, as a run emits
    them and its bag keeps them (`_count_schema_record`). Then `summary()` and
    `render(out_dir)`, as often as wanted.
    """

    def __init__(
        self, run_info: RunInfo, table_rows: int = 1_000, policy: PolicyView | None = None
    ) -> None:
        self._run_info = run_info
        self.policy = policy
        self.table_rows = table_rows
        self._tz = run_info.timezone()
        self._offset_ms = zone_offset_ms(self._tz)
        self._spool = tempfile.TemporaryFile(prefix="auditor-findings-")  # noqa: SIM115 (closed by close())
        # each spooled finding's place (its record's send time and sender) a line, in the same
        # order: `null` for one placed only later (`_late`) or never
        self._places = tempfile.TemporaryFile(prefix="auditor-places-")  # noqa: SIM115 (closed by close())
        self._late = _LatePlaces()
        self._sequence = 0
        # records
        self._records = 0
        self._types: Counter[str] = Counter()
        self._chats: Counter[str] = Counter()
        self._hours: Counter[int] = Counter()
        self._untimed = 0
        self._source_copies = 0
        # the send time, sender and (when given) record of the last 4,096 to 8,191 records by
        # msg_id, for findings that follow their record
        self._recent: dict[str, tuple[int | None, str | None, dict[str, Any] | None]] = {}
        self._older: dict[str, tuple[int | None, str | None, dict[str, Any] | None]] = {}
        # the last record observed with its line in the bag (`seq`): the findings about that
        # line that follow it are placed by it, whatever its msg_id
        self._last_line: tuple[int, int | None, str | None, dict[str, Any] | None] | None = None
        # findings
        self._findings = 0
        self._by_severity: Counter[str] = Counter()
        self._by_category: Counter[str] = Counter()
        self._by_rule: Counter[tuple[str, str, str]] = Counter()
        self._by_table: Counter[str] = Counter()
        self._samples: dict[str, list[tuple[int, int, Mapping[str, Any]]]] = {
            kind.key: [] for kind in TABLES
        }
        self._schema_records = 0  # records failing their schema (`_count_schema_record`)
        self._last_schema_record: str | tuple[str, int] | None = None
        self._parse_lines = 0
        # findings waiting for their record: (severity, number in the spool); `_any_waiting`
        # spares each record asking the tally
        self._waiting = WaitingFindings()
        self._any_waiting = False
        self._needs_record: dict[str | tuple[str, int], list[dict[str, Any]]] = {}
        self._finding_days: Counter[tuple[int, str]] = Counter()
        self._senders = SenderTally()
        self._untimed_findings = 0  # about a record without a send time
        self._unplaced = 0  # about no record this builder can find
        # verdicts
        self._verdicts: Counter[tuple[str, str]] = Counter()

    @property
    def run_info(self) -> RunInfo:
        return self._run_info

    @run_info.setter
    def run_info(self, run_info: RunInfo) -> None:
        """Takes facts known only at the end (Merkle root, tree size, attachments, fail-on).

        The time zone cannot change: records were already counted by hour in the old one.
        """
        if run_info.timezone() != self._tz:
            raise ValueError("a report's time zone cannot change once records were counted")
        self._run_info = run_info

    def failing(self) -> int:
        """How many findings are at or above the run's `fail_on` severity."""
        threshold = fail_threshold(self._run_info.fail_on)
        return sum(
            count for name, count in self._by_severity.items() if severity_rank(name) >= threshold
        )

    # -- observing --------------------------------------------------------------------------

    def observe_record(
        self, record: dict[str, Any], partition_label: str, seq: int | None = None
    ) -> None:
        """Counts one archived record; called once per record, so it stays cheap."""
        self.observe_facts(record_facts(record), partition_label, record, seq)

    def observe_facts(
        self,
        facts: RecordFacts | Sequence[Any],
        partition_label: str,
        record: dict[str, Any] | None = None,
        seq: int | None = None,
    ) -> None:
        """`observe_record` from the record's `RecordFacts`, read earlier (by a worker).

        Pass `record` too when findings about it may arrive without it (as when re-rendering from
        a bag): the schema table shows the record they concern; and its line in the bag (`seq`)
        when it may have no msg_id, by which its findings then wait.
        """
        key, sent, kind, chat, who = facts
        self._records += 1
        _bump(self._types, kind)
        _bump(self._chats, chat)
        if sent is None:
            self._untimed += 1
        else:
            self._hours[(sent + self._offset_ms) // HOUR_MS] += 1
        if type(seq) is int:
            self._last_line = (seq, sent, who, record)
        waits_for: str | tuple[str, int] | None = key if key is not None else _line_key(seq)
        if waits_for is None:
            return
        if self._any_waiting:
            self.place_waiting(waits_for, sent, who)
        if self._needs_record and record is not None:
            for shown in self._needs_record.pop(waits_for, ()):
                shown["details"]["record"] = record
        if key is None:
            return
        recent = self._recent
        recent[key] = (sent, who, record)
        if len(recent) >= RECENT_RECORDS:
            self._older, self._recent = recent, {}

    def observe_counts(self, counts: RecordCounts) -> None:
        """Counts the archived records of a partition at once, as a worker counted them.

        For a run's coordinator, which then names each record's send time and sender with its
        findings (`observe_finding`'s `place`) instead of calling `observe_facts` per record.
        """
        if counts.offset_ms != self._offset_ms:
            raise ValueError(
                f"records counted at offset {counts.offset_ms} ms for a report at {self._offset_ms}"
            )
        self._records += counts.records
        for mine, theirs in ((self._types, counts.types), (self._chats, counts.chats)):
            for name, count in theirs.items():
                _bump(mine, name, count)
        self._hours.update(counts.hours)
        self._untimed += counts.untimed

    def observe_source_copies(self, count: int) -> None:
        """Counts exact copies of records that the source served and the run dropped (each
        record is archived once): a partition's count, as its worker settled it."""
        self._source_copies += count

    def place_waiting(self, key: str | tuple[str, int], sent: int | None, who: str | None) -> None:
        """Dates the findings about msg_id `key` that came before its record (`observe_facts`
        does this for the records it is given)."""
        if self._any_waiting:
            for severity, number in self._waiting.pop(key):
                self._place(sent, who, severity)
                self._late.add(number, sent, who)
            self._any_waiting = bool(self._waiting)

    def observe_finding(
        self,
        finding: Mapping[str, Any] | Finding,
        place: tuple[int | None, str | None] | None = None,
        record: dict[str, Any] | None = None,
        line: bytes | None = None,
    ) -> None:
        """Counts, samples and spools one finding (`line`: its JSON, as the bag holds it, when
        the caller has it; spooled as it is). `place` is its record's send time and sender,
        when the caller knows them; otherwise they come from the record in `details` or
        `record`, from `details["sent"]` and `details["sender"]` (a finding about a message the
        bag does not hold says them), or from a record observed recently, or the finding waits
        for its record.

        `record` is the record a schema finding is about, as a run has it at hand: the schema
        table shows it, but it is not part of the finding, so the CSV and JSONL written from the
        spool are what `auditor report` writes from the bag, which never holds it there."""
        if isinstance(finding, Finding):
            finding = finding.to_dict()
        if line is None:
            try:
                line = orjson.dumps(finding, default=_plain, option=orjson.OPT_NON_STR_KEYS)
            except TypeError:  # a record shown with it, nested deeper than orjson writes (255)
                finding = _without_record(finding)
                line = orjson.dumps(finding, default=_plain, option=orjson.OPT_NON_STR_KEYS)
        self._spool.write(line + b"\n")
        number = self._sequence
        self._sequence += 1
        self._findings += 1
        category = _name(finding.get("category"))
        severity = _name(finding.get("severity"))
        rank = severity_rank(severity)
        self._by_severity[severity] += 1
        self._by_category[category] += 1
        self._by_rule[(category, _name(finding.get("rule")), severity)] += 1
        kind = table_for(category)
        self._by_table[kind.key] += 1
        details = finding.get("details")
        details = details if type(details) is dict or isinstance(details, Mapping) else {}
        if record is None:
            record = details.get("record")
            record = record if isinstance(record, dict) else None
        key = finding.get("msg_id")
        key = str(key) if key is not None else None
        # Findings wait for their record by msg_id; about a record without one, by its line.
        waits_for = key if key is not None else _line_key(finding.get("seq"))
        if category == "schema":
            self._count_schema_record(finding.get("seq"), key, record)
        elif category == "parse" or (
            category == "source" and finding.get("rule") in UNREADABLE_RULES
        ):
            self._parse_lines += 1
        found: tuple[int | None, str | None] | None = None
        last = self._last_line
        if place is not None:
            found = place
        elif record is not None:
            found = (timestamp_ms(record), sender(record))
        elif last is not None and last[0] == finding.get("seq"):
            # about the record just observed at its line (a bag's findings follow their record)
            _seq, sent, who, record = last
            found = (sent, who)
        elif "sent" in details:
            # about a message this bag does not hold (archived by an earlier run): the finding
            # names its send time and sender, which also place the findings waiting for it
            found = _stated_place(details)
            if key is not None:
                self.place_waiting(key, *found)
        elif waits_for is not None:
            seen = self._recent.get(key) or self._older.get(key) if key is not None else None
            if seen is None:
                self._waiting.add(waits_for, severity, number)
                self._any_waiting = True
            else:
                sent, who, record = seen
                found = (sent, who)
        else:
            self._unplaced += 1
        if found is None:
            self._places.write(b"null\n")
        else:
            self._place(*found, severity)
            self._places.write(_place_line(*found))
        if kind.key == "schema":
            self._sample_schema(rank, finding, details, waits_for, record)
        else:
            self._sample(kind.key, rank, finding)

    def _count_schema_record(
        self, seq: object, key: str | None, record: dict[str, Any] | None
    ) -> None:
        """Counts the record a schema finding is about, unless the schema finding before it was
        about the same record.

        A record is a line of the archive, known by its `seq` (every schema finding a run emits
        has one, and its bag keeps it), else by msg_id, else by the record shown; so two variants
        of one msg_id are two records, as in `records.total`. A run emits a record's findings
        one after another and a re-render reads them in that order, so the last record is all
        either remembers: a set of every one took ~180 B a record failing its schema (probe 16).
        A finding with none of the three is a record of its own.
        """
        identity: str | tuple[str, int] | None
        if type(seq) is int:
            identity = ("seq", seq)
        elif key is not None:
            identity = key
        elif record is not None:
            identity = "#" + content_hash(record)
        else:
            identity = None
        if identity is None or identity != self._last_schema_record:
            self._schema_records += 1
        self._last_schema_record = identity

    def observe_verdict(self, disposition: Any, rule: Any, count: int = 1) -> None:
        """Counts a record's retention verdict (keep, dispose, review or hold) and its rule; a
        bag's summary may name them by other values (`Any`: compiled, a `str` is checked)."""
        if type(disposition) is not str or type(rule) is not str:
            disposition, rule = _name(disposition), _name(rule)
        self._verdicts[(disposition, rule)] += count

    def _sample(self, table: str, rank: int, finding: Mapping[str, Any]) -> bool:
        """Keeps the `table_rows` most severe findings of a table, the earliest among equals."""
        heap = self._samples[table]
        entry = (rank, -self._sequence, finding)
        if len(heap) < self.table_rows:
            heapq.heappush(heap, entry)
        elif entry[:2] > heap[0][:2]:
            heapq.heapreplace(heap, entry)
        else:
            return False
        return True

    def _sample_schema(
        self,
        rank: int,
        finding: Mapping[str, Any],
        details: Mapping[str, Any],
        key: str | tuple[str, int] | None,
        record: dict[str, Any] | None,
    ) -> None:
        """Samples a schema finding given without its record, which the table shows: attached
        now when the record was seen, or when it arrives (as when rendering from a bag)."""
        shown = {**finding, "details": {**details, "record": record}}
        if self._sample("schema", rank, shown) and record is None and key is not None:
            self._needs_record.setdefault(key, []).append(shown)

    def _place(self, sent: int | None, who: str | None, severity: str) -> None:
        """Credits a finding to its record's day and sender for the charts."""
        if sent is None:
            self._untimed_findings += 1
            return
        self._finding_days[((sent + self._offset_ms) // DAY_MS, severity)] += 1
        self._senders.add(who or NO_SENDER, severity)

    # -- results -----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """What `summary.json` holds (see `schemas/summary.schema.json`), verdict included."""
        run = self.run_info
        failing = self.failing()
        by_severity = {name: self._by_severity.get(name, 0) for name in SEVERITIES}
        by_severity.update(self._by_severity)
        verdicts: Counter[str] = Counter()
        for (disposition, _rule), count in self._verdicts.items():
            verdicts[disposition] += count
        dispositions = {name: verdicts.get(name, 0) for name in DISPOSITIONS}
        dispositions.update(verdicts)
        rules = sorted(
            self._by_rule.items(), key=lambda item: (-severity_rank(item[0][2]), -item[1], item[0])
        )
        per_day: Counter[str] = Counter()
        for hour, count in self._hours_in_window().items():
            per_day[_day_label(hour // 24)] += count
        return {
            "report_version": 1,
            "generated_at": utc_time(run.generated_at),
            "tool_version": run.tool_version,
            "time_zone": zone_name(self._tz),
            "run": {
                "sequence": run.sequence,
                "since": utc_time(run.since_ms),
                "until": utc_time(run.until_ms),
                "since_ms": run.since_ms,
                "until_ms": run.until_ms,
                "hour_timezone": run.hour_timezone,
                "source": {key: str(value) for key, value in run.source.items()},
                "bag": run.bag_name,
                "archived_on": run.archived_on,
                **(
                    {}
                    if run.reference_ms is None
                    else {
                        "reference_time": utc_time(run.reference_ms),
                        "reference_ms": run.reference_ms,
                    }
                ),
                **(
                    {}
                    if run.fetched_again_ms is None
                    else {
                        "fetched_again": {
                            "since": utc_time(run.fetched_again_ms[0]),
                            "until": utc_time(run.fetched_again_ms[1]),
                        }
                    }
                ),
            },
            "archive": {
                "merkle_root": run.merkle_root,
                "tree_size": run.tree_size,
                "signing_key_fingerprint": run.key_fingerprint,
                "previous_tagmanifest_sha256": run.previous_tagmanifest_sha256,
                "first_run": run.first_run,
            },
            "policy": {
                "file": run.policy_file,
                "sha256": run.policy_sha256,
                **({"name": self.policy.name} if self.policy and not self.policy.problem else {}),
                "term_files": [
                    {"file": path, "sha256": digest}
                    for digest, _, path in (value.partition("  ") for value in run.term_files)
                ],
            },
            "records": {
                "total": self._records,
                "by_message_type": _named(self._types),
                "by_chat_type": _named(self._chats),
                "per_day": dict(sorted(per_day.items())),
                "outside_window": self._outside_window(),
                "in_hours_fetched_again": self._fetched_again(),
                "without_time": self._untimed,
                "source_copies_dropped": self._source_copies,
                "failing_schema": self._schema_records,
                "unparseable_lines": self._parse_lines,
            },
            "attachments": {
                "count": run.attachments,
                "skipped": run.attachments_skipped,
                "note": run.attachments_note,
            },
            "findings": {
                "total": self._findings,
                "by_severity": by_severity,
                "by_category": dict(self._by_category.most_common()),
                "by_table": {kind.key: self._by_table.get(kind.key, 0) for kind in TABLES},
                "by_rule": [
                    {"category": category, "rule": rule, "severity": severity, "count": count}
                    for (category, rule, severity), count in rules
                ],
                "per_day": self._findings_per_day(),
                "undated": self._untimed_findings + self._recordless(),
                "top_senders": [
                    {
                        "sender": summary_name(who),
                        "count": sum(counts.values()),
                        "by_severity": counts,
                    }
                    for who, counts in self._senders.top()
                ],
            },
            "retention": {
                "by_disposition": dispositions,
                "by_rule": [
                    {"disposition": disposition, "rule": rule, "count": count}
                    for (disposition, rule), count in sorted(
                        self._verdicts.items(), key=lambda item: (-item[1], item[0])
                    )
                ],
            },
            "holds": {
                "records": dispositions.get("hold", 0),
                "findings": self._by_category.get("hold", 0),
            },
            "verdict": {
                "fail_on": run.fail_on,
                "failed": failing > 0,
                "count": failing,
                "line": verdict_line(failing, run.fail_on),
            },
        }

    def snapshot(self) -> Report:
        """The report as the formats see it; the builder may keep observing afterwards."""
        self._spool.flush()
        tables = tuple(
            Table(
                kind,
                self._by_table.get(kind.key, 0),
                tuple(
                    kind.row(finding, self._tz)
                    for _rank, _order, finding in sorted(self._samples[kind.key], reverse=True)
                ),
            )
            for kind in TABLES
        )
        return Report(
            run=self.run_info,
            tz=self._tz,
            summary=self.summary(),
            tables=tables,
            charts=self._charts(),
            findings=self._replay,
            raw_findings=self._replay_raw,
            places=self._replay_places,
            policy=self.policy,
        )

    def render(
        self, out_dir: Path, formats: Sequence[ReportFormat] | None = None
    ) -> dict[str, Path]:
        """Writes each format's file into `out_dir`; returns them by file name."""
        with self.rendering(out_dir, formats) as rendered:
            return rendered()

    @contextmanager
    def rendering(
        self, out_dir: Path, formats: Sequence[ReportFormat] | None = None
    ) -> Iterator[Callable[[], dict[str, Path]]]:
        """Starts writing the report: the page (a `snapshot_only` format) in a forked child from
        now on, so the caller can start its own threads and work beside it. The callable given
        writes the other formats here, waits for the child and returns the files by name."""
        out_dir = Path(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(
                f"{out_dir}: cannot create the report folder ({os_reason(error)})"
            ) from None
        report = self.snapshot()
        formats = list(formats or default_formats())
        beside = next((each for each in formats if each.snapshot_only), None)
        forked = None
        if beside is not None and len(formats) > 1:
            forked = ForkedWrite.start(beside, report, out_dir)

        def written() -> dict[str, Path]:
            files = {
                each.filename: each.write_files(report, out_dir)
                for each in formats
                if forked is None or each is not forked.format
            }
            if forked is not None:
                files[forked.format.filename] = {forked.format.filename: forked.finish()}
            return {name: path for each in formats for name, path in files[each.filename].items()}

        try:
            yield written
        finally:
            if forked is not None:
                forked.abandon()

    def close(self) -> None:
        self._spool.close()
        self._places.close()
        self._late.close()
        self._senders.close()
        self._waiting.close()

    def __enter__(self) -> ReportBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _replay_raw(self) -> Iterator[bytes]:
        self._spool.flush()
        self._spool.seek(0)
        try:
            yield from self._spool
        finally:
            self._spool.seek(0, 2)

    def _replay(self) -> Iterator[dict[str, Any]]:
        for line in self._replay_raw():
            yield orjson.loads(line)

    def _replay_places(self) -> Iterator[tuple[int | None, str | None]]:
        """Each spooled finding's place, in the order `_replay` gives the findings: its
        record's send time and sender, (None, None) for a finding about no record found."""
        self._places.flush()
        self._places.seek(0)
        late = self._late.ordered()
        upcoming = next(late, None)
        try:
            for number, line in enumerate(self._places):
                found = orjson.loads(line)
                if found is not None:
                    yield found[0], found[1]
                    continue
                while upcoming is not None and upcoming[0] < number:
                    upcoming = next(late, None)
                if upcoming is not None and upcoming[0] == number:
                    yield upcoming[1], upcoming[2]
                else:
                    yield None, None
        finally:
            self._places.seek(0, 2)

    # -- charts ------------------------------------------------------------------------------

    def _recordless(self) -> int:
        """Findings about no record this builder saw: no msg_id or line to find it by, or a
        msg_id no record of this run has (e.g. a disappeared message)."""
        return self._unplaced + len(self._waiting)

    def _findings_per_day(self) -> dict[str, dict[str, int]]:
        """Findings by their record's send day (in the report's zone) and severity."""
        days: dict[str, dict[str, int]] = {}
        for (day, severity), count in sorted(self._finding_days.items()):
            days.setdefault(_day_label(day), {})[severity] = count
        return days

    def _window_days(self) -> range:
        run = self.run_info
        first = (run.since_ms + self._offset_ms) // DAY_MS
        last = (max(run.until_ms - 1, run.since_ms) + self._offset_ms) // DAY_MS
        return range(first, last + 1)

    def _window_hours(self) -> range:
        """The report hours the window spans: a run's window is whole hours, so a record is in
        the window exactly when the hour it was sent in is one of these."""
        run = self.run_info
        first = (run.since_ms + self._offset_ms) // HOUR_MS
        last = (max(run.until_ms - 1, run.since_ms) + self._offset_ms) // HOUR_MS
        return range(first, last + 1)

    def _hours_in_window(self) -> Counter[int]:
        hours = self._window_hours()
        return Counter({hour: count for hour, count in self._hours.items() if hour in hours})

    def _again_hours(self) -> range:
        """The report hours the run fetched a second time, before its window."""
        again = self.run_info.fetched_again_ms
        if again is None:
            return range(0)
        return range(
            (again[0] + self._offset_ms) // HOUR_MS, (again[1] + self._offset_ms) // HOUR_MS
        )

    def _fetched_again(self) -> int:
        """Records sent in the hours fetched a second time (records that reached the source
        late, and what later hours' files served of those hours)."""
        again = self._again_hours()
        return sum(count for hour, count in self._hours.items() if hour in again)

    def _outside_window(self) -> int:
        """Records sent before or after the window (by their send instant, not their day), and
        not in the hours fetched a second time."""
        hours, again = self._window_hours(), self._again_hours()
        return sum(
            count for hour, count in self._hours.items() if hour not in hours and hour not in again
        )

    def _charts(self) -> tuple[charts.Chart, ...]:
        zone = zone_name(self._tz)
        hours = self._window_hours()
        days = self._window_days()
        unit, label_of, labels = _columns(days.start, days.stop - 1)
        if len(hours) <= HOURLY_UP_TO:
            activity = [
                (_hour_label(hour), {"messages": self._hours.get(hour, 0)}) for hour in hours
            ]
            per = Phrase("hour")
        else:
            drawn: Counter[str] = Counter()
            for hour, count in self._hours_in_window().items():
                drawn[label_of(hour // 24)] += count
            activity = [(label, {"messages": drawn.get(label, 0)}) for label in labels]
            per = Phrase(unit)
        by_severity: dict[str, Counter[str]] = {label: Counter() for label in labels}
        for (day, severity), count in self._finding_days.items():
            if days.start <= day < days.stop:
                by_severity[label_of(day)][severity] += count
        found = [
            (label, {name: by_severity[label].get(name, 0) for name in SEVERITIES})
            for label in labels
        ]
        drawn_findings = sum(sum(values.values()) for _label, values in found)
        placed = sum(self._finding_days.values())
        in_window = sum(
            count for (day, _severity), count in self._finding_days.items() if day in days
        )
        senders = self._senders.top()
        return (
            charts.column_chart(
                "activity",
                Phrase("Messages per {per} ({zone})", per=per, zone=zone),
                activity,
                (("messages", "bar-messages"),),
                Phrase.joined(
                    Phrase(
                        "Archived messages per {per} of the window, by send time in {zone}.",
                        per=per,
                        zone=zone,
                    ),
                    _left_out(
                        "records",
                        self._records,
                        (
                            (self._untimed, "without a usable time"),
                            (self._fetched_again(), "sent in the hours fetched again, before it"),
                            (self._outside_window(), "sent outside the window"),
                        ),
                    ),
                ),
            ),
            charts.column_chart(
                "findings-per-day",
                Phrase("Findings per {unit} by severity ({zone})", unit=Phrase(unit), zone=zone),
                found,
                SEVERITY_SERIES,
                Phrase.joined(
                    Phrase(
                        "Findings by the send {unit} of the record they concern.", unit=Phrase(unit)
                    ),
                    _left_out(
                        "findings",
                        self._findings,
                        (
                            (self._untimed_findings, "about records without a usable time"),
                            (
                                self._recordless(),
                                "with no record in this run (e.g. disappeared messages)",
                            ),
                            (placed - in_window, "about records sent outside the window"),
                            (
                                in_window - drawn_findings,
                                "of a severity the chart has no colour for",
                            ),
                        ),
                    ),
                ),
            ),
            charts.bar_chart(
                "message-types",
                Phrase("Message types"),
                [(_said(name), {"messages": count}) for name, count in self._types.most_common(15)],
                (("messages", "bar-messages"),),
                Phrase(
                    "Archived records by the type of their first body (merged messages as combine)."
                ),
            ),
            charts.bar_chart(
                "chat-types",
                Phrase("Chat types"),
                [(_said(name), {"messages": count}) for name, count in self._chats.most_common(10)],
                (("messages", "bar-messages"),),
                Phrase("Archived records by chat type: one-to-one, group or chat room."),
            ),
            charts.bar_chart(
                "top-senders",
                Phrase("Top senders with findings"),
                [(_said(who), counts) for who, counts in senders],
                SEVERITY_SERIES,
                Phrase("The ten senders whose messages drew the most findings, by severity."),
            ),
        )


def _bump(counter: Counter[str], key: str, count: int = 1) -> None:
    """Counts `key`, or `(other)` once `DISTINCT` names are known: types come from the data."""
    if key in counter or len(counter) < DISTINCT:
        counter[key] += count
    else:
        counter[OTHER] += count


def _left_out(noun: str, total: int, parts: Sequence[tuple[int, str]]) -> Phrase:
    """What a chart's caption adds about what it does not draw: `Not drawn: 4 of 129 findings
    (4 about records without a usable time).`, or nothing when it draws everything."""
    missing = [(count, why) for count, why in parts if count]
    if not missing:
        return Phrase("")
    shown = [Phrase("{count:,} " + why, count=count) for count, why in missing]
    listed = shown[0]
    for each in shown[1:]:
        listed = Phrase("{first}, {then}", first=listed, then=each)
    return Phrase(
        "Not drawn: {count:,} of {total:,} " + noun + " ({shown}).",
        count=sum(c for c, _ in missing),
        total=total,
        shown=listed,
    )


def _said(name: str) -> str:
    """A name the report gives a bar (`(other)`, `(no sender)`) as a `Phrase` the page can
    translate; a name from the data as it is."""
    return Phrase(name) if name in (OTHER, NO_SENDER) else name


def _name(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _named(counts: Counter[str]) -> dict[str, int]:
    """Counts by name, most first, each name as `summary_name` gives it."""
    return {summary_name(name): count for name, count in counts.most_common()}


def _hour_label(hour: int) -> str:
    return local_time(hour * HOUR_MS, UTC, seconds=False)[5:16]


def _day_label(day: int) -> str:
    return local_time(day * DAY_MS, UTC, seconds=False)[:10]


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _columns(first: int, last: int) -> tuple[str, Callable[[int], str], list[str]]:
    """How a chart draws days `first` to `last` (day numbers since the epoch): its unit (day,
    month or year, the first that needs at most `DAILY_UP_TO` columns), the label of the column
    a day falls in, and every column's label in order."""
    if last - first < DAILY_UP_TO:
        return "day", _day_label, [_day_label(day) for day in range(first, last + 1)]
    start = date.fromordinal(_EPOCH_ORDINAL + first)
    end = date.fromordinal(_EPOCH_ORDINAL + last)
    months = range(start.year * 12 + start.month - 1, end.year * 12 + end.month)
    if len(months) <= DAILY_UP_TO:

        def month_of(day: int) -> str:
            moment = date.fromordinal(_EPOCH_ORDINAL + day)
            return f"{moment.year:04d}-{moment.month:02d}"

        return "month", month_of, [f"{month // 12:04d}-{month % 12 + 1:02d}" for month in months]

    def year_of(day: int) -> str:
        return f"{date.fromordinal(_EPOCH_ORDINAL + day).year:04d}"

    return "year", year_of, [f"{year:04d}" for year in range(start.year, end.year + 1)]


def _place_line(sent: Any, who: Any) -> bytes:
    """A finding's place as a line of the places spool: `[sent, sender]`."""
    return orjson.dumps([sent if type(sent) is int else None, _sender_text(who)]) + b"\n"


def _sender_text(who: Any) -> str | None:
    """A sender as the CSV can write it: UTF-8 text (a lone surrogate replaced), or None."""
    if who is None:
        return None
    who = who if type(who) is str else str(who)
    try:
        who.encode()
    except UnicodeEncodeError:
        return who.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return who


class _LatePlaces(Spilling):
    """The places of findings that waited for their record, by the finding's number in the
    spool: in memory, past `LATE_IN_MEMORY` of them in a private temporary SQLite database on
    disk (deleted when closed), as a bag's findings may all come before their records."""

    def __init__(self, in_memory: int | None = None) -> None:
        self._found: list[tuple[int, int | None, str | None]] = []
        self._in_memory = LATE_IN_MEMORY if in_memory is None else in_memory

    def add(self, number: int, sent: Any, who: Any) -> None:
        self._found.append((number, sent if type(sent) is int else None, _sender_text(who)))
        if len(self._found) >= self._in_memory:
            self._spill()

    def ordered(self) -> Iterator[tuple[int, int | None, str | None]]:
        """Every place found late, by the finding's number."""
        if self._disk is None:
            return iter(sorted(self._found))
        self._spill()
        return iter(self._disk.execute("SELECT number, sent, who FROM late ORDER BY number"))

    def _spill(self) -> None:
        disk = self._scratch(
            "CREATE TABLE late (number INTEGER PRIMARY KEY, sent INTEGER, who TEXT)"
        )
        with disk:
            disk.executemany("INSERT INTO late VALUES (?, ?, ?)", self._found)
        self._found = []


def _stated_place(details: Mapping[str, Any]) -> tuple[int | None, str | None]:
    """The send time and sender a finding states in `details` (`sent`, `sender`); None for
    what is absent or not a usable value."""
    sent, who = details.get("sent"), details.get("sender")
    return (
        sent if type(sent) is int and 0 <= sent < LATEST_MS else None,
        who if type(who) is str else None,
    )


def _line_key(seq: object) -> tuple[str, int] | None:
    """What a finding about a record without msg_id waits by: the record's line in the bag."""
    return ("seq", seq) if type(seq) is int else None
