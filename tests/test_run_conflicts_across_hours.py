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
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS, SyntheticHistory
from auditor.emulator.faults import conflicting_version
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import RunSettings, run_audit
from auditor.records import content_hash
from auditor.resources import example_policy
from auditor.sources.settings import local_settings

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
    outcome, expected = _audited(options, keys, tmp_path, since)
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


def test_edits_served_as_strays_of_other_hours_are_told_on_the_later_version(keys, tmp_path):
    """A source naming its hours in +8 serves every record in an hour not its own: an edit and
    its re-sent version are then strays of two instants an hour apart, each served by its own
    file. Each stray was compared only with its timestamp's hour and the strays of its instant,
    so the pair went untold; now a stray is looked up among every other hour's versions."""
    options = EmulatorOptions(
        messages=2_400, days=1, client_secret=SECRET, hour_timezone="+8", resent_rate=0.05,
        duplicate_rate=0.02,
    )  # fmt: skip
    since = DEFAULT_START_MS + 10 * HOUR_MS
    outcome, _expected = _audited(options, keys, tmp_path, since)
    in_bag = archived(outcome.bag_path)
    seqs: dict[str, list[int]] = {}
    for line in in_bag:
        if "msg_id" in line["record"]:
            seqs.setdefault(line["record"]["msg_id"], []).append(line["seq"])
    edited = {identity: max(seq) for identity, seq in seqs.items() if len(seq) > 1}
    findings = lines(outcome.bag_path, "findings.jsonl")
    strays = sum(f["details"]["count"] for f in findings if f["rule"] == "served-in-another-hour")
    told = Counter(
        (f["msg_id"], f["seq"])
        for f in findings
        if f["rule"] == "conflicting-content" and "seq" in f
    )

    assert strays == len(in_bag) and len(edited) > 8
    assert told == Counter(edited.items())


def test_versions_without_a_timestamp_are_compared_with_every_other_hours(keys, tmp_path):
    """Hour files on disk where an edit lost its timestamp: such a record stays in the hour of
    its file, and was compared with no other hour's. Now it is told against a version timed in
    an earlier hour and against an earlier one without a timestamp, and a version timed in a
    later hour is told against it; a record without a timestamp and one version is not."""
    history = SyntheticHistory(messages=240, days=1)
    hours = [
        [history.record(i) for i in history.index_range(start, start + HOUR_MS)]
        for start in (DEFAULT_START_MS + n * HOUR_MS for n in range(3))
    ]

    def untimed(record: dict, mark: str = "") -> dict:
        version = conflicting_version(record)
        version.pop("timestamp", None)
        version["payload"]["ext"] = {"edit": mark}
        return version

    earlier, later, alone = hours[0][1], hours[2][1], hours[1][2]
    orphan = {**untimed(hours[0][3]), "msg_id": "orphan-1"}
    hours[1] += [untimed(earlier), untimed(later), orphan, untimed(alone)]
    hours[1].remove(alone)
    hours[2].append(untimed(orphan, "again"))
    folder = tmp_path / "pulled"
    folder.mkdir()
    for n, records in enumerate(hours):
        (folder / f"202611010{n}.jsonl").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in records)
        )

    with local_settings([folder], {}, None, tmp_path / "work") as (source, prepared):
        since, until = prepared.window(None, None)
        outcome = run_audit(
            RunSettings(
                source=source, policy_path=example_policy(), key_path=keys.private_key,
                out_dir=tmp_path / "archive", state_path=tmp_path / "state.db", since_ms=since,
                until_ms=until, attachments="skip", as_of_ms=until, fail_on="none", workers=2,
            )
        )  # fmt: skip
    by_seq = {line["seq"]: line["record"] for line in archived(outcome.bag_path)}
    told = [
        by_seq[f["seq"]]
        for f in lines(outcome.bag_path, "findings.jsonl")
        if f["rule"] == "conflicting-content"
    ]

    assert len(by_seq) == sum(len(records) for records in hours)
    assert sorted((r["msg_id"], "timestamp" in r) for r in told) == sorted(
        [(earlier["msg_id"], False), (later["msg_id"], True), ("orphan-1", False)]
    )


def _audited(options, keys, tmp_path, since):
    """`run_audit --workers 2` of `HOURS` hours from `since` against an emulator of `options`:
    its outcome and the records the emulator served for them. Attachments are not fetched:
    the claims are about versions of records, and a fetch is a request a file."""
    with run_emulator(options) as emulator:
        outcome = run_audit(
            run_support.settings_for(
                emulator, keys, tmp_path, SECRET, since_ms=since,
                until_ms=since + HOURS * HOUR_MS, fail_on="none", workers=2,
                attachments="skip",
            )
        )  # fmt: skip
        return outcome, emulator.expected_records(since, since + HOURS * HOUR_MS)


def test_an_hour_read_again_by_a_second_look_tells_and_archives_a_version_its_first_read_lacked(
    keys, tmp_path
):
    """A run reads each hour once (its second looks end where its window begins), so an hour is
    read twice only across runs: the `--incremental` chain's second look. A msg_id served with
    one content at the first reading and another at the second (an edit the source made
    meanwhile) is told `content-changed-at-source` on the new version, which the second bag
    archives beside the first bag's: every version kept, none archived twice."""
    served = EmulatorOptions(messages=600, days=1, client_secret=SECRET)
    edited = replace(served, conflict_rate=0.05)  # the same history, some messages edited
    start, relooked_until = DEFAULT_START_MS, DEFAULT_START_MS + 12 * HOUR_MS
    outcomes = []
    for options, now_hour in ((served, 12), (edited, 24)):
        with run_emulator(options) as emulator:
            outcomes.append(
                run_audit(
                    run_support.settings_for(
                        emulator, keys, tmp_path, SECRET, since_ms=start, until_ms=None,
                        incremental=True, now_ms=lambda h=now_hour: start + h * HOUR_MS,
                        late_hours=12, fail_on="none", as_of_ms=start, attachments="skip",
                    )
                )
            )  # fmt: skip
            if options is edited:
                versions = emulator.expected_records(start, relooked_until)
        if options is served:
            first_read = pairs_of(emulator.expected_records(start, relooked_until))
    first, second = outcomes
    new = [r for r in versions if (str(r.get("msg_id")), content_hash(r)) not in first_read]
    changed = [
        f["msg_id"]
        for f in lines(second.bag_path, "findings.jsonl")
        if f["rule"] == "content-changed-at-source"
    ]
    info = dict(
        line.split(": ", 1) for line in (second.bag_path / "bag-info.txt").read_text().splitlines()
    )
    in_first = pairs_of(line["record"] for line in archived(first.bag_path))
    in_second = pairs_of(line["record"] for line in archived(second.bag_path))

    assert (info["Fetched-Again-Since"], info["Fetched-Again-Until"]) == (
        "2026-11-01T00:00:00Z",
        info["Window-Since"],
    )
    assert len(new) >= 3 and all("msg_id" in r for r in new)
    assert sorted(changed) == sorted(r["msg_id"] for r in new)
    assert set(first_read) <= set(in_first)
    assert set(pairs_of(new)) <= set(in_second)
    assert not set(in_first) & set(in_second)
