"""What a finished report holds, handed to every output format: a snapshot, not the accumulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timezone
from typing import Any

from auditor.report.charts import Chart
from auditor.report.policy import PolicyView
from auditor.report.runinfo import RunInfo
from auditor.report.tables import Row, TableKind


@dataclass(frozen=True, slots=True)
class Table:
    """The rows a page shows for one table (the most severe first) and how many there are in all."""

    kind: TableKind
    total: int
    rows: tuple[Row, ...]

    @property
    def shown(self) -> int:
        return len(self.rows)


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the formats write: the summary, table samples, charts and the full findings.

    `findings` replays every finding in arrival order from the builder's spool file, so the CSV
    and JSONL carry all of them while memory holds only the samples. `places` gives, in the same
    order, each finding's place: its record's send time (UTC ms) and sender, None when unknown.
    `policy` is the policy the run applied, None for a bag that holds no copy of it.
    """

    run: RunInfo
    tz: timezone
    summary: dict[str, Any]
    tables: tuple[Table, ...]
    charts: tuple[Chart, ...]
    findings: Callable[[], Iterator[dict[str, Any]]]
    raw_findings: Callable[[], Iterator[bytes]]
    places: Callable[[], Iterator[tuple[int | None, str | None]]] = lambda: iter(())
    policy: PolicyView | None = None
