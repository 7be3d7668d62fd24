"""A finding as a row of `findings.csv`: its cells (`row`) and its line (`row_line`), and the
send time's text (`SendTimes`).

Compiled with mypyc (pyproject's `[tool.auditor] compiled`): a run whose every record draws a
finding writes a row a record, in the one process every record passes through. The same source
runs interpreted under `AUDITOR_PURE_PYTHON=1`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timezone
from typing import Any, Final

import orjson

from auditor.report.cells import (
    CELL_CHARS,
    CHECKED_START,
    LOOKED_AT,
    MONTH_STARTS,
    csv_line,
    spreadsheet_cell,
)
from auditor.report.display import utc_time
from auditor.report.tables import listed_term

# the local seconds of 0001-01-01T00:00:00 and of 10000-01-01T00:00:00
_FIRST: Final = -62_135_596_800
_END: Final = 253_402_300_800
_PLAIN_CHARS: Final = CELL_CHARS // 2


def sent_at(timestamp_ms: Any, tz: timezone) -> str:
    """A record's send time in the report's zone, ISO 8601 with its offset:
    `2026-11-01T08:00:00+08:00` (`.123` with milliseconds); in UTC past what the zone shows."""
    return SendTimes(tz)(timestamp_ms)


class SendTimes:
    """`sent_at` in one fixed-offset zone, a row each: the text up to the minute is worked out
    once a minute of the records' (the datetime way took 5 us a row, the larger part of writing
    a row; a record's findings and its neighbours' share their minute)."""

    def __init__(self, tz: timezone) -> None:
        offset = tz.utcoffset(None)
        self._offset = int(offset.total_seconds()) if offset else 0
        self._suffix = datetime(2000, 1, 1, tzinfo=tz).isoformat()[19:] if offset else "+00:00"
        self._minutes: dict[int, str] = {}

    def __call__(self, timestamp_ms: Any) -> str:
        """The text of a send time, or "" for anything but an int (`Any`: compiled, a declared
        type is checked)."""
        if type(timestamp_ms) is not int:
            return ""
        seconds, millis = divmod(timestamp_ms, 1000)
        local = seconds + self._offset
        if not _FIRST <= local < _END:
            return utc_time(timestamp_ms)
        minute, second = divmod(local, 60)
        start = self._minutes.get(minute)
        if start is None:
            if len(self._minutes) >= 10_000:
                self._minutes.clear()
            day, rest = divmod(minute, 1_440)
            date = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
            start = f"{date}T{rest // 60:02d}:{rest % 60:02d}:"
            self._minutes[minute] = start
        if millis:
            return f"{start}{second:02d}.{millis:03d}{self._suffix}"
        return f"{start}{second:02d}{self._suffix}"


_UTC_TIMES: Final = SendTimes(UTC)


def row(
    finding: Mapping[str, Any],
    place: tuple[Any, Any] = (None, None),
    sent: Callable[[Any], str] | None = None,
) -> list[Any]:
    """One finding as the CSV's columns; `details` keeps everything, as JSON. `place` is the
    send time and sender of the record it is about; `sent` shows the time (a `SendTimes`, UTC
    without one). Most cells are empty or plain text, which need no look."""
    cells = [
        ""
        if value is None
        else value
        if type(value) is str
        and len(value) <= _PLAIN_CHARS
        and (
            value[:1] not in LOOKED_AT
            or (value[:1] not in CHECKED_START and value[:3].lower() not in MONTH_STARTS)
        )
        else spreadsheet_cell(value)
        for value in _values(finding, place)
    ]
    # an ISO time with its `T`: no spreadsheet reads it as a number, nor does `spreadsheet_cell`
    cells.insert(1, (sent or _UTC_TIMES)(place[0]))
    return cells


def row_line(
    finding: Mapping[str, Any],
    place: tuple[Any, Any],
    sent: Callable[[Any], str],
) -> str:
    """`csv_line(row(finding, place, sent))`, a finding's line of the CSV, in fewer steps: the
    quotes of all cells are doubled and the cells joined in three passes over the whole line,
    not cell by cell."""
    texts = [
        cell if type(cell) is str else repr(cell) if type(cell) is float else str(cell)
        for cell in row(finding, place, sent)
    ]
    joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:  # a NUL in a cell: joined the slower way
        return csv_line(texts)
    return '"' + joined.replace('"', '""').replace("\0", '","') + '"\r\n'


def _values(finding: Mapping[str, Any], place: tuple[Any, Any]) -> tuple[Any, ...]:
    """The columns' values but `sent_at`, before they are made cells."""
    details = finding.get("details")
    details = details if isinstance(details, Mapping) else {}
    normalizations = details.get("normalizations")
    if isinstance(normalizations, list):
        normalizations = ", ".join([str(each) for each in normalizations])
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
