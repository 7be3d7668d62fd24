"""findings.csv for spreadsheets (probe 19 #1, #8): a text a spreadsheet would turn into a number
or date arrives as text, formulas from the data stay neutralised, and each finding says when its
record was sent and by whom. bench/csv_in_spreadsheet.py checks the same in the real LibreOffice.
"""

import csv
import io

import pytest
from markupsafe import escape

from auditor.partitions import DAY_MS, HOUR_MS
from auditor.report import ReportBuilder, RunInfo, tables
from auditor.report import model as report_model
from auditor.report.cells import looks_numeric as _looks_numeric
from auditor.report.cells import spreadsheet_cell as _cell
from auditor.report.formats.csv import COLUMNS, row, sent_at

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def info(**overrides) -> RunInfo:
    values = {"sequence": 1, "since_ms": NOV_1, "until_ms": NOV_1 + DAY_MS, "hour_timezone": "+8"}
    return RunInfo(**(values | overrides))


def finding(msg_id, **details) -> dict:
    return {
        "msg_id": msg_id,
        "category": "pii",
        "rule": "bank_card",
        "severity": "high",
        "message": "a bank card number",
        "pointer": "/payload/bodies/0/msg",
        "details": {"detector": "bank_card"} | details,
    }


def csv_rows(builder: ReportBuilder, tmp_path) -> list[dict[str, str]]:
    files = builder.render(tmp_path / "out")
    text = files["findings.csv"].read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    "text",
    [
        "200000070000025721",  # an 18-digit msg_id, 2.00000070000026E+17 in a spreadsheet
        "6228480741617507",  # a card number, 6228480741617510
        "007",
        "0",
        "1/2",
        "2026-11-01",
        "12:30",
        "3%",
        "1e5",
        "1.50",
        "1,234",
        "(100)",
        "$100",
        " 42",
    ],
)
def test_a_text_a_spreadsheet_reads_as_a_number_or_date_is_written_as_a_text_formula(text):
    assert _looks_numeric(text)
    assert _cell(text) == f'="{text}"'
    assert row(finding(text, term=text, matched=text))[COLUMNS.index("msg_id")] == f'="{text}"'
    assert row(finding("1", matched=text))[COLUMNS.index("matched")] == f'="{text}"'


@pytest.mark.parametrize(
    "text",
    [
        "Jan-2026",  # LibreOffice: 46023, a date
        "2026-Jan-05",
        "3-Mar",  # Excel: 3 March
        "Mar-3",
        "1 Jan",
        "5 January 2026",
        "Dec 25, 2026",
        "may 2026",
        "Sept 5",
        "Jan 5 2026 10:00 pm",
    ],
)
def test_a_date_written_with_a_months_name_is_written_as_a_text_formula(text):
    assert _cell(text) == f'="{text}"'
    assert row(finding(text, matched=text))[COLUMNS.index("msg_id")] == f'="{text}"'
    assert row(finding("1", matched=text))[COLUMNS.index("matched")] == f'="{text}"'


@pytest.mark.parametrize(
    "text", ["March", "Monday", "Jane-2026", "Mayday 5", "abc 1 Jan", "1 Jan x", "Decide 3"]
)
def test_a_months_name_among_other_words_stays_as_it_is(text):
    assert _cell(text) == text
    assert row(finding(text))[COLUMNS.index("msg_id")] == text


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("-5", "'-5"),
        ("+8613800138000", "'+8613800138000"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t1", "'\t1"),
        ('=HYPERLINK("http://x.example/","1")', '\'=HYPERLINK("http://x.example/","1")'),
        ('1"2', '1"2'),  # a quote would end the formula's string: never wrapped
        ('1")&HYPERLINK("x', '1")&HYPERLINK("x'),
        ("11010119900307777X", "11010119900307777X"),
        ("abc123", "abc123"),
        ("内幕消息", "内幕消息"),
        ("", ""),
        (".", "."),
        ("2026-11-01T08:00:00+08:00", "2026-11-01T08:00:00+08:00"),
        ("1" * 256, "1" * 256),  # longer than a formula's string may be in Excel
    ],
)
def test_formula_text_keeps_its_quote_and_no_other_text_is_ever_wrapped(text, cell):
    assert _cell(text) == cell
    assert row(finding(text))[COLUMNS.index("msg_id")] == cell


