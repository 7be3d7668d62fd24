"""The report in a real headless Chromium: opens offline, reads right, runs no record's script.

Uses Debian's `chromium` (installed by `.ci/run`) through Playwright, never a downloaded browser.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from auditor.emulator.dataset import SyntheticHistory
from auditor.partitions import HOUR_MS, Partition
from auditor.report import ReportBuilder, RunInfo
from auditor.report.synthetic import planted_findings

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("AUDITOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no chromium binary at {CHROMIUM} (apt-get install chromium, as .ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOV_1 = 1_793_491_200_000

XSS = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "'><svg onload=window.__xss=1>",
    "javascript:window.__xss=1",
    '<a href="javascript:window.__xss=1" id="xss-link">click</a>',
    "</td></tr></table><script>window.__xss=1</script>",
    "</textarea></title></style></script><script>window.__xss=1</script>",
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "<body onload=window.__xss=1>",
    "<details open ontoggle=window.__xss=1><summary>x</summary></details>",
    "<input autofocus onfocus=window.__xss=1>",
    "<video><source onerror=window.__xss=1></video>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "<svg><script>window.__xss=1</script></svg>",
    "]]><script>window.__xss=1</script>",
    "<!--<script>window.__xss=1</script>-->",
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=1">',
    '<base href="http://127.0.0.1:9/">',
    '<link rel="stylesheet" href="http://127.0.0.1:9/x.css">',
    '<img src="http://127.0.0.1:9/pixel.png">',
    '<object data="javascript:window.__xss=1"></object>',
    '<embed src="javascript:window.__xss=1">',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.domain)>",
    "<svg><animate onbegin=document.title='pwned' attributeName=x dur=1s>",
    "<style>@import 'http://127.0.0.1:9/evil.css';</style>",
    "\u202e<script>window.__xss=1</script>",
    '<form action="javascript:window.__xss=1"><button>go</button></form>',
    "<marquee onstart=window.__xss=1>x</marquee>",
    "{{7*7}}${7*7}<%= 7*7 %>",
)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


class Visit:
    """One page load with everything the page did: console errors, requests, dialogs."""

    def __init__(self, browser, path: Path):
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.url = path.resolve().as_uri()
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on(
            "dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss())
        )
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_timeout(200)


def realistic_report(out: Path) -> tuple[Path, dict]:
    history = SyntheticHistory(messages=2_000, days=1)
    info = RunInfo(
        sequence=5,
        since_ms=history.start_ms,
        until_ms=history.end_ms,
        source={"api": "hourfiles", "base_url": "https://a1.easemob.com", "org": "o", "app": "a"},
        hour_timezone="+8",
        merkle_root="3f" * 32,
        tree_size=2_000,
        key_fingerprint="SHA256:q2pEVS6d0l9vD5XbN2wVxN4b1s9Ew2ak9Vf8X1hQk3c",
        previous_tagmanifest_sha256="a1" * 32,
        policy_file="policies.example.yaml",
        policy_sha256="5d" * 32,
    )
    builder = ReportBuilder(info)
    for index in range(len(history)):
        truth = history.truth(index)
        builder.observe_record(truth.record, Partition.containing(history.timestamp(index)).label())
        for finding in planted_findings(truth):
            builder.observe_finding(finding)
        builder.observe_verdict("review" if index % 50 == 0 else "keep", "default-3y")
    files = builder.render(out)
    return files["report.html"], builder.summary()


def test_the_report_opens_offline_without_errors_and_states_its_verdict(browser, tmp_path):
    page_file, summary = realistic_report(tmp_path / "report")
    visit = Visit(browser, page_file)
    shot = tmp_path / "report.png"
    visit.page.screenshot(path=str(shot), full_page=True)
    text = visit.page.inner_text("body")

    assert visit.errors == []
    assert visit.requests == [visit.url]
    assert shot.stat().st_size > 50_000
    assert summary["verdict"]["line"].startswith("FAIL: ")
    assert visit.page.inner_text("#verdict") == summary["verdict"]["line"]
    assert visit.page.inner_text("#count-records") == "2,000"
    assert visit.page.inner_text("#count-findings") == f"{summary['findings']['total']:,}"
    assert visit.page.inner_text("#count-schema") == f"{summary['records']['failing_schema']:,}"
    assert "All times in this report's tables and charts are in UTC+08:00" in text
    assert "简体中文" in text
    assert visit.page.evaluate("document.documentElement.lang") == "en"


def test_tables_sort_and_filter_with_the_pages_own_script(browser, tmp_path):
    page_file, summary = realistic_report(tmp_path / "report")
    visit = Visit(browser, page_file)
    table = visit.page.locator("#data-keyword")
    first_severity = "#data-keyword tbody tr:not([hidden]) td:first-child"
    keyword_total = summary["findings"]["by_table"]["keyword"]
    status = visit.page.locator("#table-keyword .controls .status")
    assert status.inner_text() == f"rows 1\u201350 of {keyword_total}"

    table.locator("th button", has_text="Severity").click()  # ascending: least severe first
    assert visit.page.locator(first_severity).first.inner_text() == "low"
    visit.page.locator("#table-keyword .controls input").fill("代开发票")
    shown = visit.page.locator("#data-keyword tbody tr:not([hidden])")
    assert shown.count() > 0
    assert all("代开发票" in row for row in shown.all_inner_texts())
    sync_api.expect(status).to_have_text(re.compile(r"rows 1\u2013\d+ of \d+"))
    assert visit.errors == []


def xss_report(out: Path) -> Path:
    """Every payload where a record or finding can carry text: message text, file name, ext,
    sender, chat and body type, message ID, rule, reason, and the run's own names."""
    info = RunInfo(
        sequence=1,
        since_ms=NOV_1,
        until_ms=NOV_1 + 24 * HOUR_MS,
        source={"api": XSS[0], "base_url": XSS[3], "org": XSS[1], "app": XSS[2]},
        policy_file=XSS[5],
        bag_name=XSS[6],
        key_fingerprint=XSS[17],
    )
    builder = ReportBuilder(info)
    for number, payload in enumerate(XSS):
        record = {
            "msg_id": f"{number}{payload}",
            "timestamp": NOV_1 + number * 60_000,
            "chat_type": payload,
            "from": payload,
            "payload": {
                "from": payload,
                "bodies": [
                    {"type": payload, "msg": payload},
                    {"type": "file", "filename": payload, "url": payload},
                ],
                "ext": {payload: payload, "em_apns_ext": {"em_push_title": payload}},
            },
        }
        builder.observe_record(record, payload)
        for pointer in ("/payload/bodies/0/msg", "/payload/bodies/1/filename", "/payload/ext/x"):
            builder.observe_finding(
                {
                    "msg_id": record["msg_id"],
                    "category": "keyword",
                    "rule": payload,
                    "severity": "high",
                    "message": payload,
                    "pointer": pointer,
                    "details": {
                        "list": payload,
                        "term": payload,
                        "matched": payload[:10],
                        "start": 0,
                        "end": min(len(payload), 10),
                        "normalizations": [payload],
                        "confidence": payload,
                        "text": payload,
                    },
                }
            )
        builder.observe_finding(
            {
                "msg_id": record["msg_id"],
                "category": "schema",
                "rule": payload,
                "severity": "medium",
                "message": payload,
                "pointer": f"/payload/ext/{payload}",
                "details": {"keyword": payload, "type": payload, "record": record},
            }
        )
        for category in ("retention", "hold", payload):
            builder.observe_finding(
                {
                    "msg_id": payload,
                    "category": category,
                    "rule": payload,
                    "severity": payload if category == payload else "low",
                    "message": payload,
                    "pointer": payload,
                    "details": {
                        "rule": payload,
                        "disposition": payload,
                        "retain_until": payload,
                        "reason": payload,
                        "losing_rules": [[payload, payload]],
                    },
                }
            )
        builder.observe_verdict(payload, payload)
    return builder.render(out)["report.html"]


