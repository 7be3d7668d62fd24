"""The HTML report as a keyboard or screen-reader user reads it, in Debian's headless Chromium.

A reviewer who cannot use a mouse or see colours must reach every control with Tab and see
where the focus is, hear a column's name (not "Sort by ...") with each cell and the sort and
filter results when they change, hear Chinese text in a Chinese voice, read the page at 320 px
or 200 % zoom without scrolling it sideways, and keep the chart's legend in forced colours.
"""

import itertools
import re
from pathlib import Path

import pytest
from test_report_browser import Visit, browser, sync_api  # noqa: F401 (a fixture)
from test_report_reviewer_page import hold, keyword, record, run_info

from auditor.policies.loading import policy_of_bytes
from auditor.report import ReportBuilder
from auditor.report.policy import policy_view
from auditor.resources import example_policy

pytestmark = pytest.mark.browser

MIXED = "请把内幕消息发我, then delete this chat"


def reviewer_builder() -> ReportBuilder:
    """Findings of every table (Chinese and mixed text, badges, a hold), a table cut to 20 rows,
    the example policy's tables and the charts."""
    policy = example_policy()
    view = policy_view(policy_of_bytes(policy.name, policy.read_bytes()))
    builder = ReportBuilder(run_info(), table_rows=20, policy=view)
    for msg_id, sender, text in (
        ("900000000000000001", "alice", "please kickback"),
        ("900000000000000001\u200b", "alice\u202e", "transfer \u202e00.001$\u202c kickback"),
    ):
        builder.observe_record(record(msg_id, sender, text), "2026110101")
        builder.observe_finding(keyword(msg_id, text))
    for number in range(30):
        msg_id = f"9100000000000{number:05d}"
        rec = record(msg_id, "张伟", MIXED)
        builder.observe_record(rec, "2026110101")
        builder.observe_finding(keyword(msg_id, MIXED, term="内幕消息", severity="medium"))
        builder.observe_finding(
            {
                "msg_id": msg_id,
                "category": "schema",
                "rule": "https://schemas.easemob-auditor.dev/body/txt.json",
                "severity": "low",
                "message": "payload.ext.note: 不是字符串",
                "pointer": "/payload/ext/note",
                "details": {"keyword": "type", "type": "txt", "record": rec},
            }
        )
    builder.observe_finding(hold("900000000000000003", "under legal hold hold-1"))
    builder.observe_verdict("hold", "hold-1")
    return builder


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("a11y") / "report"
    return reviewer_builder().render(out)["report.html"]


FOCUSED = """() => { const e = document.activeElement; const s = getComputedStyle(e);
  const box = e.getBoundingClientRect();
  return {tag: e.tagName, text: e.textContent.trim().slice(0, 40), id: e.id,
    ring: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 1 || s.boxShadow !== "none",
    shown: box.width > 1 && box.height > 1 && box.bottom > 0 && box.right > 0}; }"""


def test_a_skip_link_comes_first_and_every_control_shows_its_focus(browser, report):  # noqa: F811
    visit = Visit(browser, report)
    page = visit.page
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUSED)
    assert first["tag"] == "A" and first["text"] == "Skip to the report"
    assert first["shown"] and first["ring"]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.tagName") == "MAIN"
    page.keyboard.press("Shift+Tab")  # back to the start: the skip link again
    stops = []
    for _ in range(600):  # every control, then out of the page: nothing traps the focus
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if stop["tag"] == "BODY":
            break
        stops.append(stop)
    else:
        pytest.fail("Tab never left the page")
    assert len(stops) > 40
    assert (
        sum(stop["text"] == "Severity" and stop["tag"] == "BUTTON" for stop in stops) == 3
    )  # schema, keyword, hold
    blind = [stop for stop in stops if not stop["ring"]]
    assert blind == [], f"{len(blind)} focus stops without a visible ring, e.g. {blind[:3]}"
    assert visit.errors == []


