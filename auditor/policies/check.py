"""`auditor policy check`: conflicts in a valid policy file, found before anything runs.

A conflict is not an error (the file loads and the engine applies the precedence), but it means
the file does not do what its author probably meant: a rule that deletes sooner than the statutory
floor (the floor wins, so the rule's deletion date is never met), a rule or hold that can never
match, a hold that has already ended, a term that its own allowlist excuses everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditor.partitions import format_instant
from auditor.policies.durations import can_end_sooner
from auditor.policies.loading import load_policy
from auditor.policies.model import Policy
from auditor.policies.normalize import normalizer


@dataclass(frozen=True, slots=True)
class Conflict:
    """One problem of a policy file, at the line of the rule, hold or term concerned."""

    line: int
    subject: str
    message: str


def check_policy(path: str | Path, now_ms: int) -> tuple[Policy, list[Conflict]]:
    """Loads the file (ConfigError when invalid) and lists its conflicts at `now_ms`, by line."""
    policy = load_policy(path)
    return policy, find_conflicts(policy, now_ms)


def find_conflicts(policy: Policy, now_ms: int) -> list[Conflict]:
    found: list[Conflict] = []
    floor = policy.floor
    for rule in policy.retention_rules():
        if rule.then == "delete" and floor and can_end_sooner(rule.keep_for, floor.keep_for):
            basis = f" ({policy.floor_basis})" if policy.floor_basis else ""
            found.append(
                Conflict(
                    rule.line,
                    rule.id,
                    f"deletes after {rule.keep_for.words()}, sooner than the statutory floor of "
                    f"{floor.keep_for.words()}{basis}; retention beats deletion, so records are "
                    f"kept until the floor ends: make keep_for at least {floor.keep_for}",
                )
            )
        if rule.kind == "rule":
            if rule.scope.is_empty:
                found.append(
                    Conflict(
                        rule.line,
                        rule.id,
                        "its scope is empty, so it covers every record like the default: "
                        "give it a scope or make it the default",
                    )
                )
            reason = rule.scope.contradiction()
            if reason:
                found.append(Conflict(rule.line, rule.id, f"can never match: {reason}"))
    for hold in policy.holds:
        if hold.ends_ms is not None and hold.ends_ms <= now_ms:
            found.append(
                Conflict(
                    hold.line,
                    hold.id,
                    f"the hold ended {format_instant(hold.ends_ms)} and protects nothing now: "
                    "remove it, or move `ends` if legal has not lifted it",
                )
            )
        reason = hold.scope.contradiction()
        if reason:
            found.append(Conflict(hold.line, hold.id, f"can never match: {reason}"))
    for keyword_list in policy.keyword_lists:
        normal = normalizer(keyword_list.normalize)
        allowed = {normal.normalize(phrase.text) for phrase in keyword_list.allow}
        for term in keyword_list.terms:
            if normal.normalize(term.text) in allowed:
                found.append(
                    Conflict(
                        term.line,
                        keyword_list.id,
                        f"term {term.text!r} is also on its own allowlist, so it can never match",
                    )
                )
    return sorted(found, key=lambda conflict: conflict.line)