def test_whole_numbers_stay_numbers_unless_a_spreadsheet_would_round_them():
    assert _cell(3) == 3
    assert _cell(10**15 - 1) == 10**15 - 1
    assert _cell(10**15) == f'="{10**15}"'
    assert _cell(-(10**17) - 1) == f'="{-(10**17) - 1}"'
    assert _cell(0.95) == 0.95
    assert _cell(0.1 + 0.2) == '="0.30000000000000004"'


def test_the_csv_names_each_findings_send_time_and_sender_after_its_msg_id(tmp_path):
    builder = ReportBuilder(info())
    builder.observe_finding(finding("200000070000025721"), (NOV_1 + 1_500, "alice"))
    builder.observe_finding(finding("2"), (NOV_1 + HOUR_MS, "10086"))
    builder.observe_finding(finding("gone"))  # about no record this report sees

    rows = csv_rows(builder, tmp_path)

    assert list(rows[0])[:4] == ["msg_id", "sent_at", "sender", "category"]
    assert list(rows[0])[3:] == [name for name in COLUMNS if name not in ("sent_at", "sender")][1:]
    assert [(r["msg_id"], r["sent_at"], r["sender"]) for r in rows] == [
        ('="200000070000025721"', "2026-11-01T08:00:01.500+08:00", "alice"),
        ('="2"', "2026-11-01T09:00:00+08:00", '="10086"'),
        ("gone", "", ""),
    ]


def test_sent_at_is_iso_in_the_reports_zone():
    from datetime import UTC, timedelta, timezone

    assert sent_at(NOV_1, UTC) == "2026-11-01T00:00:00+00:00"
    assert sent_at(NOV_1 + 7, timezone(timedelta(hours=-5))) == "2026-10-31T19:00:00.007-05:00"
    assert sent_at(None, UTC) == ""
    assert sent_at(253_402_300_799_000, timezone(timedelta(hours=8))) == "9999-12-31T23:59:59Z"


@pytest.mark.parametrize("in_memory", [None, 2])
def test_findings_that_come_before_their_record_get_its_place_in_order(
    tmp_path, monkeypatch, in_memory
):
    """A finding about a msg_id no record seen yet has (as a bag's partition findings) is placed
    when the record comes; the CSV still lists the findings in their order, each with its
    record's time and sender, also once those places moved to disk."""
    if in_memory is not None:
        monkeypatch.setattr(report_model, "LATE_IN_MEMORY", in_memory)
    builder = ReportBuilder(info(hour_timezone="UTC"))
    names = ["a", "b", "c", "d", "e"]
    for name in names:
        builder.observe_finding(finding(name))
    builder.observe_finding(finding("placed"), (NOV_1, "zoe"))
    for number, name in reversed(list(enumerate(names))):
        record = {
            "msg_id": name,
            "timestamp": NOV_1 + number * HOUR_MS,
            "from": f"user-{name}",
            "chat_type": "chat",
            "payload": {"bodies": [{"type": "txt", "msg": "x"}]},
        }
        builder.observe_record(record, "x")

    rows = csv_rows(builder, tmp_path)

    assert [(r["msg_id"], r["sent_at"], r["sender"]) for r in rows] == [
        (name, f"2026-11-01T{number:02d}:00:00+00:00", f"user-{name}")
        for number, name in enumerate(names)
    ] + [("placed", "2026-11-01T00:00:00+00:00", "zoe")]
    assert (builder._late._disk is not None) == (in_memory is not None)