def test_sortable_headings_are_named_by_their_column_and_announce_the_sort(browser, report):  # noqa: F811
    visit = Visit(browser, report)
    page = visit.page
    tree = page.locator("#data-keyword thead").aria_snapshot()
    assert '- columnheader "Severity"' in tree
    assert '- columnheader "Message ID"' in tree
    assert "Sort by" not in tree
    controls = page.locator("#table-keyword .controls").aria_snapshot()
    assert controls.startswith('- group "Rows of Keyword and PII findings (32)"')
    status = page.locator("#table-keyword .controls .status")
    assert status.get_attribute("aria-live") == "polite" or status.get_attribute("role") == "status"
    button = page.locator("#data-keyword th button", has_text="Severity")
    button.focus()
    page.keyboard.press("Enter")
    heading = page.locator("#data-keyword th").first
    assert heading.get_attribute("aria-sort") == "ascending"
    assert "sorted by Severity, ascending" in status.inner_text()
    tree = page.locator("#data-keyword thead").aria_snapshot()
    assert re.search(r'- columnheader "Severity":?\n', tree), tree  # not "Severity ▲"
    assert heading.evaluate("h => getComputedStyle(h.firstChild, '::after').content") != "none"
    page.keyboard.press(" ")
    assert heading.get_attribute("aria-sort") == "descending"
    assert "sorted by Severity, descending" in status.inner_text()
    page.locator("#table-keyword .controls input").fill("kickback")
    sync_api.expect(status).to_have_text(
        re.compile(r"rows 1\u20132 of 2 \(searched only the 20 rows shown of 32.*")
    )
    assert visit.errors == []


def test_every_table_has_a_caption_and_every_heading_cell_a_scope(browser, report):  # noqa: F811
    visit = Visit(browser, report)
    tables = visit.page.evaluate(
        """() => [...document.querySelectorAll("table")].map(t => ({
          id: t.id || t.closest("[id]").id,
          caption: t.caption ? t.caption.textContent.trim() : "",
          unscoped: [...t.querySelectorAll("th")].filter(th => !th.getAttribute("scope")).length,
        }))"""
    )
    assert len(tables) > 15
    assert [t["id"] for t in tables if not t["caption"]] == []
    assert [t["id"] for t in tables if t["unscoped"]] == []
    captions = {t["id"]: t["caption"] for t in tables}
    assert captions["data-keyword"].startswith("Keyword and PII findings")
    assert captions["run-facts"] == "About this run"
    assert visit.errors == []


def test_headings_go_in_order_and_each_chart_is_one(browser, report):  # noqa: F811
    visit = Visit(browser, report)
    headings = visit.page.evaluate(
        """() => [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")]
          .map(h => [Number(h.tagName[1]), h.textContent.trim()])"""
    )
    assert [level for level, _ in headings].count(1) == 1
    assert all(b[0] <= a[0] + 1 for a, b in itertools.pairwise(headings))
    charts = visit.page.locator("figure.chart").count()
    after = [text for _, text in headings[[t for _, t in headings].index("Charts") + 1 :]]
    assert after[:charts] == visit.page.locator("figure.chart figcaption").all_inner_texts()
    assert (
        visit.page.locator("#chart-top-senders")
        .aria_snapshot()
        .startswith('- figure "Top senders with findings"')
    )
    assert visit.requests == [visit.url]  # still self-contained
    assert visit.errors == []


CHINESE_NOT_MARKED = r"""() => {
  const found = []; const walk = document.createTreeWalker(document.querySelector("main"),
    NodeFilter.SHOW_TEXT);
  for (let node; (node = walk.nextNode());) {
    if (!/[\u3400-\u9fff]/.test(node.data) || node.parentElement.closest("svg")) continue;
    const lang = node.parentElement.closest("[lang]").getAttribute("lang");
    if (lang !== "zh") found.push(node.parentElement.closest("td,th,pre,p,li").tagName + ": " +
      node.data.slice(0, 30));
  }
  return found; }"""


