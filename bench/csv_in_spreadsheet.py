"""findings.csv opened in the real LibreOffice Calc: every text arrives exactly, no formula from
the data is evaluated (probe 19 #1). Not a benchmark and not in CI: LibreOffice is too big for
it (see the README's CSV paragraph); the rule itself is tested in tests/test_report_csv_cells.py.

    .venv/bin/python bench/csv_in_spreadsheet.py [--keep DIR]

Writes a findings.csv with the texts below in its msg_id, sender, term and matched cells through
the report's own CsvFormat, has `soffice --headless` import it as Excel would (comma separated,
UTF-8, quoted fields not forced to text, special numbers detected, formulas evaluated) and save it
as .xlsx, then reads each cell back from the .xlsx: its value, and the formula it holds if any.
Every cell of the CSV (all columns: the dates, the details JSON too) must read back as the text the
CSV holds (the text inside `="..."` for a wrapped one); exits 1 on a cell that does not, or on a
formula other than `="..."` around a text that `looks_numeric` or `_looks_like_a_month_date`.
"""

from __future__ import annotations

import argparse
import csv
import html
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.partitions import DAY_MS  # noqa: E402
from auditor.report import ReportBuilder, RunInfo  # noqa: E402
from auditor.report.cells import _looks_like_a_month_date, looks_numeric  # noqa: E402
from auditor.report.formats.csv import CsvFormat  # noqa: E402

NOV_1 = 1_793_491_200_000
# texts a spreadsheet turns into numbers, dates or times, and texts it must leave alone
TEXTS = [
    "200000070000025721",  # an 18-digit msg_id: 2.00000070000026E+17
    "1243830203519485436",
    "6228480741617507",  # a bank card: 6228480741617510
    "110101199003077777",  # a resident ID number
    "11010119900307777X",
    "007",
    "0",
    "13800138000",
    "+8613800138000",  # formula characters: a leading '
    "-5",
    "=1+2",
    "@SUM(1)",
    '=HYPERLINK("http://x.example/","open")',
    "1/2",  # a date (or a fraction)
    "2026-11-01",
    "12:30",
    "3%",
    "1e5",
    "1.50",
    "1,234",
    "(100)",
    "$100",
    " 42",
    "4 2",
    "abc123",
    '1"2',
    "内幕消息",
    "2026-11-01T08:00:00+08:00",
    "Jan-2026",  # dates written with a month's name
    "2026-Jan-05",
    "3-Mar",
    "Mar-3",
    "5 January 2026",
    "Dec 25, 2026",
    "May 2026",
    "March",  # a month's name alone stays text
]


def _wrapped(text: str) -> bool:
    return looks_numeric(text) or _looks_like_a_month_date(text)


def write_csv(folder: Path) -> Path:
    info = RunInfo(sequence=1, since_ms=NOV_1, until_ms=NOV_1 + DAY_MS, hour_timezone="+8")
    with ReportBuilder(info) as builder:
        for number, text in enumerate(TEXTS):
            finding = {
                "msg_id": text,
                "category": "pii",
                "rule": "bank_card",
                "severity": "high",
                "message": "check",
                "pointer": "/payload/bodies/0/msg",
                "details": {"detector": "bank_card", "term": text, "matched": text, "start": 0},
            }
            builder.observe_finding(finding, (NOV_1 + number * 1_001, text))
        return CsvFormat().write(builder.snapshot(), folder)


def convert(csv_path: Path) -> Path:
    # sep 44 (,), quote 34 ("), UTF-8 (76), from line 1, default formats, en-US, quoted fields
    # not as text, detect special numbers, -, -, -, all sheets, evaluate formulas
    options = "CSV:44,34,76,1,,1033,false,true,false,false,false,-1,true"
    profile = csv_path.parent / "profile"
    subprocess.run(
        [
            "soffice",
            "--headless",
            "--norestore",
            f"-env:UserInstallation=file://{profile}",
            f"--infilter={options}",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(csv_path.parent),
            str(csv_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return csv_path.with_suffix(".xlsx")


def cells(xlsx: Path) -> dict[str, tuple[str, str | None]]:
    """Cell reference -> (value as text, formula or None)."""
    with zipfile.ZipFile(xlsx) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        names = book.namelist()
        strings = (
            book.read("xl/sharedStrings.xml").decode() if "xl/sharedStrings.xml" in names else ""
        )
    shared = [
        html.unescape(re.sub(r"<[^>]+>", "", item))
        for item in re.findall(r"<si>(.*?)</si>", strings, re.S)
    ]
    found = {}
    for ref, attrs, body in re.findall(r'<c r="([A-Z]+\d+)"([^>]*?)(?:/>|>(.*?)</c>)', sheet, re.S):
        value = re.search(r"<v>(.*?)</v>", body or "", re.S)
        formula = re.search(r"<f[^>]*>(.*?)</f>", body or "", re.S)
        text = html.unescape(value.group(1)) if value else ""
        if 't="s"' in attrs:
            text = shared[int(text)]
        found[ref] = (text, html.unescape(formula.group(1)) if formula else None)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the CSV and .xlsx here and keep them")
    args = parser.parse_args(argv)
    if shutil.which("soffice") is None:
        print("soffice not found: apt-get install libreoffice-calc-nogui", file=sys.stderr)
        return 2
    folder = args.keep or Path(tempfile.mkdtemp(prefix="csv-in-calc-"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    xlsx = convert(write_csv(folder))
    elapsed = time.monotonic() - started
    got = cells(xlsx)
    with (folder / "findings.csv").open(encoding="utf-8-sig", newline="") as handle:
        written = list(csv.reader(handle))
    bad = 0
    for row, cells_written in enumerate(written, start=1):
        for index, cell in enumerate(cells_written):
            ref = f"{chr(ord('A') + index)}{row}"
            value, formula = got.get(ref, ("", None))
            text = cell[2:-1] if cell.startswith('="') and cell.endswith('"') else cell
            ok = value == text and (formula is None or (formula == f'"{text}"' and _wrapped(text)))
            bad += not ok
            if not ok or (index == 0 and row > 1):
                shown = f"formula ={formula}" if formula is not None else "no formula"
                print(
                    f"{'ok ' if ok else 'BAD'} {written[0][index]:8} {cell!r:46} "
                    f"-> {value!r} ({shown})"
                )
    expected = [f'="{text}"' if _wrapped(text) else text for text in TEXTS]
    if [row[0].removeprefix("'") for row in written[1:]] != [e.removeprefix("'") for e in expected]:
        print("BAD: the msg_id cells are not the texts written")
        bad += 1
    formulas = [(ref, f) for ref, (_v, f) in got.items() if f is not None]
    print(f"{len(formulas)} formula cells, all ours" if not bad else f"{bad} cells wrong")
    print(
        f"soffice import and save took {elapsed:.1f} s"
        + (f"; files in {folder}" if args.keep else "")
    )
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
