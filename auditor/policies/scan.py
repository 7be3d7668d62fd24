"""`auditor scan`: apply a policy to JSON-lines files and write the findings as JSON lines.

Lines that are not JSON objects become `parse` findings naming their file and line; they are
never dropped silently. The summary counts records, dispositions and findings by rule.

A bag (or a folder of them, as a run's out folder) is read as the records it archived
(`auditor.bag_inputs`).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from auditor.bag_inputs import input_files, unwrapped
from auditor.errors import ConfigError, os_reason
from auditor.findings import FAIL_ON_LEVELS, SEVERITY_RANK, Finding, fail_threshold
from auditor.jsonl import read_file, record_line
from auditor.policies.engine import PolicyEngine
from auditor.policies.loading import load_policy


@dataclass
class ScanSummary:
    """What a scan saw; `failing` counts findings at or above `fail_on`."""

    fail_on: str
    files: int = 0
    records: int = 0
    unreadable: int = 0
    failing: int = 0
    dispositions: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, finding: Finding) -> None:
        self.by_rule[(finding.category, finding.rule, finding.severity)] += 1
        if SEVERITY_RANK[finding.severity] >= fail_threshold(self.fail_on):
            self.failing += 1

    @property
    def findings(self) -> int:
        return sum(self.by_rule.values())


def scan_files(
    policy_path: str | Path,
    inputs: Iterable[str | Path],
    now_ms: int,
    findings_out: str | Path | None = None,
    fail_on: str = "low",
) -> ScanSummary:
    """Scans every record of `inputs`; findings go to `findings_out` (`-` for stdout) if given."""
    if fail_on not in FAIL_ON_LEVELS:
        raise ConfigError(f"--fail-on {fail_on!r} is not one of {', '.join(FAIL_ON_LEVELS)}")
    policy = load_policy(policy_path)
    files = input_files(inputs, "scan")
    engine = PolicyEngine(policy, now_ms)
    summary = ScanSummary(fail_on=fail_on, files=len(files))
    with ExitStack() as stack:
        out: BinaryIO | None = None
        if findings_out == "-":
            out = sys.stdout.buffer
        elif findings_out is not None:
            try:
                out = stack.enter_context(Path(findings_out).open("wb"))
            except OSError as error:
                raise ConfigError(
                    f"{findings_out}: cannot write findings ({os_reason(error)})"
                ) from None
        for path, archived in files:
            for parsed in read_file(path):
                if archived:
                    parsed = unwrapped(parsed)
                if parsed.record is None:
                    summary.unreadable += 1
                    found = [
                        Finding(
                            None,
                            "parse",
                            "jsonl",
                            "medium",
                            f"{parsed.path}:{parsed.line}: {parsed.error}",
                            None,
                            {"file": parsed.path, "line": parsed.line},
                        )
                    ]
                else:
                    summary.records += 1
                    _until, verdict, found = engine.evaluate(parsed.record)
                    summary.dispositions[verdict.disposition] += 1
                for finding in found:
                    summary.add(finding)
                    if out is not None:
                        out.write(record_line(finding.to_dict()))
        if out is not None:
            out.flush()
    return summary
