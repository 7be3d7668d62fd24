"""Findings: what a stage found about a record, written beside it and never into it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "low", "medium", "high")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
FAIL_ON_LEVELS = ("none", *SEVERITIES)


def fail_threshold(fail_on: str) -> int:
    """The lowest severity rank that fails a run; `none` is above every rank."""
    return len(SEVERITIES) if fail_on == "none" else SEVERITY_RANK[fail_on]


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about one record (or about the run when `msg_id` is None).

    `category` names the stage that found it (`schema`, `parse`, `keyword`, `pii`, `retention`,
    `hold`, `duplicate`, `source`, ...), `rule` the schema `$id`, policy rule or detector, and
    `message` is the one line a reviewer reads. `pointer` is the RFC 6901 JSON Pointer of the value
    concerned inside the record, when there is one.
    """

    msg_id: str | None
    category: str
    rule: str
    severity: str
    message: str
    pointer: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "category": self.category,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "pointer": self.pointer,
            "details": dict(self.details),
        }

    def at_least(self, severity: str) -> bool:
        return SEVERITY_RANK[self.severity] >= SEVERITY_RANK[severity]
