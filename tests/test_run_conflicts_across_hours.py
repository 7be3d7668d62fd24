"""One msg_id served with two contents by two hours of one run, each in its own hour.

An edit re-sent an hour later under its msg_id, with the new send time (the emulator's
`resent_rate`): neither hour's file holds both versions, and neither version is a stray of the
other's hour, so only the run's coordinator, which sees every hour, can tell. It archives both
and says so with one `conflicting-content` finding on the later version, whatever the order of
the source's msg_ids, and no such finding for a msg_id with one content.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import run_audit
from auditor.records import content_hash

SECRET = "conflicts-across-hours-secret"
HOURS = 4


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="conflicts-test")


def lines(bag: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (bag / "data" / name).read_text().splitlines()]


def pairs_of(records) -> list[tuple[str, str]]:
    return [(str(record.get("msg_id")), content_hash(record)) for record in records]


def archived(bag: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((bag / "data" / "records").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.mark.parametrize("order", ["ordered", "snowflake", "random"])
def test_an_edit_resent_in_a_later_hour_is_archived_with_a_conflicting_content_finding(
    keys, tmp_path, order
):
    options = EmulatorOptions(
        messages=2_400, days=1, client_secret=SECRET, msg_id_order=order, resent_rate=0.05,
        conflict_rate=0.02, duplicate_rate=0.02,
    )  # fmt: skip
    since = DEFAULT_START_MS + 6 * HOUR_MS
    with run_emulator(options) as emulator:
        outcome = run_audit(
            run_support.settings_for(
                emulator, keys, tmp_path, SECRET, since_ms=since,
                until_ms=since + HOURS * HOUR_MS, fail_on="none", workers=2,
            )
        )  # fmt: skip
        expected = emulator.expected_records(since, since + HOURS * HOUR_MS)
    versions: dict[str, set[int]] = {}
    for record in expected:
        if "msg_id" in record and type(record.get("timestamp")) is int:
            identity, sent = record["msg_id"], record["timestamp"]
            versions.setdefault(identity, set()).add(sent - sent % HOUR_MS)
    across_hours = {identity for identity, hours in versions.items() if len(hours) > 1}
    in_bag = archived(outcome.bag_path)
    by_seq = {line["seq"]: line["record"] for line in in_bag}
    findings = lines(outcome.bag_path, "findings.jsonl")
    conflicts = [f for f in findings if f["rule"] == "conflicting-content"]
    told_with_seq = Counter(f["msg_id"] for f in conflicts if "seq" in f)
    all_versions = Counter(record["msg_id"] for record in expected if "msg_id" in record)

    assert len(across_hours) > 8
    assert sorted(pairs_of(line["record"] for line in in_bag)) == sorted(pairs_of(expected))
    # each edit re-sent into the next hour is told once, on its later version
    assert {identity for identity, n in told_with_seq.items() if n} >= across_hours
    for finding in conflicts:
        if finding["msg_id"] in across_hours and "seq" in finding:
            later = by_seq[finding["seq"]]
            assert later["msg_id"] == finding["msg_id"]
            assert later["timestamp"] - later["timestamp"] % HOUR_MS > min(
                versions[finding["msg_id"]]
            )
    assert all(told_with_seq[identity] == 1 for identity in across_hours)
    # never about a msg_id the source served with one content
    assert {f["msg_id"] for f in conflicts} <= {i for i, n in all_versions.items() if n > 1}
