"""`findings.csv`: every finding as a spreadsheet row, UTF-8 with a BOM so Excel reads Chinese.

The CSV is written for spreadsheets; programs read `findings.jsonl`, which holds the exact values.
Its cells and lines are made by `auditor.report.cells`: msg_ids and numbers kept as text, never
run as a formula.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from auditor.report.cells import CELL_CHARS, CHECKED_START, LOOKED_AT, MONTH_STARTS, csv_line
from auditor.report.cells import spreadsheet_cell as _cell
from auditor.report.content import Report
from auditor.report.display import utc_time
from auditor.report.formats.interface import ReportFormat, write_whole
from auditor.report.tables import listed_term

COLUMNS = (
    "msg_id",
    "sent_at",
    "sender",
    "category",
    "rule",
    "severity",
    "message",
    "pointer",
    "list_or_detector",
    "term",
    "matched",
    "start",
    "end",
    "normalizations",
    "confidence",
    "disposition",
    "retain_until",
    "reason",
    "schema_keyword",
    "body_type",
    "file",
    "line",
    "details",
)
_FLUSH_ROWS = 1_000
# Rows a sheet holds in Excel (and LibreOffice): one for the header, the rest for findings.
SHEET_ROWS = 1_048_576
ROWS_PER_FILE = SHEET_ROWS - 1


def sent_at(timestamp_ms: int | None, tz: timezone) -> str:
    """A record's send time in the report's zone, ISO 8601 with its offset:
    `2026-11-01T08:00:00+08:00` (`.123` with milliseconds); in UTC past what the zone shows."""
    return SendTimes(tz)(timestamp_ms)


class SendTimes:
    """`sent_at` in one fixed-offset zone, a row each: the text up to the minute is worked out
    once a minute of the records' (the datetime way took 5 us a row, the larger part of writing
    a row; a record's findings and its neighbours' share their minute)."""

    # the local seconds of 0001-01-01T00:00:00 and of 10000-01-01T00:00:00
    _FIRST = -62_135_596_800
    _END = 253_402_300_800

    def __init__(self, tz: timezone) -> None:
        offset = tz.utcoffset(None)
        self._offset = int(offset.total_seconds()) if offset else 0
        self._suffix = datetime(2000, 1, 1, tzinfo=tz).isoformat()[19:] if offset else "+00:00"
        self._minutes: dict[int, str] = {}

    def __call__(self, timestamp_ms: int | None) -> str:
        if type(timestamp_ms) is not int:
            return ""
        seconds, millis = divmod(timestamp_ms, 1000)
        local = seconds + self._offset
        if not self._FIRST <= local < self._END:
            return utc_time(timestamp_ms)
        minute, second = divmod(local, 60)
        start = self._minutes.get(minute)
        if start is None:
            if len(self._minutes) >= 10_000:
                self._minutes.clear()
            day, rest = divmod(minute, 1_440)
            date = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
            start = self._minutes[minute] = f"{date}T{rest // 60:02d}:{rest % 60:02d}:"
        if millis:
            return f"{start}{second:02d}.{millis:03d}{self._suffix}"
        return f"{start}{second:02d}{self._suffix}"


_UTC_TIMES = SendTimes(UTC)


def row(
    finding: Mapping[str, Any],
    place: tuple[int | None, str | None] = (None, None),
    sent: Callable[[int | None], str] | None = None,
) -> list[Any]:
    """One finding as the CSV's columns; `details` keeps everything, as JSON. `place` is the
    send time and sender of the record it is about; `sent` shows the time (a `SendTimes`, UTC
    without one)."""
    values = _values(finding, place)
    cells = [
        value
        if type(value) is str
        and value[:1] not in CHECKED_START
        and value[:3].lower() not in MONTH_STARTS
        and len(value) <= CELL_CHARS // 2
        else ""
        if value is None
        else _cell(value)
        for value in values
    ]
    # an ISO time with its `T`: no spreadsheet reads it as a number, nor does `_cell`
    cells.insert(1, (sent or _UTC_TIMES)(place[0]))
    return cells


def row_line(
    finding: Mapping[str, Any],
    place: tuple[int | None, str | None],
    sent: Callable[[int | None], str],
) -> str:
    """`csv_line(row(finding, place, sent))`, a finding's line of the CSV, in fewer steps: a
    run with a finding a record writes a line a record, in the one process every record passes
    through. Most cells are empty or plain text, which need no look; the quotes of all cells
    are doubled and the cells joined in three passes over the whole line."""
    texts = [
        ""
        if value is None
        else value
        if type(value) is str
        and len(value) <= CELL_CHARS // 2
        and (
            value[:1] not in LOOKED_AT
            or (value[:1] not in CHECKED_START and value[:3].lower() not in MONTH_STARTS)
        )
        else _cell_text(value)
        for value in _values(finding, place)
    ]
    texts.insert(1, sent(place[0]))
    joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:  # a NUL in a cell: joined the slower way
        return csv_line(texts)
    return '"' + joined.replace('"', '""').replace("\0", '","') + '"\r\n'


def _cell_text(value: Any) -> str:
    """`_cell(value)` as `csv_line` writes it."""
    cell = _cell(value)
    return cell if type(cell) is str else repr(cell) if type(cell) is float else str(cell)


def _values(finding: Mapping[str, Any], place: tuple[int | None, str | None]) -> tuple[Any, ...]:
    """The columns' values but `sent_at`, before they are made cells."""
    details = finding.get("details")
    details = details if isinstance(details, Mapping) else {}
    normalizations = details.get("normalizations")
    if isinstance(normalizations, list):
        normalizations = ", ".join(str(each) for each in normalizations)
    retain_until = details.get("retain_until")
    if isinstance(retain_until, int) and not isinstance(retain_until, bool):
        retain_until = utc_time(retain_until)
    return (
        finding.get("msg_id"),
        place[1],
        finding.get("category"),
        finding.get("rule"),
        finding.get("severity"),
        finding.get("message"),
        finding.get("pointer"),
        details.get("list") or details.get("detector"),
        listed_term(details),
        details.get("matched"),
        details.get("start"),
        details.get("end"),
        normalizations,
        details.get("confidence"),
        details.get("disposition"),
        retain_until,
        details.get("reason"),
        details.get("keyword"),
        details.get("type"),
        details.get("file"),
        details.get("line"),
        # keys sorted: a run hands the report its findings' details in the order they were
        # made, the bag holds them in canonical (sorted) order
        orjson.dumps(details, default=str, option=orjson.OPT_SORT_KEYS).decode() if details else "",
    )


