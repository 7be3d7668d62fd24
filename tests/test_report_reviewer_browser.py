"""The HTML report in headless Chromium as a reviewer uses it: printing keeps every column, IDs
wrap in their cells and sort exactly, the filter says what it searched, badges are drawn, the
colours are readable. Uses Debian's `chromium` through Playwright, as test_report_browser does.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report_browser import Visit, browser, sync_api  # noqa: F401 (a fixture)
from test_report_reviewer_page import HIDDEN, keyword, record, run_info, spoof_builder

from auditor.report import ReportBuilder

pytestmark = pytest.mark.browser

# A4 landscape less the page's 10 mm margins, in CSS pixels (96 per inch)
PRINT_WIDTH = round((297 - 20) / 25.4 * 96)


def render(tmp_path: Path, builder: ReportBuilder) -> Path:
    return builder.render(tmp_path / "report")["report.html"]


def wide_builder() -> ReportBuilder:
    """Every table with something wide: a 200-digit msg_id, a 5,000-character word, a long
    pointer and rule, a schema record."""
    builder = ReportBuilder(run_info())
    long_id, word = "7" * 200, "W" * 5_000
    for msg_id, text in ((long_id, "kickback " + word), ("900000000000000001", "kickback")):
        rec = record(msg_id, text=text)
        builder.observe_record(rec, "2026110101")
        finding = keyword(msg_id, text)
        finding["pointer"] = "/payload/ext/" + "p" * 300
        finding["rule"] = "r" * 120
        builder.observe_finding(finding)
        builder.observe_finding(
            {
                "msg_id": msg_id,
                "category": "schema",
                "rule": "https://schemas.easemob-auditor.dev/body/" + "t" * 100 + ".json",
                "severity": "medium",
                "message": "payload.bodies[0].type: unknown message type " + "T" * 150,
                "pointer": "/payload/bodies/0/type",
                "details": {"keyword": "enum", "type": "txt", "record": rec},
            }
        )
        for category in ("retention", "hold", "changed"):
            builder.observe_finding(
                {
                    "msg_id": msg_id,
                    "category": category,
                    "rule": "rule-" + "x" * 100,
                    "severity": "low",
                    "message": "message " + "M" * 300,
                    "pointer": "/" + "q" * 100,
                    "details": {
                        "rule": "rule-" + "x" * 100,
                        "disposition": "review",
                        "retain_until_ms": 1_796_056_200_000,
                        "reason": "R" * 200,
                        "losing_rules": [["l" * 60, "why " * 25]],
                    },
                }
            )
    return builder


HEADINGS = """() => [...document.querySelectorAll("table.data")].map(table => ({
  id: table.id,
  headings: [...table.tHead.rows[0].cells].map(cell =>
    cell.getAttribute("data-label") || cell.textContent.trim()),
  overflow: table.parentNode.scrollWidth - table.parentNode.clientWidth,
  right: Math.max(...[...table.tHead.rows[0].cells].map(c => c.getBoundingClientRect().right)),
}))"""


def test_printing_keeps_every_column_of_every_table(browser, tmp_path):  # noqa: F811
    page_file = render(tmp_path, wide_builder())
    visit = Visit(browser, page_file)
    visit.page.set_viewport_size({"width": PRINT_WIDTH, "height": 800})
    visit.page.emulate_media(media="print")
    tables = visit.page.evaluate(HEADINGS)
    assert {table["id"] for table in tables} == {
        "data-schema",
        "data-keyword",
        "data-retention",
        "data-hold",
        "data-other",
    }
    for table in tables:
        assert table["overflow"] <= 1, f"{table['id']} is cut off in print"
        assert table["right"] <= PRINT_WIDTH + 1, f"{table['id']} runs off the page"
    # the page asks for landscape, and Chromium's own PDF has every heading of every table
    pdf = tmp_path / "report.pdf"
    visit.page.pdf(path=str(pdf), prefer_css_page_size=True)
    assert pdf.stat().st_size > 10_000
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        words = set(text.split())  # a heading wrapped in its cell comes out a line at a time
        for table in tables:
            for heading in table["headings"]:
                assert set(heading.split()) <= words, f"{table['id']}: {heading!r} not printed"
        assert "Normalisations" in words and "Confidence" in words and "Pointer" in words
    assert visit.errors == []


def test_a_long_id_wraps_inside_its_cell_and_shows_whole(browser, tmp_path):  # noqa: F811
    visit = Visit(browser, render(tmp_path, wide_builder()))
    cells = visit.page.evaluate(
        """() => [...document.querySelectorAll("#data-keyword td.id")].map(cell => ({
          text: cell.textContent,
          spill: cell.scrollWidth - cell.clientWidth,
          right: cell.getBoundingClientRect().right,
          next: cell.nextElementSibling.getBoundingClientRect().left,
          lines: Math.round(cell.getBoundingClientRect().height / 10),
        }))"""
    )
    long = next(cell for cell in cells if cell["text"].startswith("777"))
    assert long["text"] == "7" * 200
    assert long["spill"] <= 0 and long["right"] <= long["next"] + 1
    short = next(cell for cell in cells if cell["text"] == "900000000000000001")
    assert short["spill"] <= 0
    height = visit.page.evaluate(
        """() => { const cell = [...document.querySelectorAll("#data-keyword td.id")]
          .find(c => c.textContent === "900000000000000001");
          const range = document.createRange(); range.selectNodeContents(cell);
          return range.getClientRects().length; }"""
    )
    assert height == 1  # an ordinary ID stays on one line


def test_invisible_characters_are_drawn_as_badges(browser, tmp_path):  # noqa: F811
    visit = Visit(browser, render(tmp_path, spoof_builder()))
    shown = visit.page.inner_text("main")
    for char in HIDDEN:
        assert char not in shown
    ids = visit.page.locator("#data-keyword td.id").all_inner_texts()
    assert len(ids) == len(set(ids)) == 3
    assert "900000000000000001U+200B" in ids
    badge = visit.page.locator("#data-keyword td.id .cf").first
    box = badge.bounding_box()
    assert box and box["width"] > 10 and box["height"] > 5
    assert badge.get_attribute("title") == "U+200B ZERO WIDTH SPACE"
    text = visit.page.locator("#data-keyword td.quote", has_text="transfer").inner_text()
    assert text.startswith("transfer U+202E00.001$U+202C to acct")
    labels = visit.page.evaluate(
        """() => [...document.querySelectorAll("#chart-top-senders svg > text")]
          .map(t => [...t.childNodes].filter(n => n.nodeName !== "title")
            .map(n => n.textContent).join(""))
          .filter(t => isNaN(t.replace(/,/g, "")))"""
    )
    assert len(labels) == len(set(labels)) == 4  # alice, alice+RLO, the reversed one, carol
    assert "alice\u27e8U+202E\u27e9" in labels
    assert visit.errors == []


def test_the_filter_of_a_cut_table_says_it_searched_only_the_rows_shown(browser, tmp_path):  # noqa: F811
    builder = ReportBuilder(run_info(), table_rows=20)
    for number in range(50):
        msg_id = f"9000000000000{number:05d}"
        builder.observe_record(record(msg_id, text="kickback"), "2026110101")
        builder.observe_finding(
            keyword(msg_id, "kickback", severity="high" if number < 20 else "low")
        )
    visit = Visit(browser, render(tmp_path, builder))
    box = visit.page.locator("#table-keyword .controls input")
    assert box.get_attribute("placeholder") == "Filter the 20 rows shown"
    assert "of 50" in box.get_attribute("aria-label")
    status = visit.page.locator("#table-keyword .controls .status")
    box.fill("900000000000000049")  # a low finding the page did not draw
    sync_api.expect(status).to_have_text(re.compile("^no matching rows"))
    assert "searched only the 20 rows shown of 50" in status.inner_text()
    assert "findings.csv and findings.jsonl hold all" in status.inner_text()
    box.fill("900000000000000001")
    sync_api.expect(status).to_have_text(
        re.compile("^rows 1\u20131 of 1 \\(searched only the 20 rows shown of 50")
    )
    assert visit.errors == []


def test_message_ids_sort_as_exact_digit_strings(browser, tmp_path):  # noqa: F811
    # one apart: equal as JavaScript numbers (doubles hold 15 to 17 digits)
    ids = ["900000000000000003", "900000000000000001", "1000000000000000000", "900000000000000002"]
    ids += ["99999999999999999", "0900000000000000004"]
    builder = ReportBuilder(run_info())
    for msg_id in ids:
        builder.observe_record(record(msg_id, text="kickback"), "2026110101")
        builder.observe_finding(keyword(msg_id, "kickback"))
    visit = Visit(browser, render(tmp_path, builder))
    heading = visit.page.locator("#data-keyword th button", has_text="Message ID")
    heading.click()
    shown = visit.page.locator("#data-keyword td.id").all_inner_texts()
    exact = sorted(ids, key=lambda each: (len(each.lstrip("0")), each.lstrip("0")))
    assert shown == exact
    heading.click()
    assert visit.page.locator("#data-keyword td.id").all_inner_texts() == exact[::-1]
    assert visit.errors == []


CONTRAST = """(selector) => {
  const lum = c => { const v = c.match(/\\d+(\\.\\d+)?/g).map(Number).slice(0, 3).map(x => {
    x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const element = document.querySelector(selector);
  const fg = lum(getComputedStyle(element).color), bg = lum("rgb(255, 255, 255)");
  return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
}"""


def test_severity_colours_are_readable_and_charts_say_their_numbers_in_words(browser, tmp_path):  # noqa: F811
    builder = spoof_builder()
    builder.observe_finding(keyword("900000000000000002", "kickback", severity="medium"))
    visit = Visit(browser, render(tmp_path, builder))
    for severity in ("high", "medium", "low", "info"):
        ratio = visit.page.evaluate(CONTRAST, f"#by-severity .sev-{severity}")
        assert ratio >= 4.5, f"{severity}: {ratio:.2f}:1"
    numbers = visit.page.locator("#chart-top-senders details.chart-data")
    numbers.locator("summary").click()
    headings = numbers.locator("th").all_inner_texts()
    assert headings == ["Bar", "high", "medium", "low", "info", "Total"]
    rows = [re.sub(r"\s+", " ", row) for row in numbers.locator("tbody tr").all_inner_texts()]
    assert "alice 1 0 0 0 1" in rows
    assert "\u2066ecila\u2069" not in " ".join(rows) and any("U+2066" in row for row in rows)
    assert "table below" in visit.page.locator("#chart-top-senders svg").get_attribute("aria-label")
