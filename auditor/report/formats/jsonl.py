"""`findings.jsonl`: every finding of the run, one JSON object a line, exactly as observed."""

from __future__ import annotations

from typing import BinaryIO

from auditor.report.content import Report
from auditor.report.formats.interface import ReportFormat


class JsonlFormat(ReportFormat):
    filename = "findings.jsonl"

    def dump(self, report: Report, handle: BinaryIO) -> None:
        for line in report.raw_findings():
            handle.write(line)
