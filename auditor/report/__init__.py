"""The audit report: a streaming builder that renders report.html, findings.csv/.jsonl and
summary.json, during a run or again from a bag alone."""

from auditor.report.model import ReportBuilder, verdict_line
from auditor.report.runinfo import RunInfo

__all__ = ["ReportBuilder", "RunInfo", "verdict_line"]
