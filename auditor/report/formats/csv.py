"""`findings.csv`: every finding as a spreadsheet row, UTF-8 with a BOM so Excel reads Chinese.

The CSV is written for spreadsheets; programs read `findings.jsonl`, which holds the exact values.
Its cells and lines are made by `auditor.report.cells` and its rows by `auditor.report.csv_rows`:
msg_ids and numbers kept as text, never run as a formula.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from auditor.report.cells import csv_line
from auditor.report.content import Report
from auditor.report.csv_rows import SendTimes, row, row_line, sent_at
from auditor.report.formats.interface import ReportFormat, write_whole

__all__ = ["COLUMNS", "CsvFormat", "SendTimes", "csv_files", "row", "row_line", "sent_at"]

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
