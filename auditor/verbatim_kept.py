"""Which lines a run kept verbatim in `data/unreadable/` are messages, and what it decided for
each: read from a run's spool as it archives (`pipeline`) and from a bag (`state rebuild`).

Only a record's `not-canonical-json` finding says that its line is a record, not served garbage
(which may parse as JSON too), as `auditor prove` takes it: nothing here runs for a record that
has an archived line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import orjson

from auditor.archive import layout
from auditor.archive.untrusted import bag_lines, unreadable_files
from auditor.policies.display import without_surrogates
from auditor.policies.model import Policy, retention_actions
from auditor.policies.reading import glance
from auditor.policies.retention import RetentionDecider, held_later
from auditor.records import msg_id

RULE = "not-canonical-json"
"""The finding that names a record kept verbatim, and where."""


class Kept(NamedTuple):
    """One message kept verbatim, with what its run decided."""

    file: str
    line: int
    msg_id: str
    line_sha256: str
    timestamp_ms: int | None
    retain_until_ms: int | None
    rule: str | None
    action: str | None


def place(finding: dict) -> tuple[str, int] | None:
    """(file, line) of a record kept verbatim, from its `not-canonical-json` finding."""
    details = finding.get("details")
    if finding.get("rule") != RULE or not isinstance(details, dict):
        return None
    file, line = details.get("file"), details.get("line")
    if isinstance(file, str) and type(line) is int:
        return file, line
    return None


def record_of(raw: bytes) -> dict | None:
    """The record a kept line holds (JSON with `\\ud83d` escapes, which `json` reads back as the
    lone surrogate: orjson refuses it); None for a line that is none."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Judge:
    """What a run decides for a record at its reference time, as the message index stores it
    (`state_rebuild._index_bag` does the same for an archived line)."""

    def __init__(self, policy: Policy, reference_ms: int) -> None:
        self._decide = RetentionDecider(policy, reference_ms).decide_facts
        self._then = retention_actions(policy)

    def __call__(self, file: str, line: int, raw: bytes) -> Kept | None:
        record = record_of(raw)
        identity = msg_id(record) if record is not None else None
        if record is None or identity is None:
            return None  # no message to list (one without a msg_id is named by its finding)
        facts, _texts = glance(record)
        until, verdict = self._decide(facts)
        rule = verdict.winning_rule
        action = "hold" if verdict.disposition == "hold" else self._then.get(rule)
        if verdict.later_hold is not None:
            until, action, rule = held_later(verdict.later_hold, until)
        return Kept(
            file,
            line,
            without_surrogates(identity),
            hashlib.sha256(raw).hexdigest(),
            facts[4],
            until,
            rule,
            action,
        )


def lines_at(path: Path, wanted: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """(line, bytes without the newline) of the `wanted` lines of a file, from 1, read once."""
    left = sorted(set(wanted))
    if not left:
        return
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if number == left[0]:
                yield number, raw.rstrip(b"\n")
                left.pop(0)
                if not left:
                    return


def places_in_bag(bag: Path) -> dict[str, list[int]]:
    """The lines of each of a bag's `data/unreadable/` files that its findings name as records
    kept verbatim: the bag's word, as `auditor prove` takes it (a line of served garbage may
    parse as JSON too)."""
    places: dict[str, list[int]] = {}
    findings = bag / layout.FINDINGS
    if not findings.is_file():
        return places
    for raw in bag_lines(findings):
        if RULE.encode() not in raw:
            continue
        try:
            finding = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        found = place(finding) if isinstance(finding, dict) else None
        if found is not None:
            places.setdefault(found[0], []).append(found[1])
    return places


def kept_in_spool(path: Path, places: list[tuple[str, int]], judge: Judge) -> Iterator[Kept]:
    """The messages an hour's spooled `unreadable` file keeps at `places` (the bag's file and
    the line, as its findings name them), judged."""
    names = {line: name for name, line in places}
    for line, raw in lines_at(path, names):
        if (kept := judge(names[line], line, raw)) is not None:
            yield kept


def kept_in_bag(bag: Path, judge: Judge) -> Iterator[Kept]:
    """The messages a bag keeps verbatim, judged as its run judged them; a finding naming a
    file that is not one of the bag's `data/unreadable/` files names none its run wrote."""
    files = {f"{layout.UNREADABLE}/{path.name}": path for path in unreadable_files(bag)}
    if not files:  # the usual bag: its findings are not read
        return
    for file, lines in sorted(places_in_bag(bag).items()):
        if file not in files:
            continue
        for line, raw in lines_at(files[file], lines):
            if (kept := judge(file, line, raw)) is not None:
                yield kept