def test_a_schema_finding_shows_its_record_on_the_page_but_not_in_the_csv(tmp_path):
    """The run hands the report the record beside the finding; the page shows it, its share
    secrets hidden, and the CSV has the finding as the bag holds it."""
    record = {
        "msg_id": "7",
        "timestamp": NOV_1,
        "chat_type": "privatechat",
        "from": "alice",
        "payload": {
            "bodies": [
                {
                    "type": "img",
                    "url": "u",
                    "secret": "s3cr3t-share",
                    "thumb_secret": "thumb-s3cr3t",
                }
            ]
        },
    }
    schema = {
        "msg_id": "7",
        "category": "schema",
        "rule": "envelope",
        "severity": "medium",
        "message": "chat_type: not one of the chat types",
        "pointer": "/chat_type",
        "details": {"keyword": "enum"},
        "seq": 0,
    }
    builder = ReportBuilder(info())
    builder.observe_finding(schema, (NOV_1, "alice"), record)

    (csv_row,) = csv_rows(builder, tmp_path)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")

    assert csv_row["details"] == '{"keyword":"enum"}'
    assert "s3cr3t" not in (tmp_path / "out" / "findings.csv").read_text(encoding="utf-8-sig")
    assert "privatechat" in page and "s3cr3t" not in page
    assert str(escape(tables.SHARE_SECRET)) in page


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("text", ["x" * 40_000, "=" + "x" * 40_000, "😀" * 20_000, "a😀" * 11_000])
def test_a_text_longer_than_a_cell_holds_is_cut_saying_so(text):
    cell = _cell(text)

    assert _units(cell) <= 32_767
    assert cell.endswith(
        f" [cut: {len(text):,} characters in all; the whole value is in findings.jsonl]"
    )
    body = cell.removeprefix("'").partition(" [cut: ")[0]
    assert len(body) > 30_000 // 2 and text.startswith(body)
    cell.encode("utf-8")  # no surrogate half left by the cut


@pytest.mark.parametrize("text", ["x" * 32_767, "😀" * 16_383, "'" * 32_767])
def test_a_text_a_cell_holds_is_not_cut(text):
    assert _cell(text) == text


def test_the_csv_cuts_a_long_match_and_findings_jsonl_keeps_it_whole(tmp_path):
    matched = "6" * 10 + "号" * 40_000
    builder = ReportBuilder(info())
    builder.observe_finding(finding("7", matched=matched), (NOV_1, "alice"))

    (csv_row,) = csv_rows(builder, tmp_path)
    jsonl = (tmp_path / "out" / "findings.jsonl").read_text(encoding="utf-8")

    assert _units(csv_row["matched"]) <= 32_767
    assert csv_row["matched"].startswith("6" * 10 + "号" * 100)
    assert "[cut: 40,010 characters in all" in csv_row["matched"]
    assert _units(csv_row["details"]) <= 32_767
    assert matched in jsonl


ODD_VALUES = [
    None,
    "",
    "plain text",
    'a "quoted" word',
    "=1+1",
    "-5",
    "@SUM(A1)",
    "\tx",
    "007",
    "1/2",
    "Jan-2026",
    "march on",
    "may be",
    "Dec",
    "NUL\0inside",
    "\0",
    '"\0"',
    "x" * 20_000,
    "=" + "y" * 40_000,
    "🙂" * 17_000,
    "中文，内幕消息",
    "line\r\nbreak",
    0,
    -1,
    10**15,
    -(10**15),
    1.5,
    0.1 + 0.2,
    1e300,
    True,
    False,
    [1, "a"],
    {"k": None},
]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_a_findings_line_is_what_the_csv_writer_writes_of_its_row(value):
    """`row_line`, the CSV's fast path, writes what `csv_line(row(...))` does, whatever a
    column holds."""
    from auditor.report.formats.csv import SendTimes, csv_line, row_line

    keys = ("matched", "start", "end", "confidence", "reason", "keyword", "type", "file", "line")
    shown = {
        "msg_id": value,
        "category": value,
        "rule": value,
        "severity": value,
        "message": value,
        "pointer": value,
        "details": {key: value for key in keys} | {"list": value, "term": value},
    }
    sent = SendTimes(info().timezone())
    sender = value if isinstance(value, str) else None
    for place in ((NOV_1 + 1_234, sender), (None, None), (NOV_1 - 1, "u")):
        expected = csv_line(row(shown, place, sent))
        assert row_line(shown, place, sent) == expected
        assert next(csv.reader(io.StringIO(expected, newline=""))) == next(
            csv.reader(io.StringIO(row_line(shown, place, sent), newline=""))
        )
