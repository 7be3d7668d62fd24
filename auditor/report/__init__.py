"""The audit report: a streaming builder that renders report.html, findings.csv/.jsonl and
summary.json, during a run or again from a bag alone.

Its names are imported when first asked for (PEP 562): a module beside them, such as the
catalogue of the page's languages that `auditor run --help` lists, loads without the builder.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.report.model import ReportBuilder, verdict_line
    from auditor.report.runinfo import RunInfo

__all__ = ["ReportBuilder", "RunInfo", "verdict_line"]
_HOMES = {"ReportBuilder": "model", "verdict_line": "model", "RunInfo": "runinfo"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
