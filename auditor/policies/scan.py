"""`auditor scan`: apply a policy to JSON-lines files and write the findings as JSON lines.

Lines that are not JSON objects become `parse` findings naming their file and line; they are
never dropped silently. The summary counts records, dispositions and findings by rule.

A bag (or a folder of them, as a run's out folder) is read as the records it archived: the lines
of its `data/records/*.jsonl`, each record taken out of its `{"record", "salt", "seq"}` line. Read
as plain JSON lines, a bag gave its wrapper objects, findings and attachment index as records,
every one without a timestamp.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from auditor.archive import layout
from auditor.archive.baginfo import check_bag_format
from auditor.archive.untrusted import record_files
from auditor.errors import ConfigError, os_reason
from auditor.findings import FAIL_ON_LEVELS, SEVERITY_RANK, Finding, fail_threshold
from auditor.jsonl import ParsedLine, expand_inputs, read_file, record_line
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
    files = _scanned_files(inputs)
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
                    parsed = _unwrapped(parsed)
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


def _scanned_files(inputs: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """The files to scan, each with whether its lines are a bag's archived lines."""
    found: list[tuple[Path, bool]] = []
    for item in inputs:
        path = Path(item)
        bags = _bags_in(path)
        if bags:
            for bag in bags:
                found.extend((record_file, True) for record_file in record_files(bag))
        else:
            found.extend((file, _in_a_bag(file)) for file in expand_inputs([path]))
    for bag in dict.fromkeys(file.parents[2] for file, archived in found if archived):
        check_bag_format(bag, "scan")
    return found


def _bags_in(path: Path) -> list[Path]:
    """`path` itself when it is a bag, else the bags directly inside it (a folder of runs;
    hidden ones, unpublished or spooled, are not runs)."""
    if (path / layout.BAGIT_TXT).is_file():
        return [path]
    if not path.is_dir():
        return []
    return [
        child
        for child in sorted(path.iterdir())
        if not child.name.startswith(".") and (child / layout.BAGIT_TXT).is_file()
    ]


def _in_a_bag(file: Path) -> bool:
    """Whether a file named directly is one of a bag's record files."""
    parents = file.parents
    return (
        len(parents) > 2
        and f"{parents[1].name}/{parents[0].name}" == layout.RECORDS
        and (parents[2] / layout.BAGIT_TXT).is_file()
    )


def _unwrapped(parsed: ParsedLine) -> ParsedLine:
    """The record of an archived line; a line that is not one is unreadable."""
    line = parsed.record
    if line is None:
        return parsed
    if isinstance(line, dict) and set(line) == {"record", "salt", "seq"}:
        return replace(parsed, record=line["record"])
    return replace(
        parsed, record=None, error='not an archived line (an object of "record", "salt", "seq")'
    )
