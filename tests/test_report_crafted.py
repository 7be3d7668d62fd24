"""`auditor report` on a crafted bag: one line and exit 2, never a hang, a traceback, a read
outside the bag or memory without bound; and its exit code follows its verdict."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from click.testing import CliRunner
from test_report_bag import BAG_INFO, write_bag

from auditor.archive import untrusted
from auditor.cli import main


def _report(bag, out, *extra: str):
    return CliRunner().invoke(main, ["report", str(bag), "-o", str(out), *extra])


def _first_records_file(bag):
    return sorted((bag / "data" / "records").glob("*.jsonl"))[0]


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("name", ["bag-info.txt", "bagit.txt", "data/VERIFY.txt"])
def test_a_fifo_among_the_tag_files_is_refused_without_waiting_for_a_writer(tmp_path, name):
    bag, _ = write_bag(tmp_path, records=10)
    (bag / name).unlink()
    os.mkfifo(bag / name)

    result = _report(bag, tmp_path / "out")

    assert _error(result) == f"auditor: error: {bag / name}: is a FIFO, not a regular file\n"


def test_an_unlisted_fifo_among_the_record_files_is_refused(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    fifo = bag / "data" / "records" / "2099010100.jsonl"
    os.mkfifo(fifo)

    result = _report(bag, tmp_path / "out")

    assert _error(result) == f"auditor: error: {fifo}: is a FIFO, not a regular file\n"


def test_a_device_as_findings_is_refused(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    (bag / "data" / "findings.jsonl").unlink()
    (bag / "data" / "findings.jsonl").symlink_to("/dev/zero")

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {bag / 'data' / 'findings.jsonl'}: is a symbolic link, "
        "not a file of the bag\n"
    )


def test_a_records_file_linked_to_outside_the_bag_is_never_read_into_the_report(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(_first_records_file(bag).read_bytes().replace(b"txt", b"LEAKED"))
    link = bag / "data" / "records" / "2099010100.jsonl"
    link.symlink_to(outside)

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {link}: is a symbolic link, not a file of the bag\n"
    )
    assert not (tmp_path / "out" / "report.html").exists()


def test_a_records_folder_linked_to_outside_the_bag_is_refused(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    records = bag / "data" / "records"
    records.rename(tmp_path / "elsewhere")
    records.symlink_to(tmp_path / "elsewhere")

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {records}: is a symbolic link, not a folder of the bag\n"
    )


def test_a_stored_summary_linked_elsewhere_is_refused(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    (tmp_path / "summary.json").write_text("{}")
    (bag / "data" / "summary.json").symlink_to(tmp_path / "summary.json")

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {bag / 'data' / 'summary.json'}: is a symbolic link, "
        "not a file of the bag\n"
    )


def test_a_gzipped_records_file_is_not_gunzipped(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    records = _first_records_file(bag)
    records.write_bytes(gzip.compress(records.read_bytes()))

    result = _report(bag, tmp_path / "out")

    assert _error(result).startswith(f"auditor: error: {records}:1: not an archived record line")


def test_a_line_past_the_cap_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(untrusted, "LINE_LIMIT", 4_000)
    bag, _ = write_bag(tmp_path, records=10)
    records = _first_records_file(bag)
    records.write_bytes(b'{"record": {"txt": "' + b"x" * 5_000 + b'"}, "seq": 0}\n')

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {records}:1: a line longer than 4,000 bytes, which no archived line "
        "is; run `auditor verify` on the bag\n"
    )


@pytest.mark.parametrize("encoding", ["rot13", "utf-16", "hex_codec"])
def test_a_bagit_txt_declaring_another_encoding_is_refused_in_one_line(tmp_path, encoding):
    bag, _ = write_bag(tmp_path, records=10)
    (bag / "bagit.txt").write_text(f"BagIt-Version: 1.0\nTag-File-Character-Encoding: {encoding}\n")

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {bag / 'bagit.txt'}: not a readable BagIt bag (a BagIt-Version and "
        f"Tag-File-Character-Encoding UTF-8 expected, found {encoding!r})\n"
    )


def test_a_bag_info_past_its_cap_is_refused_at_once(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    info = bag / "bag-info.txt"
    info.write_text(info.read_text() + "Policy-File: " + "<" * 3_000_000 + "\n")

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {info}: is larger than the 1,048,576 bytes such a file holds\n"
    )


def test_a_bag_info_value_with_a_carriage_return_is_refused(tmp_path):
    info = dict(BAG_INFO, **{"Tool-Version": "0.1.0\rRun-Sequence: 7"})
    bag, _ = write_bag(tmp_path, info=info, records=10)

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {bag / 'bag-info.txt'}: the value of Tool-Version holds a carriage "
        "return, which other readers take for a line break; run `auditor verify` on the bag\n"
    )


def test_bag_info_is_read_as_verify_reads_it_a_repeated_label_is_refused(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    info = bag / "bag-info.txt"
    info.write_text(info.read_text() + "Run-Sequence: 7\n")
    line = info.read_text().count("\n")

    result = _report(bag, tmp_path / "out")

    assert _error(result) == (
        f"auditor: error: {info}:{line}: Run-Sequence appears more than once; "
        "run `auditor verify` on the bag\n"
    )


@pytest.mark.parametrize(
    ("label", "value", "said"),
    [
        ("Run-Sequence", "7" * 5000, "is not a whole number"),
        ("Merkle-Tree-Size", "1_000", "is not a whole number"),
        ("Window-Since", "x" * 3000, "is not an ISO 8601 time"),
    ],
)
def test_a_damaged_bag_info_value_is_quoted_cut_to_a_readable_length(tmp_path, label, value, said):
    """The whole value was quoted: a count of 5,000 digits made the one error line 5,000
    characters long."""
    bag, _ = write_bag(tmp_path, info=dict(BAG_INFO, **{label: value}), records=10)

    result = _report(bag, tmp_path / "out")

    quoted = repr(value) if len(value) <= 40 else f"{value[:40]!r}… ({len(value):,} characters)"
    assert _error(result) == f"auditor: error: {bag}/bag-info.txt: {label} {quoted} {said}\n"


def test_a_pass_verdict_exits_0_and_a_fail_verdict_exits_1(tmp_path):
    bag, _ = write_bag(tmp_path, records=10)
    failing = _report(bag, tmp_path / "failing", "--fail-on", "info")
    (bag / "data" / "findings.jsonl").write_bytes(b"")
    passing = _report(bag, tmp_path / "passing", "--fail-on", "info")

    assert failing.exit_code == 1, failing.output
    assert failing.stdout.splitlines()[-1].startswith("FAIL: ")
    assert passing.exit_code == 0, passing.output
    assert passing.stdout.splitlines()[-1] == "PASS: no findings at or above 'info'"


@pytest.mark.parametrize(
    ("since", "until", "unit", "first"),
    [
        ("2026-10-01T00:00:00Z", "2026-11-01T06:00:00Z", "day", "2026-10-01"),
        ("2024-01-01T00:00:00Z", "2026-11-02T00:00:00Z", "month", "2024-01"),
        ("0001-01-02T00:00:00Z", "9999-12-30T00:00:00Z", "year", "0001"),
    ],
)
def test_a_window_of_years_is_charted_by_month_or_year_not_a_column_a_day(
    tmp_path, since, until, unit, first
):
    """A bag-info window edited to span millennia took `report` 36 s and 2.4 GB, a column a day."""
    bag, _ = write_bag(
        tmp_path, info=dict(BAG_INFO, **{"Window-Since": since, "Window-Until": until}), records=10
    )

    result = _report(bag, tmp_path / "out", "--fail-on", "none")

    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "report.html").read_text()
    assert f"Messages per {unit} (UTC+08:00)" in page
    assert f"Findings per {unit} by severity (UTC+08:00)" in page
    summary = json.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert summary["run"]["since"] == since  # ISO 8601: the year 1 as 0001
    assert f'text-anchor="middle">{first}</text>' in page  # the first column's label


def test_a_reference_time_the_zone_would_shift_before_the_year_1_is_shown_in_utc(tmp_path):
    info = BAG_INFO | {"Hour-Timezone": "-05:00", "Policy-Reference-Time": "0001-01-01T00:00Z"}
    bag, _ = write_bag(tmp_path, info=info, records=10)

    result = _report(bag, tmp_path / "out", "--fail-on", "none")

    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'judged as of <span id="reference-time">0001-01-01T00:00:00Z</span>' in page
