"""axe-core, the standard automated WCAG checker, over real reports in Debian's headless Chromium.

The hand-written accessibility tests check what we thought of; axe checks the rules of WCAG 2.1 A
and AA, AAA's enhanced contrast, Deque's best practices and its experimental `p-as-heading` (a
bold paragraph that reads as a heading) on a real run against the emulator, a report with many
findings in every table, one in Chinese text with a cut table, and an empty one, in the states a
reviewer reaches: a column sorted, a filter typed (and matching nothing), every record and chart's
numbers opened, the second page, 320 px wide, forced colours (its colour rules only: the browser,
not the page, picks the colours there). What axe leaves undecided fails the test, except the
contrast it cannot compute (SVG text, a box taller than the window), which is measured here
instead.

axe-core comes from the npm registry at install time: `.ci/run` puts the pinned version under
`.ci/axe/` (ignored by git), and nothing is fetched while the tests run. It is loaded through the
DevTools protocol (`page.evaluate`), which the page's Content-Security-Policy does not govern, so
the page is checked exactly as shipped, its CSP in force. Outside CI a missing axe skips these
tests; in CI (`CI` set, as the CI runner does) it fails them.
"""

import os
from pathlib import Path

import pytest
import run_support
from test_report_accessibility_browser import reviewer_builder
from test_report_browser import Visit, browser, sync_api  # noqa: F401 (a fixture)
from test_report_reviewer_page import hold, run_info

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS, SyntheticHistory
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import DAY_MS, Partition
from auditor.pipeline import run_audit
from auditor.report import ReportBuilder
from auditor.report.synthetic import planted_findings

pytestmark = pytest.mark.browser

AXE_VERSION = "4.14.1"  # the one .ci/run installs
AXE_JS = Path(
    os.environ.get("AUDITOR_AXE_JS")
    or Path(__file__).resolve().parents[1] / ".ci/axe/node_modules/axe-core/axe.min.js"
)
TAGS = ["wcag2a", "wcag2aa", "wcag2aaa", "wcag21a", "wcag21aa", "best-practice"]
EXPERIMENTAL = ["p-as-heading"]
SECRET = "axe-emulator-secret"

RUN_AXE = """([within, tags, extra, rules]) => axe.run(within, {
  resultTypes: ["violations", "incomplete"],
  runOnly: rules ? {type: "rule", values: rules} : {type: "tag", values: tags},
  rules: rules ? {} : Object.fromEntries(extra.map((rule) => [rule, {enabled: true}]))})"""