def test_chinese_text_is_marked_chinese_and_english_beside_it_stays_english(browser, report):  # noqa: F811
    visit = Visit(browser, report)
    page = visit.page
    assert page.evaluate(CHINESE_NOT_MARKED) == []
    english = page.evaluate(
        """() => { const cell = [...document.querySelectorAll("#data-keyword td.quote")]
          .find(td => td.textContent.includes("then delete"));
          const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
          for (let node; (node = walk.nextNode());) if (node.data.includes("then delete"))
            return node.parentElement.closest("[lang]").getAttribute("lang"); }"""
    )
    assert english == "en"
    assert visit.errors == []


@pytest.mark.parametrize("width", [320, 640])  # 640: a 1280 px window at 200 % zoom
def test_the_page_reflows_without_scrolling_sideways(browser, report, width):  # noqa: F811
    visit = Visit(browser, report)
    visit.page.set_viewport_size({"width": width, "height": 800})
    visit.page.wait_for_timeout(50)
    wide = visit.page.evaluate(
        """(width) => [...document.querySelectorAll("body *")].filter(e => {
          const box = e.getBoundingClientRect();
          return box.width && box.right > width + 1 && !e.parentElement.closest(".scroll");
        }).map(e => e.tagName + "#" + e.id + "." + e.className).slice(0, 8)""",
        width,
    )
    sizes = visit.page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert sizes[0] <= sizes[1], f"the page scrolls sideways at {width} px: {sizes}, {wide}"
    drawn = visit.page.evaluate(
        """() => Math.min(...[...document.querySelectorAll("figure.chart svg")].map(svg =>
          svg.getBoundingClientRect().width / svg.viewBox.baseVal.width *
          parseFloat(getComputedStyle(svg.querySelector("text")).fontSize)))"""
    )
    assert drawn >= 8.5, f"chart text drawn {drawn:.1f} px high at {width} px"
    assert visit.errors == []


def test_forced_colours_keep_the_chart_legend_and_its_text_readable(browser, report):  # noqa: F811
    visit = Visit(browser, report)
    visit.page.emulate_media(forced_colors="active")
    pairs = visit.page.evaluate(
        """() => [...document.querySelectorAll("#chart-top-senders .legend .key")].map(key => {
          const name = [...key.classList].find(c => c.startsWith("sev-"));
          const bar = document.querySelector("#chart-top-senders svg rect." + name);
          return [name, getComputedStyle(key).backgroundColor,
            bar ? getComputedStyle(bar).fill : null]; })"""
    )
    assert len(pairs) == 4
    visit.page.emulate_media(forced_colors="active", color_scheme="dark")
    ink = visit.page.evaluate(
        """() => [getComputedStyle(document.body).color,
          ...[...document.querySelectorAll("svg text, svg tspan")]
            .map(t => getComputedStyle(t).fill)]"""
    )
    assert ink[0] == "rgb(255, 255, 255)"
    assert set(ink[1:]) == {ink[0]}, "chart text is not drawn in the forced text colour"
    for name, key, bar in pairs:
        assert key not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), f"{name} key vanished"
        if bar:
            assert key == bar, f"{name}: key {key}, bars {bar}"
    assert visit.errors == []


def test_typing_a_filter_is_announced_once_when_the_typing_stops(browser, report):  # noqa: F811
    """The status line is a live region: set on every key, a screen reader read out "rows 1-20
    of 32", "rows 1-4 of 4"... eight times for "kickback". The rows still follow each key."""
    visit = Visit(browser, report)
    page = visit.page
    page.evaluate(
        """() => {
          window.said = [];
          const status = document.querySelector("#table-keyword .controls .status");
          new MutationObserver(() => window.said.push(status.textContent))
            .observe(status, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.locator("#table-keyword .controls input").focus()
    page.keyboard.type("kickb", delay=80)
    shown = page.locator("#data-keyword tbody tr:not([hidden])")
    assert shown.count() == 2  # the rows already follow what was typed
    page.keyboard.type("ack", delay=80)
    page.wait_for_timeout(1_500)
    said = page.evaluate("window.said")
    assert len(said) == 1, said
    assert said[0].startswith("rows 1\u20132 of 2")
    assert visit.errors == []