def assert_nothing_ran(visit: Visit) -> None:
    assert visit.page.evaluate("window.__xss") is None
    assert visit.page.evaluate("document.title").startswith("Audit report, run 1: FAIL: ")
    assert visit.dialogs == []
    assert visit.requests == [visit.url]
    assert visit.errors == []
    assert visit.page.locator("main iframe, main img, main object, main embed").count() == 0
    shown = visit.page.evaluate("document.querySelector('#table-keyword tbody').textContent")
    # every payload shows as written, its bidi override as a badge naming it
    assert all(payload.replace("\u202e", "U+202E") in shown for payload in XSS)
    assert "\u202e" not in visit.page.evaluate("document.body.textContent")


def test_no_script_from_a_record_runs(browser, tmp_path):
    assert len(XSS) >= 20
    visit = Visit(browser, xss_report(tmp_path / "xss"))
    visit.page.mouse.click(400, 400)
    visit.page.keyboard.press("Tab")
    assert_nothing_ran(visit)


def test_escaping_alone_stops_every_payload_even_without_the_csp(browser, tmp_path):
    page_file = xss_report(tmp_path / "xss")
    html = page_file.read_text(encoding="utf-8")
    bare = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', "", html, count=1)
    assert bare != html
    page_file.write_text(bare, encoding="utf-8")
    visit = Visit(browser, page_file)
    assert_nothing_ran(visit)
