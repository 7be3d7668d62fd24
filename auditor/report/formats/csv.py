"""`findings.csv`: every finding as a spreadsheet row, UTF-8 with a BOM so Excel reads Chinese.

Cells that start with `=`, `+`, `-`, `@`, a tab or a carriage return are prefixed with `'`, so a
spreadsheet shows what a user typed instead of running it as a formula (OWASP "CSV injection");
`findings.jsonl` holds the exact values.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Mapping
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


class CsvFormat(ReportFormat):
    filename = "findings.csv"

    def dump(self, report: Report, handle: BinaryIO) -> None:
        handle.write(codecs.BOM_UTF8)  # Python's utf-8-sig encoder runs in Python, once a row
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        try:
            writer = csv.writer(text)
            writer.writerow(COLUMNS)
            for finding in report.findings():
                writer.writerow(row(finding))
        finally:
            text.flush()
            text.detach()
