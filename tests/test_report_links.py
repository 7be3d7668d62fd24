"""Every file the report page links is where the link says, relative to the page: in the bag
(`data/report/report.html`, every finding one folder up in `data/findings.jsonl`) and beside
it in what `auditor report BAG -o DIR` writes."""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.server import EmulatorOptions, run_emulator

SECRET = "report-links-secret"
CHROMIUM = os.environ.get("AUDITOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href is not None:
            self.hrefs.append(href)


def linked_files(page: Path) -> dict[str, Path]:
    """The page's links to files (not to a place on the page), each resolved as a browser does."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    base = page.resolve().as_uri()
    return {
        href: Path(unquote(urlsplit(urljoin(base, href)).path))
        for href in parser.hrefs
        if not href.startswith("#")
    }


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    """The bag of a run of three hours of the emulator's history."""
    folder = tmp_path_factory.mktemp("run")
    keys = generate_key_files(folder / "keys", identity="links-test")
    options = EmulatorOptions(messages=2000, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        args = run_support.run_args(emulator, keys, folder, "--fail-on", "none", hours=3)
        env = {"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None}
        result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    (bag,) = [p for p in (folder / "archive").iterdir() if not p.name.startswith(".")]
    return bag


def test_every_file_the_page_in_a_bag_links_is_in_the_bag(bag):
    page = bag / "data" / "report" / "report.html"

    links = linked_files(page)

    assert links == {
        "findings.csv": bag / "data" / "report" / "findings.csv",
        "../findings.jsonl": bag / "data" / "findings.jsonl",
        "summary.json": bag / "data" / "report" / "summary.json",
    }
    assert all(target.is_file() for target in links.values())


def test_every_file_the_page_of_auditor_report_links_is_beside_it(bag, tmp_path):
    """With one row a table, the note that the rest are in the CSV and JSONL is shown too."""
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", str(bag), "-o", str(out), "--table-rows", "1"])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'Every one is in <a href="findings.csv">findings.csv</a> and <a href="findings' in page

    links = linked_files(out / "report.html")

    assert links == {
        name: out / name for name in ("findings.csv", "findings.jsonl", "summary.json")
    }
    assert all(target.is_file() for target in links.values())


@pytest.mark.browser
def test_chromium_follows_the_bag_page_link_to_every_finding(bag):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium binary at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    page_file = bag / "data" / "report" / "report.html"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            with page.expect_navigation():
                page.click("#files a:text-is('findings.jsonl')")
            shown = page.inner_text("body")
        finally:
            browser.close()

    first = (bag / "data" / "findings.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert first.strip() and first in shown
