"""findings.csv past what a spreadsheet's sheet holds is split, and the page says so (probe 19
#15): Excel opens a CSV of more than 1,048,576 rows without the rest and says nothing, so a
reviewer of a big run lost findings silently. The limit is made small for the tests."""

from __future__ import annotations

import csv
import io

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.archive.verify import verify_bag
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import DAY_MS
from auditor.report import ReportBuilder, RunInfo
from auditor.report.formats import csv as csv_format

NOV_1 = 1_793_491_200_000
SECRET = "split-secret"


def builder_with(findings: int) -> ReportBuilder:
    info = RunInfo(sequence=1, since_ms=NOV_1, until_ms=NOV_1 + DAY_MS, hour_timezone="UTC")
    builder = ReportBuilder(info)
    for number in range(findings):
        builder.observe_finding(
            {
                "msg_id": f"1{number:017d}",
                "category": "keyword",
                "rule": "en",
                "severity": "high",
                "message": f"finding {number}",
                "details": {"list": "en", "term": "kickback", "sent": NOV_1, "sender": "u"},
            }
        )
    return builder


def rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_findings_past_a_sheet_are_split_into_numbered_files_the_page_names(tmp_path, monkeypatch):
    whole = builder_with(7).render(tmp_path / "whole")
    monkeypatch.setattr(csv_format, "ROWS_PER_FILE", 3)

    files = builder_with(7).render(tmp_path / "split")

    names = ["findings-0001.csv", "findings-0002.csv", "findings-0003.csv"]
    assert [name for name in files if name.endswith(".csv")] == names
    assert not (tmp_path / "split" / "findings.csv").exists()
    parts = [rows(files[name].read_bytes()) for name in names]
    assert [len(part) for part in parts] == [4, 4, 2]  # the header, then 3, 3 and 1 findings
    assert all(part[0] == list(csv_format.COLUMNS) for part in parts)
    expected = rows(whole["findings.csv"].read_bytes())
    assert [expected[0], *(line for part in parts for line in part[1:])] == expected
    page = files["report.html"].read_text(encoding="utf-8")
    assert 'id="csv-split"' in page and "in 3 files of at most 3 findings each" in page
    assert all(f'<a href="{name}">{name}</a>' in page for name in names)
    assert 'href="findings.csv"' not in page


@pytest.mark.parametrize("findings", [0, 3])
def test_findings_that_fit_one_sheet_stay_one_findings_csv(tmp_path, monkeypatch, findings):
    monkeypatch.setattr(csv_format, "ROWS_PER_FILE", 3)
    files = builder_with(findings).render(tmp_path / "out")
    assert [name for name in files if name.endswith(".csv")] == ["findings.csv"]
    assert 'id="csv-split"' not in files["report.html"].read_text(encoding="utf-8")


def test_a_run_past_the_limit_signs_every_part_and_a_re_render_writes_the_same(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(csv_format, "ROWS_PER_FILE", 4)
    keys = generate_key_files(tmp_path / "keys", identity="test")
    options = EmulatorOptions(messages=300, days=1, client_secret=SECRET, mangled_rate=0.3)
    with run_emulator(options) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", "--quiet", hours=4)
        result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})
    assert result.exit_code in (0, 1), result.output
    [bag] = (tmp_path / "archive").glob("run-*")
    report = bag / "data" / "report"
    parts = sorted(path.name for path in report.glob("findings*.csv"))
    total = sum(1 for _ in (bag / "data" / "findings.jsonl").open())
    assert total > 4 and len(parts) == -(-total // 4) and "findings.csv" not in parts
    assert verify_bag(bag, load_public_key(keys.public_key)).problems == ()

    again = CliRunner().invoke(main, ["report", str(bag), "--out", str(tmp_path / "again")])

    assert again.exit_code in (0, 1), again.output
    for name in parts:
        assert (tmp_path / "again" / name).read_bytes() == (report / name).read_bytes()