def csv_files(findings: int) -> list[str]:
    """The names of the CSV's files for this many findings: `findings.csv`, or past what one
    spreadsheet sheet holds, `findings-0001.csv`, `findings-0002.csv`... (`ROWS_PER_FILE` each),
    since Excel opens a longer one without the rows past its last and says nothing."""
    if findings <= ROWS_PER_FILE:
        return [CsvFormat.filename]
    parts = -(-findings // ROWS_PER_FILE)
    return [f"findings-{number:04d}.csv" for number in range(1, parts + 1)]


class CsvFormat(ReportFormat):
    filename = "findings.csv"

    def dump(self, report: Report, handle: BinaryIO) -> None:
        self._dump_rows(handle, self._lines(report), None)

    def write_files(self, report: Report, out_dir: Path) -> dict[str, Path]:
        names = csv_files(report.summary["findings"]["total"])
        if len(names) == 1:
            return super().write_files(report, out_dir)
        lines = self._lines(report)
        return {
            name: write_whole(
                out_dir / name, lambda handle: self._dump_rows(handle, lines, ROWS_PER_FILE)
            )
            for name in names
        }

    @staticmethod
    def _lines(report: Report) -> Iterator[str]:
        places: Iterator[tuple[int | None, str | None]] = report.places()
        sent = SendTimes(report.tz)
        for finding in report.findings():
            yield row_line(finding, next(places, (None, None)), sent)

    @staticmethod
    def _dump_rows(handle: BinaryIO, lines: Iterator[str], limit: int | None) -> None:
        """The BOM, the header and the next `limit` rows of `lines` (all of them for None)."""
        handle.write(codecs.BOM_UTF8)
        handle.write(csv_line(COLUMNS).encode())
        chunk: list[str] = []
        for line in lines if limit is None else islice(lines, limit):
            chunk.append(line)
            if len(chunk) >= _FLUSH_ROWS:
                handle.write("".join(chunk).encode("utf-8"))
                chunk.clear()
        handle.write("".join(chunk).encode("utf-8"))
