"""`findings.csv`: every finding as a spreadsheet row, UTF-8 with a BOM so Excel reads Chinese.

Cells that start with `=`, `+`, `-`, `@`, a tab or a carriage return are prefixed with `'`, so a
spreadsheet shows what a user typed instead of running it as a formula (OWASP "CSV injection");
`findings.jsonl` holds the exact values.

The rows are what `csv.writer` writes with every cell quoted, built by `csv_line` with string
methods instead: the csv module copies a row character by character (about 16 ns each here),
which made writing the CSV the larger part of the serial tail of a big run.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import orjson

from auditor.report.content import Report
from auditor.report.display import utc_time
from auditor.report.formats.interface import ReportFormat

COLUMNS = (
    "msg_id",
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


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA) else value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _cell(orjson.dumps(value, default=str).decode())
    return value


def row(finding: Mapping[str, Any]) -> list[Any]:
    """One finding as the CSV's columns; `details` keeps everything, as JSON."""
    details = finding.get("details")
    details = details if isinstance(details, Mapping) else {}
    normalizations = details.get("normalizations")
    if isinstance(normalizations, list):
        normalizations = ", ".join(str(each) for each in normalizations)
    retain_until = details.get("retain_until")
    if isinstance(retain_until, int) and not isinstance(retain_until, bool):
        retain_until = utc_time(retain_until)
    values = (
        finding.get("msg_id"),
        finding.get("category"),
        finding.get("rule"),
        finding.get("severity"),
        finding.get("message"),
        finding.get("pointer"),
        details.get("list") or details.get("detector"),
        details.get("term"),
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
        orjson.dumps(details, default=str).decode() if details else "",
    )
    return [
        value if type(value) is str and not value.startswith(_FORMULA) else _cell(value)
        for value in values
    ]


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


class CsvFormat(ReportFormat):
    filename = "findings.csv"

    def dump(self, report: Report, handle: BinaryIO) -> None:
        handle.write(codecs.BOM_UTF8)
        handle.write(csv_line(COLUMNS).encode())
        lines: list[str] = []
        for finding in report.findings():
            lines.append(csv_line(row(finding)))
            if len(lines) >= _FLUSH_ROWS:
                handle.write("".join(lines).encode("utf-8"))
                lines.clear()
        handle.write("".join(lines).encode("utf-8"))
