"""The Chinese report page in real headless Chromium: axe finds nothing, and the table controls
report.js adds (sort, filter, pages, the status line a screen reader speaks) work and speak
Chinese."""

from pathlib import Path

import pytest
from test_report_axe_browser import Checked, axe_source, open_every_row  # noqa: F401 (a fixture)
from test_report_browser import browser, sync_api  # noqa: F401 (a fixture)
from test_report_reviewer_page import hold, run_info
from test_report_zh_page import english_left, full_builder

from auditor.emulator.dataset import SyntheticHistory
from auditor.partitions import Partition
from auditor.report import ReportBuilder
from auditor.report.formats import default_formats
from auditor.report.synthetic import planted_findings

pytestmark = pytest.mark.browser

# what report.js writes into the page: the controls' names, hints and status lines
SCRIPT_TEXT = """() => [...document.querySelectorAll('.controls, th button.sort, [role=group]')]
  .flatMap(e => [e.getAttribute('aria-label'), e.title, e.placeholder,
    e.matches('.controls') ? e.innerText : ''])
  .concat([...document.querySelectorAll('.controls input')].flatMap(e =>
    [e.placeholder, e.title, e.getAttribute('aria-label')]))
  .filter(Boolean)"""


def paged_report(out: Path) -> Path:
    """A Chinese page whose keyword table runs to several pages of 50 rows."""
    history = SyntheticHistory(messages=1_000, days=1)
    builder = ReportBuilder(run_info(since_ms=history.start_ms, until_ms=history.end_ms))
    for index in range(len(history)):
        truth = history.truth(index)
        builder.observe_record(truth.record, Partition.containing(history.timestamp(index)).label())
        for finding in planted_findings(truth):
            builder.observe_finding(finding)
        if index % 60 == 0:
            builder.observe_finding(hold(truth.record.get("msg_id"), "诉讼保全"))
        builder.observe_verdict("keep", "default-3y")
    return builder.render(out, default_formats("zh-CN"))["report.html"]


def test_the_chinese_page_passes_axe_sorted_filtered_paged_and_narrow(
    browser,  # noqa: F811
    axe_source,  # noqa: F811
    tmp_path,
):
    checked = Checked(browser, paged_report(tmp_path / "paged"), axe_source)
    page = checked.page
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    # Chinese type has no italic: the note of a missing policy stands upright
    style = "getComputedStyle(document.querySelector('#policy-missing')).fontStyle"
    assert page.evaluate(style) == "normal"
    checked.check("as opened")
    keyword = page.locator("#table-keyword")
    total = int(page.locator("#data-keyword").get_attribute("data-shown"))
    assert total > 50
    status = keyword.locator(".status")
    assert status.inner_text() == f"第 1\u201350 行，共 {total:,} 行"
    keyword.locator("th button", has_text="严重程度").click()
    sync_api.expect(status).to_have_text(f"第 1\u201350 行，共 {total:,} 行，按“严重程度”升序排列")
    assert keyword.locator("th[aria-sort=ascending]").inner_text().strip() == "严重程度"
    keyword.locator("button", has_text="下一页").click()
    assert status.inner_text().startswith("第 51\u2013")
    keyword.locator("input").fill("没有哪一行有这段文字")
    sync_api.expect(status).to_have_text("没有匹配的行", timeout=5_000)
    checked.check("filtered to nothing", within="#table-keyword")
    keyword.locator("input").fill("")
    checked.narrow()
    assert english_left(page.evaluate(SCRIPT_TEXT), set()) == []
    checked.done()


def test_the_page_with_everything_on_it_passes_axe_in_chinese(
    browser,  # noqa: F811
    axe_source,  # noqa: F811
    tmp_path,
):
    with full_builder() as builder:
        page_file = builder.render(tmp_path / "full", default_formats("zh-CN"))["report.html"]
    checked = Checked(browser, page_file, axe_source)
    font = "(selector) => getComputedStyle(document.querySelector(selector)).fontFamily"
    # headings in the system's CJK fonts; hashes and codes still monospace
    assert checked.page.evaluate(font, "h1").startswith('"Noto Sans CJK SC"')
    assert checked.page.evaluate(font, "#merkle-root").startswith("ui-monospace")
    open_every_row(checked.page)
    checked.check("every record opened")  # its colours are the English page's, checked there
    checked.narrow()
    # a cut table says, in Chinese, that its filter searches only the rows shown
    hint = checked.page.locator("#table-keyword .controls input").get_attribute("title")
    assert hint.startswith("只搜索显示的 5 行") and "findings.jsonl" in hint
    checked.done()
