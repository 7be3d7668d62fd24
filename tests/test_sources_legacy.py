"""The legacy `ql` source against the emulator over loopback HTTP, every fault switched on, and
a chain of runs that switches from hour files to it."""

import dataclasses
import json
from collections import Counter

import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.feed import COPY
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import DAY_MS, HOUR_MS, Partition
from auditor.pipeline import run_audit
from auditor.records import content_hash, msg_id, timestamp_ms
from auditor.sources.easemob import EasemobClient, RetryPolicy
from auditor.sources.legacy import LegacyQuerySource, window_ql

START = DEFAULT_START_MS
ENTITY_FIELDS = ("uuid", "type", "created", "modified")
EVERY_FAULT = {
    "fail_rate": 0.2,
    "rate_limit_rate": 0.1,
    "legacy_503_rate": 0.05,
    "slow_rate": 0.02,
    "slow_seconds": 0.05,
    "duplicate_rate": 0.1,
    "conflict_rate": 0.02,
    "late_rate": 0.03,
    "garbage_rate": 0.05,
    "short_page_rate": 0.2,
}


def source_for(emu, limit=1000):
    options = emu.options
    client = EasemobClient(
        emu.base_url,
        options.org,
        options.app,
        options.client_id,
        options.client_secret,
        retry=RetryPolicy(max_retries=6, backoff_base=0.001, backoff_cap=0.01),
    )
    return LegacyQuerySource(client, limit=limit)


def as_record(entity):
    return {key: value for key, value in entity.items() if key not in ENTITY_FIELDS}


def fingerprints(records):
    return Counter(content_hash(record) for record in records)


def test_the_hour_is_asked_for_with_bounds_that_are_exact_on_integer_milliseconds():
    assert window_ql(1000, 2000) == "select * where timestamp>999 and timestamp<2000"


def test_every_fault_loses_nothing_doubles_nothing_and_keeps_entity_fields():
    with run_emulator(EmulatorOptions(messages=2000, **EVERY_FAULT)) as emu:
        source = source_for(emu, limit=100)
        first = [source.fetch(Partition(START + n * HOUR_MS)) for n in range(24)]
        results = [source.fetch(Partition(START + n * HOUR_MS)) for n in range(24)]
        entities = [entity for result in results for entity in result.records]

        expected = list(emu.expected_records(START, START + DAY_MS))
        assert fingerprints(as_record(entity) for entity in entities) == fingerprints(expected)
        assert all(set(ENTITY_FIELDS) <= set(entity) for entity in entities)
        conflicted = Counter(msg_id(record) for record in expected)
        reported = {identity for result in results for identity in result.conflicts}
        assert reported == {identity for identity, n in conflicted.items() if identity and n > 1}
        assert sum(result.duplicates for result in results) > 0
        assert {"fail", "rate_limit", "legacy_503", "garbage"} <= set(emu.stats.faults)
        late = sum(len(b.records) - len(a.records) for a, b in zip(first, results, strict=True))
        late_indices = [i for i in range(len(emu.history)) if emu.feed.faults.late(i)]
        assert late == sum(
            variant != COPY for i in late_indices for variant, _ in emu.feed.items(i)
        )
        assert late > 0


def test_a_record_on_the_hour_lands_in_that_hour_only():
    with run_emulator(EmulatorOptions(messages=1200)) as emu:
        source = source_for(emu)
        results = {
            Partition(START + n * HOUR_MS): source.fetch(Partition(START + n * HOUR_MS))
            for n in range(4)
        }
        on_the_hour = [
            record
            for record in emu.expected_records(START, START + 4 * HOUR_MS)
            if (timestamp_ms(record) or 1) % HOUR_MS == 0
        ]
        assert len(on_the_hour) >= 3
        for record in on_the_hour:
            holders = [
                partition
                for partition, result in results.items()
                if record in [as_record(entity) for entity in result.records]
            ]
            assert holders == [Partition(timestamp_ms(record))]


def findings_by_rule(bag):
    """msg_ids by (rule, severity)."""
    found: dict[tuple[str, str], list[str]] = {}
    for line in (bag / "data" / "findings.jsonl").read_text().splitlines():
        finding = json.loads(line)
        found.setdefault((finding["rule"], finding["severity"]), []).append(finding["msg_id"])
    return found


def archived(bag):
    return [
        json.loads(line)["record"]
        for path in sorted((bag / "data" / "records").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="legacy-test")


def test_switching_from_hour_files_to_legacy_archives_no_message_twice_and_flags_real_changes(
    keys, tmp_path
):
    """Entity fields are the source's, not the message's: the messages hour files already gave
    are archived earlier, and only a message whose content really differs is flagged changed."""
    secret = "legacy-switch-secret"
    served = EmulatorOptions(messages=1200, client_secret=secret)
    edited = dataclasses.replace(served, conflict_rate=0.05)  # a second version of some messages
    overlap = (START + 2 * HOUR_MS, START + 4 * HOUR_MS)
    with run_emulator(served) as hour_files, run_emulator(edited) as legacy:
        run_audit(
            run_support.settings_for(
                hour_files, keys, tmp_path, secret, until_ms=overlap[1], fail_on="none"
            )
        )
        source = dataclasses.replace(run_support.source_of(legacy, secret), api="legacy")
        second = run_audit(
            run_support.settings_for(
                legacy, keys, tmp_path, secret, source=source, since_ms=overlap[0],
                until_ms=START + 6 * HOUR_MS, fail_on="none",
            )
        )  # fmt: skip
        earlier = hour_files.expected_records(*overlap)
        versions = legacy.expected_records(*overlap)
        fresh = legacy.expected_records(overlap[1], START + 6 * HOUR_MS)

    findings = findings_by_rule(second.bag_path)
    findings_earlier = [
        finding
        for finding in map(json.loads, (second.bag_path / "data" / "findings.jsonl").open())
        if finding["rule"] == "archived-earlier"
    ]
    new_versions = [r for r in versions if r not in earlier]
    assert len(new_versions) >= 3
    assert findings.pop(("archived-earlier", "info")) == [None] * len(findings_earlier)
    assert sum(f["details"]["messages"] for f in findings_earlier) == sum(
        msg_id(record) is not None for record in earlier
    )
    assert sorted(findings.pop(("content-changed-at-source", "high"))) == sorted(
        msg_id(r) for r in new_versions
    )
    assert not [rule for rule, _severity in findings if rule == "content-changed-at-source"]
    records = archived(second.bag_path)
    assert all(set(ENTITY_FIELDS) <= set(record) for record in records)
    assert fingerprints(as_record(r) for r in records) == fingerprints(new_versions + fresh)
