"""`auditor report BAG` reproduces the run's own findings.csv byte for byte (probe 19 #7), and no
report file holds the share secrets of the attachments (the records in the bag do)."""

from __future__ import annotations

import csv
import json

import pytest
import run_support
from markupsafe import escape

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import DAY_MS, HOUR_MS
from auditor.pipeline import run_audit
from auditor.records import timestamp_ms
from auditor.report import tables
from auditor.report.bag import render_bag, run_info_from_bag
from auditor.report.formats.csv import sent_at
from auditor.report.model import record_facts

SECRET = "csv-rerender-secret"


@pytest.fixture(scope="module")
def emulator():
    """A day of history, faults on: copies, truncated and garbage lines, failed requests."""
    options = EmulatorOptions(
        messages=1200,
        days=1,
        client_secret=SECRET,
        fail_rate=0.05,
        duplicate_rate=0.02,
        truncate_rate=0.05,
        garbage_rate=0.02,
    )
    with run_emulator(options) as running:
        yield running


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


@pytest.fixture(scope="module")
def audited(emulator, keys, tmp_path_factory):
    """The day run once into a bag, and the report `auditor report` renders from that bag."""
    folder = tmp_path_factory.mktemp("csv-rerender")
    settings = run_support.settings_for(
        emulator, keys, folder, SECRET, until_ms=DEFAULT_START_MS + DAY_MS
    )
    outcome = run_audit(settings)
    again = folder / "again"
    render_bag(outcome.bag_path, again)
    return outcome.bag_path, again


def records_of(bag) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((bag / "data" / "records").glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def share_secrets(value, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("secret", "thumb_secret") and isinstance(inner, str):
                found.add(inner)
            share_secrets(inner, found)
    elif isinstance(value, list):
        for inner in value:
            share_secrets(inner, found)
    return found


def test_the_run_and_a_re_render_write_the_same_findings_csv(audited):
    bag, again = audited
    signed = (bag / "data" / "report" / "findings.csv").read_bytes()
    findings = (bag / "data" / "findings.jsonl").read_text().splitlines()

    assert any(json.loads(line)["category"] == "schema" for line in findings)
    assert signed.count(b"\r\n") == len(findings) + 1
    assert (again / "findings.csv").read_bytes() == signed


def test_the_run_and_a_re_render_state_the_same_archived_on_the_bags_date(audited):
    bag, again = audited
    signed = json.loads((bag / "data" / "report" / "summary.json").read_text())
    rendered = json.loads((again / "summary.json").read_text())
    info = dict(line.split(": ", 1) for line in (bag / "bag-info.txt").read_text().splitlines())

    expected = f"{info['Bagging-Date']} by easemob-auditor {info['Tool-Version']}"
    assert signed["run"]["archived_on"] == rendered["run"]["archived_on"] == expected


def test_no_report_file_holds_an_attachments_share_secret(audited):
    bag, again = audited
    secrets = share_secrets([line["record"] for line in records_of(bag)], set())
    files = [*(bag / "data" / "report").iterdir(), *again.iterdir()]
    page = (bag / "data" / "report" / "report.html").read_text(encoding="utf-8")

    assert len(secrets) > 50
    assert sorted(path.name for path in files) == sorted(
        ["findings.csv", "summary.json", "report.html"] * 2 + ["findings.jsonl"]
    )
    for path in files:
        text = path.read_text(encoding="utf-8-sig")
        assert not [secret for secret in secrets if secret in text], path
    # the schema table still shows the records its findings are about, secrets hidden
    assert page.count(str(escape(tables.SHARE_SECRET))) >= 1
    assert "&#34;payload&#34;" in page


def test_each_csv_row_names_its_records_send_time_and_sender(audited):
    bag, again = audited
    summary = json.loads((again / "summary.json").read_text())
    tz = run_info_from_bag(bag).timezone()
    by_seq = {line["seq"]: line["record"] for line in records_of(bag)}
    findings = [
        json.loads(line) for line in (bag / "data" / "findings.jsonl").read_text().splitlines()
    ]
    with (again / "findings.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))

    assert summary["time_zone"]
    placed = 0
    for finding, row in zip(findings, rows, strict=True):
        if finding.get("seq") in by_seq:
            record = by_seq[finding["seq"]]
            _msg_id, sent, _kind, _chat, who = record_facts(record)
            assert sent == timestamp_ms(record)
            assert row["sent_at"] == sent_at(sent, tz)
            assert row["sender"].removeprefix('="').removesuffix('"') == (who or "")
            placed += 1
    assert placed > 100


def test_a_later_run_over_an_audited_window_says_whose_report_has_the_findings(
    emulator, keys, tmp_path
):
    """Probe 19 #10: the later run archives and reports nothing about those messages; its
    archived-earlier findings name the run and bag whose report has their findings."""
    first = run_audit(run_support.settings_for(emulator, keys, tmp_path, SECRET))
    later = run_audit(
        run_support.settings_for(
            emulator, keys, tmp_path, SECRET, until_ms=DEFAULT_START_MS + 8 * HOUR_MS
        )
    )
    findings = [
        json.loads(line)
        for line in (later.bag_path / "data" / "findings.jsonl").read_text().splitlines()
    ]
    earlier = [f for f in findings if f["rule"] == "archived-earlier"]

    assert len(earlier) == 6
    for finding in earlier:
        assert set(finding["details"]) == {"hour", "first_run", "messages"}
        assert finding["message"].endswith(
            f"not archived again, nor reported here: their findings are in run 1's report "
            f"(bag {first.bag_path.name}, data/report/)"
        )
