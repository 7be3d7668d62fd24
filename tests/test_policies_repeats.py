"""A match that recurs in one text is one finding that says how often and where: one spam
message of a repeated term made a finding per occurrence, 555 identical rows for 5,000
characters (probe 16)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.findings import Finding
from auditor.partitions import parse_instant
from auditor.policies.engine import PolicyEngine
from auditor.policies.loading import load_policy
from auditor.report.display import mark_chinese
from auditor.report.tables import keyword_row

POLICY = """
version: 1
retention:
  default: {keep_for: 1y, then: delete, severity: medium}
keywords:
  - id: en-watch
    severity: high
    terms: [kickback, insider tip]
    patterns: ['wire \\d+']
  - id: zh-watch
    severity: high
    terms: [洗钱]
detectors:
  - {detector: mobile, severity: medium, context: {words: [手机], within: 10}}
"""
SECRET = "repeats-test-secret"


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return PolicyEngine(load_policy(path), parse_instant("2026-06-01"))


def findings_of(engine, text, **fields):
    payload = {"bodies": [{"type": "txt", "msg": text}], "from": "alice", "to": "bob", **fields}
    sent = parse_instant("2026-01-01")
    record = {"msg_id": "42", "timestamp": sent, "chat_type": "chat", "payload": payload}
    return [f for f in engine.evaluate(record)[2] if f.category in ("keyword", "pii")]


def test_a_term_repeated_1000_times_is_one_finding_with_the_count_and_the_first_100_spans(engine):
    (finding,) = findings_of(engine, "kickback " * 1000)

    details = finding.details
    assert finding.message == "matched 'kickback' in payload.bodies[0].msg (1000 times)"
    assert (details["start"], details["end"], details["matched"]) == (0, 8, "kickback")
    assert details["occurrences"] == 1000
    assert details["spans"] == [[9 * n, 9 * n + 8] for n in range(100)]
    assert details["spans"][0] == [details["start"], details["end"]]


def test_two_terms_interleaved_are_two_findings_in_the_order_they_first_occur(engine):
    found = findings_of(engine, "洗钱 kickback 洗钱 kickback 洗钱")

    assert [(f.rule, f.details["term"], f.details["occurrences"]) for f in found] == [
        ("zh-watch", "洗钱", 3),
        ("en-watch", "kickback", 2),
    ]
    assert [f.details["spans"] for f in found] == [
        [[0, 2], [12, 14], [24, 26]],
        [[3, 11], [15, 23]],
    ]


def test_a_regex_groups_repeats_of_one_match_and_keeps_different_matches_apart(engine):
    found = findings_of(engine, "wire 500, wire 700, wire 500")

    assert [(f.details["matched"], f.details.get("occurrences")) for f in found] == [
        ("wire 500", 2),
        ("wire 700", None),
    ]


def test_the_same_phone_number_twice_is_one_finding_counted_twice(engine):
    (finding,) = findings_of(engine, "手机13812345678，手机13812345678")

    assert finding.message == (
        "mobile '13812345678' (high confidence) in payload.bodies[0].msg (2 times)"
    )
    assert (finding.details["occurrences"], finding.details["spans"]) == (2, [[2, 13], [16, 27]])


def test_two_different_phone_numbers_are_two_findings(engine):
    found = findings_of(engine, "手机13812345678，手机13912345679")

    assert [f.details["term"] for f in found] == ["13812345678", "13912345679"]
    assert not any("occurrences" in f.details for f in found)


def test_the_same_number_at_two_severities_is_two_findings(engine):
    """Near its context word a number is high confidence, far from it low: two findings."""
    found = findings_of(engine, "手机13812345678" + "。" * 30 + "13812345678")

    assert [(f.severity, f.details["confidence"]) for f in found] == [
        ("medium", "high"),
        ("low", "low"),
    ]


def test_the_same_term_in_two_fields_is_a_finding_in_each(engine):
    found = findings_of(engine, "kickback", ext={"note": "a kickback"})

    assert [(f.pointer, f.details.get("occurrences")) for f in found] == [
        ("/payload/bodies/0/msg", None),
        ("/payload/ext/note", None),
    ]


def test_matches_that_each_occur_once_give_exactly_the_findings_they_gave_before(engine):
    """Beside another match, a single occurrence is the finding it always was: no
    `occurrences`, no `spans`, no count in the message."""
    found = findings_of(engine, "kickback 洗钱 手机13812345678")

    assert found == [
        Finding(
            "42",
            "keyword",
            "en-watch",
            "high",
            "matched 'kickback' in payload.bodies[0].msg",
            "/payload/bodies/0/msg",
            {
                "list": "en-watch",
                "term": "kickback",
                "listed_term": "kickback",
                "matched": "kickback",
                "start": 0,
                "end": 8,
                "normalizations": [],
                "text": "kickback 洗钱 手机13812345678",
            },
        ),
        Finding(
            "42",
            "keyword",
            "zh-watch",
            "high",
            "matched '洗钱' in payload.bodies[0].msg",
            "/payload/bodies/0/msg",
            {
                "list": "zh-watch",
                "term": "洗钱",
                "listed_term": "洗钱",
                "matched": "洗钱",
                "start": 9,
                "end": 11,
                "normalizations": [],
                "text": "kickback 洗钱 手机13812345678",
            },
        ),
        Finding(
            "42",
            "pii",
            "mobile",
            "medium",
            "mobile '13812345678' (high confidence) in payload.bodies[0].msg",
            "/payload/bodies/0/msg",
            {
                "detector": "mobile",
                "term": "13812345678",
                "matched": "13812345678",
                "start": 14,
                "end": 25,
                "normalizations": [],
                "confidence": "high",
                "text": "kickback 洗钱 手机13812345678",
            },
        ),
    ]


def test_the_report_row_of_a_repeated_match_shows_its_count_beside_the_term():
    repeated = {"category": "keyword", "details": {"term": "kickback", "occurrences": 1234}}
    single = {"category": "keyword", "details": {"term": "kickback"}}

    assert keyword_row(repeated, UTC)["term"] == "kickback (1,234 times)"
    assert keyword_row(single, UTC)["term"] == "kickback"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


def test_a_run_reports_a_phrase_repeated_in_a_message_once_with_its_count(keys, tmp_path):
    """Against the emulator: its messages repeat phrases ("the client signed off, ..., the
    client signed off"); the bag, the CSV and the page each show one finding with the count."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nretention:\n  default: {keep_for: 1y, then: delete}\n"
        "keywords:\n  - {id: chatter, severity: low, terms: [signed off, 吃饭]}\n"
    )
    with run_emulator(EmulatorOptions(messages=1200, client_secret=SECRET)) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--policies", str(policy))
        result = CliRunner().invoke(
            main, [*args, "--quiet", "--fail-on", "none"], env={"EASEMOB_CLIENT_SECRET": SECRET}
        )
    assert result.exit_code == 0, result.output
    (bag,) = (tmp_path / "archive").glob("run-*")
    data = bag / "data"
    lines = (data / "findings.jsonl").read_text(encoding="utf-8").splitlines()
    keyword = [f for f in map(json.loads, lines) if f["category"] == "keyword"]
    places = [(f["msg_id"], f["pointer"], f["details"]["term"]) for f in keyword]
    repeated = [f for f in keyword if "occurrences" in f["details"]]
    csv_text = (data / "report" / "findings.csv").read_text(encoding="utf-8-sig")
    rows = {
        # a msg_id of digits is written as ="..." for spreadsheets (test_report_csv_cells.py)
        (row["msg_id"].removeprefix('="').removesuffix('"'), row["message"]): row
        for row in csv.DictReader(io.StringIO(csv_text))
    }
    page = (data / "report" / "report.html").read_text(encoding="utf-8")

    assert len(places) == len(set(places))
    assert len(repeated) >= 3
    for finding in repeated:
        count, term = finding["details"]["occurrences"], finding["details"]["listed_term"]
        assert finding["message"].endswith(f" ({count} times)")
        assert len(finding["details"]["spans"]) == count
        row = rows[finding["msg_id"], finding["message"]]
        assert json.loads(row["details"])["occurrences"] == count
        assert f"<td>{mark_chinese(term)} ({count} times)</td>" in page  # 吃饭: lang="zh"
