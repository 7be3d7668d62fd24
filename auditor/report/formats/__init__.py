"""The report's output formats, one file each (like pip-audit's `_format/`)."""

from __future__ import annotations

import posixpath

from auditor.archive import layout
from auditor.report.catalogue import DEFAULT_LANGUAGE
from auditor.report.formats.csv import CsvFormat
from auditor.report.formats.html import HtmlFormat
from auditor.report.formats.interface import ReportFormat
from auditor.report.formats.json import SummaryFormat
from auditor.report.formats.jsonl import JsonlFormat

__all__ = ["CsvFormat", "HtmlFormat", "JsonlFormat", "ReportFormat", "SummaryFormat"]


def default_formats(language: str = DEFAULT_LANGUAGE) -> list[ReportFormat]:
    """Every file the report consists of: `report.html` (in `language`), `findings.csv`,
    `findings.jsonl`, `summary.json` (for programs: always English)."""
    return [HtmlFormat(language=language), CsvFormat(), JsonlFormat(), SummaryFormat()]


def bag_formats(language: str = DEFAULT_LANGUAGE) -> list[ReportFormat]:
    """The report a run writes into its bag's `data/report/`: no second findings.jsonl, since
    the bag holds every finding as `data/findings.jsonl`, which the page links instead."""
    # from the root: relpath of relative paths asks for the working folder, which may be deleted
    in_bag = posixpath.relpath("/" + layout.FINDINGS, "/" + layout.REPORT)
    return [HtmlFormat(findings_jsonl=in_bag, language=language), CsvFormat(), SummaryFormat()]
