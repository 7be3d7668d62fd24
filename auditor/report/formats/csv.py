"""`findings.csv`: every finding as a spreadsheet row, UTF-8 with a BOM so Excel reads Chinese.

The CSV is written for spreadsheets; programs read `findings.jsonl`, which holds the exact values.
Cells that start with `=`, `+`, `-`, `@`, a tab or a carriage return are prefixed with `'`, so a
spreadsheet shows what a user typed instead of running it as a formula (OWASP "CSV injection").
A text a spreadsheet would read as a number, date, time or fraction (`_looks_numeric`: only
digits and `.,:/%()$ eE+-` and the like) is written as the formula `="..."`, which Excel and
LibreOffice evaluate to that exact text: a msg_id like 200000070000025721 would otherwise become
2.00000070000026E+17, a card or ID number lose its last digits, a `007` its zeros, a `1/2` turn
into a date; so is a date written with an English month's name (`Jan-2026`, `3-Mar`,
`2026-Jan-05`), which Excel turns into a date too. Only such a text is ever wrapped, never one
holding a `"` or a letter other than an exponent's `e`, a month's name or `am`/`pm`, so no text
from the data is ever evaluated; a whole number (a line, an offset) stays a number unless it
has more than 15 digits, as many as a spreadsheet keeps. A text longer than a cell holds (32,767
characters) is cut, saying so.

The rows are what `csv.writer` writes with every cell quoted, built by `csv_line` with string
methods instead: the csv module copies a row character by character (about 16 ns each here),
which made writing the CSV the larger part of the serial tail of a big run.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import orjson

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
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_FLUSH_ROWS = 1_000
# Rows a sheet holds in Excel (and LibreOffice): one for the header, the rest for findings.
SHEET_ROWS = 1_048_576
ROWS_PER_FILE = SHEET_ROWS - 1
# What a spreadsheet may read as a number, date, time, fraction, percentage or amount: digits
# with separators, signs, an exponent, brackets (an accounting minus) and currency signs. A text
# of only these (with a digit) is written as `="text"`; `"` is not among them, so the text can
# never end the formula's string. Excel takes at most 255 characters in a formula's string.
_NUMERIC = re.compile(r"[0-9 .,:/%+\-()eE$\u00a3\u00a5\u20ac]{1,255}")
# A date with an English month name, as a spreadsheet reads it: `Jan-2026`, `2026-Jan-05`,
# `3-Mar`, `5 January 2026 10:00 pm`: the name (short or whole) among digits, separators and a
# time. Only letters of the month's name and `am`/`pm` besides; never a `"`.
_MONTH = (
    "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    "|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTH_DATE = re.compile(
    rf"[0-9 ,./\-:]{{0,40}}{_MONTH}\.?[0-9 ,./\-:]{{0,60}}(?:[ap]\.?m\.?)?", re.IGNORECASE
)
_DIGITS = frozenset("0123456789")
_NUMERIC_START = frozenset("0123456789 .,:/%()eE$\u00a3\u00a5\u20ac")
# the first characters of a text `_cell` looks at: it may start a formula, a number or a date
_CHECKED_START = _NUMERIC_START | frozenset(_FORMULA)
# and the first three of a month's name, lower case, for one that may start a date
_MONTH_STARTS = frozenset(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
)
# first characters of a text that needs a closer look: any other starts no formula, number,
# date nor month's name
_LOOKED_AT = _CHECKED_START | frozenset("jfmasondJFMASOND")
# The characters a spreadsheet cell holds (Excel's limit, in UTF-16 code units)
_CELL_CHARS = 32_767
# The most significant digits a spreadsheet keeps of a number
_SPREADSHEET_DIGITS = 15
_ROUNDED = 10**_SPREADSHEET_DIGITS  # the first whole number a spreadsheet rounds


def _looks_numeric(text: str) -> bool:
    """Whether a spreadsheet may read `text` as a number, date or time, and so show it other
    than it is. A text starting with a formula character is not: it gets a `'` instead."""
    return (
        text[:1] in _NUMERIC_START
        and _NUMERIC.fullmatch(text) is not None
        and not _DIGITS.isdisjoint(text)
    )


def _looks_like_a_month_date(text: str) -> bool:
    """Whether a spreadsheet may read `text` as a date written with a month's name."""
    return (
        len(text) <= 255
        and not _DIGITS.isdisjoint(text)
        and _MONTH_DATE.fullmatch(text) is not None
    )


def _fitted(text: str) -> str:
    """`text` cut to what a spreadsheet cell holds, saying so: Excel cuts a longer cell without
    a word (LibreOffice too, past its own limit), and a reviewer must not take the part for the
    whole. Excel counts UTF-16 code units, so a character outside the BMP counts twice."""
    if len(text) <= _CELL_CHARS // 2:
        return text
    units = len(text.encode("utf-16-le")) // 2
    if units <= _CELL_CHARS:
        return text
    note = f" [cut: {len(text):,} characters in all; the whole value is in findings.jsonl]"
    keep = _CELL_CHARS - len(note) - 1  # one more for the `'` a formula character gets
    return text[:keep].encode("utf-16-le")[: keep * 2].decode("utf-16-le", "ignore") + note


def _as_text(text: str) -> str:
    """`text` (that `_looks_numeric`) as the formula a spreadsheet evaluates to exactly it."""
    return f'="{text}"'


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        if value.isdigit() and value.isascii() and len(value) <= 255:  # a msg_id: the most
            return f'="{value}"'
        if value.startswith(_FORMULA):
            return "'" + _fitted(value)
        if _looks_numeric(value) or _looks_like_a_month_date(value):
            return _as_text(value)
        return value if len(value) <= _CELL_CHARS // 2 else _fitted(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _cell(orjson.dumps(value, default=str).decode())
    if type(value) is int:
        return value if -_ROUNDED < value < _ROUNDED else f'="{value}"'
    text = repr(value)
    if sum(char in _DIGITS for char in text.partition("e")[0].lstrip("-0.")) > (
        _SPREADSHEET_DIGITS
    ):
        return _as_text(text)
    return value


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
        and value[:1] not in _CHECKED_START
        and value[:3].lower() not in _MONTH_STARTS
        and len(value) <= _CELL_CHARS // 2
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
        and len(value) <= _CELL_CHARS // 2
        and (
            value[:1] not in _LOOKED_AT
            or (value[:1] not in _CHECKED_START and value[:3].lower() not in _MONTH_STARTS)
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


def spreadsheet_cell(value: Any) -> Any:
    """`value` as a cell of a CSV for a spreadsheet (see the module's docstring): what
    `auditor due --format csv` writes too."""
    return _cell(value)


def csv_line(cells: Sequence[str | int | float]) -> str:
    """One row as `csv.writer(..., quoting=csv.QUOTE_ALL).writerow(cells)` writes it: every cell
    in double quotes with its quotes doubled, CRLF at the end. Quoting every cell spares testing
    each for the characters that need it; spreadsheets and csv readers read the same values."""
    return (
        '"'
        + '","'.join(
            [
                (
                    cell if type(cell) is str else repr(cell) if type(cell) is float else str(cell)
                ).replace('"', '""')
                for cell in cells
            ]
        )
        + '"\r\n'
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
