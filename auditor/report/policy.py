"""The policy a run applied, in the words a reviewer reads: what each rule, hold, keyword list and
detector is for and what it covers, so a finding's rule id leads to its reason.

Built from the loaded policy during a run, and from the bag's own copy (`data/policy.yaml`) when
`auditor report` renders a bag again: the same bytes give the same page. Only plain values here;
the page formats times in its zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor.policies.detectors import DETECTORS
from auditor.policies.durations import Duration
from auditor.policies.model import Policy
from auditor.policies.scope import IdPattern, Scope
from auditor.report.catalogue import Phrase

# Rows a table of the policy shows; the rest are in the policy file the bag holds.
POLICY_ROWS = 200

_KIND_WORDS = {
    "floor": Phrase("statutory floor"),
    "default": Phrase("default"),
    "rule": Phrase("rule"),
}
_UNITS = {"h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


@dataclass(frozen=True, slots=True)
class PolicyView:
    """The policy's tables for the page; `problem` says why a bag's copy could not be read (the
    tables are then empty), `copy` is where the bag holds the file ("" when it holds none).
    `quoted` is the reading's error, the auditor's own line as `auditor policy check` prints it:
    shown verbatim (in English, on a Chinese page too), since its file, line, field and YAML
    keys are what a reader looks up in the copy and compares with the command's output."""

    name: str = ""
    description: str = ""
    copy: str = ""
    problem: str = ""
    quoted: str = ""
    retention: tuple[dict[str, Any], ...] = ()
    holds: tuple[dict[str, Any], ...] = ()
    keyword_lists: tuple[dict[str, Any], ...] = ()
    detectors: tuple[dict[str, Any], ...] = ()
    term_files: tuple[dict[str, Any], ...] = ()
    anchors: dict[str, str] = field(default_factory=dict)
    rows: int = POLICY_ROWS


def policy_view(policy: Policy, copy: str = "") -> PolicyView:
    rules = ((policy.floor,) if policy.floor else ()) + policy.retention_rules()
    anchors: dict[str, str] = {}

    def anchor(identifier: str) -> str:
        return anchors.setdefault(identifier, f"policy-{len(anchors) + 1}")

    retention = tuple(
        {
            "anchor": anchor(rule.id),
            "id": rule.id,
            "kind": _KIND_WORDS.get(rule.kind, rule.kind),
            "covers": scope_conditions(rule.scope),
            "keep_for": duration_words(rule.keep_for),
            "then": Phrase("keep (a minimum only)") if rule.kind == "floor" else rule.then,
            "severity": rule.severity,
            "about": policy.floor_basis if rule.kind == "floor" else rule.description,
        }
        for rule in rules
    )
    holds = tuple(
        {
            "anchor": anchor(hold.id),
            "id": hold.id,
            "covers": scope_conditions(hold.scope),
            "starts_ms": hold.starts_ms,
            "ends_ms": hold.ends_ms,
            "severity": hold.severity,
            "about": hold.reason,
        }
        for hold in policy.holds
    )
    keyword_lists = tuple(
        {
            "anchor": anchor(kind.id),
            "id": kind.id,
            "severity": kind.severity,
            "terms": len(kind.terms),
            "patterns": len(kind.patterns),
            "allowed": len(kind.allow),
            "normalize": ", ".join(kind.normalize) or Phrase("none"),
            "whole_words": kind.whole_words,
            "about": kind.description,
        }
        for kind in policy.keyword_lists
    )
    detectors = tuple(
        {
            "anchor": anchor(rule.id),
            "id": rule.id,
            "detector": rule.detector,
            "severity": rule.severity,
            "unconfirmed": (
                Phrase("the same: its own check confirms every match")
                if DETECTORS[rule.detector].base_confidence == "high"
                else rule.low_confidence_severity or Phrase("one level lower")
            ),
            "context_words": len(rule.context_words),
            "allowed": len(rule.allow),
        }
        for rule in policy.detectors
    )
    term_files = tuple(
        {
            "list": each.list_id,
            "key": each.key,
            "file": each.declared,
            "archived": each.archived if copy else "",
            "sha256": each.sha256,
            "terms": each.terms,
        }
        for each in policy.term_files
    )
    return PolicyView(
        name=policy.name,
        description=policy.description,
        copy=copy,
        retention=retention,
        holds=holds,
        keyword_lists=keyword_lists,
        detectors=detectors,
        term_files=term_files,
        anchors=anchors,
    )


def duration_words(duration: Duration) -> Phrase:
    """`6 months`, `1 year` (as `Duration.words` says it), in words the page can translate."""
    unit = _UNITS.get(duration.unit)
    if unit is None:
        return Phrase(duration.words())
    return Phrase(
        f"{{amount}} {unit}" + ("" if duration.amount == 1 else "s"), amount=duration.amount
    )


def scope_conditions(scope: Scope) -> tuple[tuple[str, Any], ...]:
    """What a scope covers as (condition, values) pairs, in a fixed order; `sent` pairs hold a
    (since_ms, until_ms) pair of which either may be None. None at all: every record."""
    return tuple(_conditions(scope))


def _conditions(scope: Scope) -> Iterator[tuple[str, Any]]:
    if scope.chat_types is not None:
        yield Phrase("chat type"), sorted(scope.chat_types)
    for what, ids in (
        (Phrase("sender"), scope.senders),
        (Phrase("receiver"), scope.receivers),
        (Phrase("sender or receiver"), scope.participants),
        (Phrase("group"), scope.groups),
    ):
        if ids is not None:
            yield what, _ids(ids)
    if scope.message_types is not None:
        yield Phrase("message type"), sorted(scope.message_types)
    if scope.sent_since_ms is not None or scope.sent_until_ms is not None:
        yield Phrase("sent"), (scope.sent_since_ms, scope.sent_until_ms)


def _ids(ids: IdPattern) -> list[str]:
    return sorted(ids.exact) + list(ids.globs)
