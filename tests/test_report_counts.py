"""The run's report from counts its workers took: the same as observing every archived record.

Workers count their partition's records (`RecordCounts`) and the coordinator dates each
finding by its record's spool header, so no window of records is kept. These tests hold that to
the record-by-record way (`observe_facts`) over what the bag holds, for a first run and for a
recheck in which every message was archived before.
"""

import random
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS, Partition, parse_timezone
from auditor.pipeline import run_audit
from auditor.records import msg_id, sender, timestamp_ms
from auditor.report.counts import RecordCounts, zone_offset_ms
from auditor.report.model import ReportBuilder, record_facts
from auditor.report.runinfo import RunInfo

SECRET = "counts-test-secret"
NOV_1 = 1_793_491_200_000


def builder(zone: str) -> ReportBuilder:
    return ReportBuilder(RunInfo(1, NOV_1, NOV_1 + 48 * HOUR_MS, hour_timezone=zone))


@pytest.mark.parametrize("zone", ["+8", "-5"])
def test_counts_merged_per_partition_equal_counting_record_by_record(zone):
    rng = random.Random(5)
    tz = parse_timezone(zone)
    # more than `DISTINCT` type names, so the cap on distinct names is exercised too
    kinds = ["txt"] * 20 + ["img", "loc"] + [f"custom-{n}" for n in range(130)]
    one_by_one, merged = builder(zone), builder(zone)
    for hour in range(48):
        start = NOV_1 + hour * HOUR_MS
        facts = []
        for _ in range(rng.randrange(0, 60)):
            sent = start + rng.randrange(HOUR_MS)
            if rng.random() < 0.1:  # served late, or early: sent in another hour
                sent += rng.choice([-1, 1]) * rng.randrange(3 * HOUR_MS)
            if rng.random() < 0.1:  # no send time: counted as without one, in no hour
                sent = None
            facts.append((None, sent, rng.choice(kinds), rng.choice(["chat", "groupchat"]), None))
        for fact in facts:
            one_by_one.observe_facts(fact, Partition(start).label(tz))
        duplicates = rng.sample(facts, min(len(facts), 3))  # served twice, archived once
        counts = RecordCounts.of(zone_offset_ms(tz), facts + duplicates, start)
        for fact in duplicates:
            counts.remove(fact[2], fact[3], fact[1])
        merged.observe_counts(RecordCounts.from_json(orjson.loads(orjson.dumps(counts.to_json()))))
    assert merged.summary()["records"] == one_by_one.summary()["records"]
    assert merged.summary()["records"]["without_time"] > 0
    assert merged.snapshot().charts == one_by_one.snapshot().charts
    assert "(other)" in merged.summary()["records"]["by_message_type"]


def test_counts_taken_at_another_offset_are_refused():
    with pytest.raises(ValueError, match="offset"):
        builder("+8").observe_counts(RecordCounts(0))


# -- whole runs -----------------------------------------------------------------------------------


def archived(bag: Path):
    """(label, line) of every archived record, in order, and every finding, as written."""
    lines = []
    for path in sorted((bag / "data" / "records").glob("*.jsonl")):
        lines += [(path.stem, orjson.loads(raw)) for raw in path.read_bytes().splitlines()]
    findings_file = bag / "data" / "findings.jsonl"
    findings = [orjson.loads(raw) for raw in findings_file.read_bytes().splitlines()]
    return lines, findings


def reference_summary(bag: Path, zone: str) -> dict:
    """The report's record and finding figures, observing the bag's records one by one and
    dating each finding by its record: the one at its `seq`, or else the first one with its
    msg_id in this bag (a message only an earlier bag holds dates nothing)."""
    lines, findings = archived(bag)
    run = orjson.loads((bag / "data" / "report" / "summary.json").read_bytes())["run"]
    reference = ReportBuilder(RunInfo(1, run["since_ms"], run["until_ms"], hour_timezone=zone))
    by_id = {}
    for _label, line in lines:
        if msg_id(line["record"]) is not None:
            by_id.setdefault(msg_id(line["record"]), line["record"])
    for label, line in lines:
        reference.observe_facts(record_facts(line["record"]), label)
    for finding in findings:
        if "seq" in finding:
            record = lines[finding["seq"]][1]["record"]
        else:
            record = by_id.get(finding.get("msg_id"))
        place = (timestamp_ms(record), sender(record)) if record is not None else (None, None)
        reference.observe_finding(finding, place)
    summary = reference.summary()
    del summary["records"]["source_copies_dropped"]
    return {"records": summary["records"], "findings": summary["findings"]}


def run_summary(bag: Path) -> dict:
    summary = orjson.loads((bag / "data" / "report" / "summary.json").read_bytes())
    records = dict(summary["records"])
    del records["source_copies_dropped"]  # served, not archived: test_report_bag checks them
    return {"records": records, "findings": summary["findings"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A first run and a recheck of the same window, with duplicates, conflicts and late
    records served, hours named in Beijing time."""
    folder = tmp_path_factory.mktemp("counts")
    keys = generate_key_files(folder / "keys", identity="counts-test")
    options = EmulatorOptions(
        messages=1500,
        days=1,
        client_secret=SECRET,
        hour_timezone="+8",
        duplicate_rate=0.05,
        garbage_rate=0.01,
        late_rate=0.05,
        conflict_rate=0.02,
    )
    with run_emulator(options) as emulator:
        source = replace(run_support.source_of(emulator, SECRET), hour_timezone="+8")

        def run(**overrides):
            return run_audit(
                run_support.settings_for(
                    emulator, keys, folder, SECRET, source=source, workers=2, **overrides
                )
            )

        return run(fail_on="none"), run(fail_on="none", recheck=True)


def test_a_runs_report_counts_what_observing_each_archived_record_counts(runs):
    first, _again = runs
    assert first.records > 300
    assert run_summary(first.bag_path) == reference_summary(first.bag_path, "+8")


def test_a_recheck_counts_the_messages_archived_before_in_one_finding_an_hour(runs):
    first, again = runs
    summary = run_summary(again.bag_path)
    assert summary == reference_summary(again.bag_path, "+8")
    first_lines, _findings = archived(first.bag_path)
    _lines, findings = archived(again.bag_path)
    earlier = [f for f in findings if f["rule"] == "archived-earlier"]
    hours = [f["details"]["hour"] for f in earlier]
    assert len(hours) == len(set(hours)) <= 25
    assert {f["details"]["first_run"] for f in earlier} == {1}
    assert sum(f["details"]["messages"] for f in earlier) == sum(
        msg_id(line["record"]) is not None for _label, line in first_lines
    )
