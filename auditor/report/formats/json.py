"""`summary.json`: the report's counts and verdict for machines (schema: summary.schema.json)."""

from __future__ import annotations

from typing import BinaryIO

import orjson

from auditor.report.content import Report
from auditor.report.formats.interface import ReportFormat


class SummaryFormat(ReportFormat):
    filename = "summary.json"

    def dump(self, report: Report, handle: BinaryIO) -> None:
        handle.write(orjson.dumps(report.summary, option=orjson.OPT_INDENT_2) + b"\n")