# What axe leaves undecided for colour contrast (SVG text, whose background it cannot see; a box
# taller than the window, "partially obscured") is measured here: the text's colour (an SVG
# text's fill) against the first opaque background behind it, the page's white if none, held to
# AAA's 7:1, or 4.5:1 for large text.
CONTRAST = r"""(selectors) => {
  const rgba = (c) => { const v = (c.match(/[\d.]+/g) || []).map(Number);
    return v.length === 3 ? [...v, 1] : v; };
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  return selectors.map((selector) => {
    const element = document.querySelector(selector);
    const style = getComputedStyle(element);
    const ink = rgba(element instanceof SVGElement ? style.fill : style.color);
    let ground = [255, 255, 255, 1];
    for (let e = element; e; e = e.parentElement) {
      const paint = rgba(getComputedStyle(e).backgroundColor);
      if (paint[3] > 0) { ground = paint; break; }
    }
    const [a, b] = [lum(ink), lum(ground)].sort((x, y) => y - x);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    return [selector, ink[3] === 1 && ground[3] === 1 ? (a + 0.05) / (b + 0.05) : 0,
      size >= 24 || (bold && size >= 18.66) ? 4.5 : 7];
  }); }"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE_JS.is_file():
        reason = (
            f"no axe-core at {AXE_JS}: `npm install --prefix .ci/axe --no-save "
            f"axe-core@{AXE_VERSION}`, as .ci/run does"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run these tests)", pytrace=False)
        pytest.skip(reason)
    return AXE_JS.read_text(encoding="utf-8")


def test_ci_installs_the_axe_these_tests_pin():
    ci_run = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert f"AXE={AXE_VERSION}\n" in ci_run


class Checked:
    """One page under axe: each `check` runs it again and keeps what it found."""

    def __init__(self, browser, path: Path, axe_source: str):  # noqa: F811
        self.visit = Visit(browser, path)
        self.page = self.visit.page
        self.page.evaluate(axe_source)
        assert self.page.evaluate("axe.version") == AXE_VERSION
        self.problems: list[str] = []

    def check(self, state: str, within: str = "html", rules: list[str] | None = None) -> None:
        """axe's WCAG 2.1 A and AA and best-practice rules (or only `rules`) over `within`."""
        # two frames: the page's ResizeObserver has answered a resize or an opened row
        self.page.evaluate(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        result = self.page.evaluate(RUN_AXE, [within, TAGS, EXPERIMENTAL, rules])
        for rule in result["violations"]:
            targets = [node["target"] for node in rule["nodes"][:4]]
            self.problems.append(
                f"{state}: {rule['id']} ({rule['impact']}) x{len(rule['nodes'])}: "
                f"{rule['help']}: {targets}"
            )
        undecided = []
        for rule in result["incomplete"]:
            for node in rule["nodes"]:
                if rule["id"].startswith("color-contrast") and len(node["target"]) == 1:
                    undecided.append(node["target"][0])
                    continue
                self.problems.append(
                    f"{state}: axe could not decide {rule['id']} for {node['target']}: "
                    f"{(node['any'] or node['all'] or node['none'])[0]['message']}"
                )
        for selector, ratio, needed in self.page.evaluate(CONTRAST, undecided):
            if ratio < needed:
                self.problems.append(f"{state}: contrast {ratio:.2f}:1 of {selector}")

    def narrow(self) -> None:
        self.page.set_viewport_size({"width": 320, "height": 800})
        self.check("320 px")

    def done(self) -> None:
        assert self.problems == [], "\n".join(self.problems)
        assert self.visit.requests == [self.visit.url]  # still self-contained, axe and all
        assert self.visit.errors == []  # no CSP violation either


def open_every_row(page) -> None:
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")


def every_table_report(out: Path) -> Path:
    """Synthetic history's planted findings (schema, keyword and PII in Chinese and English, a
    table of several pages) and retention, hold and cross-run findings, so every table shows."""
    history = SyntheticHistory(messages=1_000, days=1)
    builder = ReportBuilder(run_info(since_ms=history.start_ms, until_ms=history.end_ms))
    for index in range(len(history)):
        truth = history.truth(index)
        key = truth.record.get("msg_id")
        builder.observe_record(truth.record, Partition.containing(history.timestamp(index)).label())
        for finding in planted_findings(truth):
            builder.observe_finding(finding)
        if index % 40 == 0:
            builder.observe_finding(
                {
                    "msg_id": key,
                    "category": "retention",
                    "rule": "chat-3y",
                    "severity": "medium",
                    "message": "retention ended 2026-10-01T00:00:00Z: delete at the source",
                    "pointer": None,
                    "details": {
                        "rule": "chat-3y",
                        "disposition": "delete",
                        "retain_until": "2026-10-01T00:00:00Z",
                        "reason": "保留期已满 (retention ended)",
                        "losing_rules": [["default", "keeps for less"]],
                    },
                }
            )
        if index % 90 == 0:
            builder.observe_finding(hold(key, "under legal hold hold-1"))
        if index % 300 == 0:
            builder.observe_finding(
                {
                    "msg_id": key,
                    "category": "content-changed",
                    "rule": "content-changed",
                    "severity": "high",
                    "message": "changed at the source since run 2",
                    "pointer": None,
                    "details": {},
                }
            )
        builder.observe_verdict("keep", "default-3y")
    return builder.render(out)["report.html"]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    """One run of a day the emulator serves with the demo's faults (5xx, 429, copies, conflicts)."""
    folder = tmp_path_factory.mktemp("axe-run")
    keys = generate_key_files(folder / "keys", identity="axe-auditor")
    options = EmulatorOptions(
        messages=800,
        client_secret=SECRET,
        fail_rate=0.02,
        rate_limit_rate=0.02,
        duplicate_rate=0.01,
        conflict_rate=0.001,
    )
    with run_emulator(options) as emulator:
        settings = run_support.settings_for(
            emulator, keys, folder, SECRET, until_ms=DEFAULT_START_MS + DAY_MS
        )
        outcome = run_audit(settings)
    return outcome.bag_path / "data" / "report" / "report.html"


def test_a_real_run_against_the_emulator_passes_axe(browser, axe_source, real_run):  # noqa: F811
    checked = Checked(browser, real_run, axe_source)
    open_every_row(checked.page)
    checked.check("every record opened")
    checked.narrow()
    checked.done()


def test_every_table_passes_axe_in_the_states_a_reviewer_reaches(browser, axe_source, tmp_path):  # noqa: F811
    checked = Checked(browser, every_table_report(tmp_path / "report"), axe_source)
    page = checked.page
    tables = page.evaluate(
        "[...document.querySelectorAll('table.data')].map(t => t.id.replace('data-', ''))"
    )
    assert tables == ["schema", "keyword", "retention", "hold", "other"]
    checked.check("as opened")
    page.locator("#data-keyword th button", has_text="Severity").click()
    page.locator("#table-keyword .controls input").fill("发票")
    checked.check("sorted and filtered", within="#table-keyword")
    page.locator("#table-keyword .controls input").fill("no row holds this")
    checked.check("filtered to nothing", within="#table-keyword")
    page.locator("#table-keyword .controls input").fill("")
    page.locator("#table-keyword .controls button", has_text="Next").click()
    assert page.locator("#table-keyword .status").inner_text().startswith("rows 51\u2013")
    open_every_row(page)
    checked.check("second page, every record opened", within="#findings")
    checked.narrow()
    checked.done()


def test_chinese_text_and_a_cut_table_pass_axe(browser, axe_source, tmp_path):  # noqa: F811
    checked = Checked(browser, reviewer_builder().render(tmp_path / "r")["report.html"], axe_source)
    open_every_row(checked.page)
    checked.check("every record opened")
    checked.page.emulate_media(forced_colors="active")
    checked.check("forced colours", rules=["color-contrast", "link-in-text-block"])
    checked.page.emulate_media(forced_colors="none")
    checked.narrow()
    checked.done()


def test_an_empty_report_passes_axe(browser, axe_source, tmp_path):  # noqa: F811
    checked = Checked(
        browser, ReportBuilder(run_info()).render(tmp_path / "e")["report.html"], axe_source
    )
    checked.check("as opened")
    checked.narrow()
    checked.done()


def test_axe_finds_what_is_planted_in_the_page_under_its_csp(browser, axe_source, tmp_path):  # noqa: F811
    """The harness itself: an image without alt text and a button without a name, planted in the
    page as shipped, are found, so a clean result above means axe looked."""
    page_file = ReportBuilder(run_info()).render(tmp_path / "b")["report.html"]
    html = page_file.read_text(encoding="utf-8")
    planted = '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button>'
    page_file.write_text(html.replace("<main ", planted + "<main ", 1), encoding="utf-8")
    checked = Checked(browser, page_file, axe_source)
    checked.check("planted")
    found = "\n".join(checked.problems)
    assert "planted: image-alt (critical) x1" in found
    assert "planted: button-name (critical) x1" in found
    assert checked.visit.requests == [checked.visit.url]
    assert checked.visit.errors == []


def test_a_box_that_scrolls_takes_the_focus_only_while_it_scrolls(browser, tmp_path):  # noqa: F811
    """What axe's scrollable-region-focusable asks, as a keyboard user meets it: at 320 px the
    chart's box is a Tab stop named by its chart, shows its ring and scrolls with the arrow keys;
    at full width it fits and is no Tab stop; a long record is one once its row is opened."""
    visit = Visit(browser, every_table_report(tmp_path / "report"))
    page = visit.page
    box = page.locator("#chart-activity > .scroll")
    record = page.locator("#data-schema details pre").first
    assert box.get_attribute("tabindex") is None
    page.locator("#data-schema details summary").first.click()
    sync_api.expect(record).to_have_attribute("tabindex", "0")
    msg_id = page.locator("#data-schema tbody td.id").first.inner_text()
    assert record.get_attribute("aria-label") == f"record of message {msg_id}"
    page.set_viewport_size({"width": 320, "height": 800})
    sync_api.expect(box).to_have_attribute("tabindex", "0")
    assert box.get_attribute("role") == "group"
    assert box.get_attribute("aria-label") == page.locator("#chart-activity h3").inner_text()
    box.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")  # reached by the keyboard, so its ring shows
    assert page.evaluate("document.activeElement.closest('#chart-activity') !== null")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("ArrowRight")
    sync_api.expect(box).not_to_have_js_property("scrollLeft", 0)
    page.set_viewport_size({"width": 1280, "height": 900})
    sync_api.expect(box).not_to_have_attribute("tabindex", "0")
    assert visit.errors == []
