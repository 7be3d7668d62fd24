"""`report.html`: one self-contained page, safe to open although it quotes what users typed.

Jinja2 autoescapes every value, and the environment's `finalize` shows every invisible or bidi
control character of every value as a badge naming it (`display.visible`), so no ID, sender or
text can pass for another and no override reorders the page; message text (`|text`), the
preformatted record (`|block`) and chart labels (`|svg`) say how theirs are drawn.

The page's only script and style are inline, and its Content-Security-Policy allows exactly
those two by their SHA-256, nothing from the network, so even markup that slipped past escaping
could not run or load anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import BinaryIO

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from auditor.archive.instructions import verify_text
from auditor.findings import SEVERITIES
from auditor.report import catalogue
from auditor.report.content import Report, Table
from auditor.report.display import label, local_time, mark_chinese, visible, zone_name
from auditor.report.formats import csv as csv_format
from auditor.report.formats.csv import csv_files
from auditor.report.formats.interface import ReportFormat
from auditor.report.runinfo import RunInfo
from auditor.report.tables import NO_RULE
from auditor.resources import templates_dir

RULE_ROWS = 50
TABLE_BYTES = 1_500_000


@dataclass(frozen=True, slots=True)
class ShownTable:
    """A table with the rows the page shows, already drawn (escaped) by the template's macro."""

    table: Table
    rows: tuple[Markup, ...]


def shown_tables(
    report: Report, budget: int = TABLE_BYTES, language: str = catalogue.DEFAULT_LANGUAGE
) -> list[ShownTable]:
    """Draws each table's rows, most severe first, until the table reaches `budget` bytes.

    Cell values are clipped already; the budget is what guarantees the page stays small (five
    tables of at most 1.5 MB) whatever the records hold, e.g. text of nothing but `"`, which
    escaping makes five times longer. A row is measured with its Chinese text marked
    (`mark_chinese`), which can make it longer still.
    """
    environment = _environment(language)
    macros = environment.get_template("_macros.html.j2").module
    mark = environment.filters["zh"]
    shown = []
    for table in report.tables:
        draw = getattr(macros, table.kind.macro)
        rows, used = [], 0
        for row in table.rows:
            html = mark(draw(row))
            used += len(html.encode("utf-8"))
            if used > budget:
                break
            rows.append(html)
        shown.append(ShownTable(table, tuple(rows)))
    return shown


def csp_source(text: str) -> str:
    """A CSP hash source (`'sha256-…'`) for an inline script or style with exactly this text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def content_security_policy(script: str, style: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {csp_source(script)}",
            f"style-src {csp_source(style)}",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        )
    )


def verify_commands(run: RunInfo) -> str:
    """The bag's own `data/VERIFY.txt`; during a run, before the bag exists, the same text as
    the archive writer will put there."""
    if run.verify_text.strip():
        return run.verify_text.strip("\n")
    return verify_text(
        name=run.bag_name or "<bag>",
        sequence=run.sequence,
        previous_sha256=run.previous_tagmanifest_sha256,
        namespace=run.signature_namespace,
        fingerprint=run.key_fingerprint,
        record_count=run.tree_size,
        merkle_root=run.merkle_root,
        previous_name=run.previous_bag_name or None,
        term_files=run.term_files,
    ).strip("\n")


def _shown(value: object, mode: str, svg: bool = False) -> object:
    """`visible` as a filter: always Markup for text, so `finalize` does not mark it again."""
    shown = visible(value, mode, svg)
    return escape(shown) if isinstance(shown, str) else shown


@functools.cache
def _environment(language: str = catalogue.DEFAULT_LANGUAGE) -> Environment:
    """The page's environment in `language`: its `_()` and `ngettext` from the catalogue, and
    every `Phrase` the model composed said in that language before it is shown."""

    def say(value: object) -> object:
        return catalogue.say(value, language)

    environment = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=lambda value: visible(say(value)),
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        catalogue.gettext(language), catalogue.ngettext(language), newstyle=True
    )
    environment.globals["say"] = say
    # between sentences: a space (or a line break) in English, nothing in Chinese
    english_spacing = bool(catalogue.JOINERS[language])
    environment.globals["gap"] = Markup(" " if english_spacing else "")
    environment.globals["break"] = Markup("\n" if english_spacing else "")
    environment.filters["n"] = lambda value: f"{value:,}"
    environment.filters["text"] = lambda value: _shown(say(value), "text")
    environment.filters["block"] = lambda value: _shown(say(value), "block")
    environment.filters["svg"] = lambda value: _shown(say(value), "name", svg=True)
    environment.filters["v"] = lambda value: _shown(say(value), "name")
    environment.filters["w"] = lambda value: catalogue.word(value, language)
    environment.filters["label"] = label
    # a page in Chinese is Chinese throughout: only an English page marks Chinese runs
    chinese = language.startswith("zh")
    environment.filters["zh"] = (lambda html: Markup(html)) if chinese else mark_chinese
    return environment


@functools.cache
def _asset(name: str) -> str:
    return (templates_dir() / name).read_text(encoding="utf-8")


class HtmlFormat(ReportFormat):
    """The page; `findings_jsonl` is where it links every finding, relative to itself: beside
    it, as `auditor report -o DIR` writes the files, or the bag's own copy (`bag_formats`)."""

    filename = "report.html"
    template = "report.html.j2"
    snapshot_only = True
    findings_jsonl = "findings.jsonl"  # also for a subclass whose __init__ skips this one's
    language = catalogue.DEFAULT_LANGUAGE

    def __init__(
        self, findings_jsonl: str = findings_jsonl, language: str = catalogue.DEFAULT_LANGUAGE
    ) -> None:
        if language not in catalogue.LANGUAGES:
            raise ValueError(f"no report language {language!r}")
        self.findings_jsonl = findings_jsonl
        self.language = language

    def dump(self, report: Report, handle: BinaryIO) -> None:
        script, style = _asset("report.js"), _asset("report.css")
        tz = report.tz
        language = self.language
        template = _environment(language).get_template(self.template)
        for chunk in template.generate(
            report=report,
            lang=language,
            verdict=verdict(report.summary["verdict"], language),
            words=script_words(language),
            tables=shown_tables(report, language=language),
            css=Markup(style),
            js=Markup(script),
            csp=content_security_policy(script, style),
            zone=zone_name(tz),
            local=lambda ms: local_time(ms, tz),
            verify=verify_commands(report.run),
            severities=SEVERITIES,
            rule_rows=RULE_ROWS,
            no_rule=NO_RULE,
            findings_jsonl=self.findings_jsonl,
            csv_files=csv_files(report.summary["findings"]["total"]),
            csv_rows=csv_format.ROWS_PER_FILE,
        ):
            handle.write(chunk.encode("utf-8"))


def verdict(facts: dict, language: str) -> str:
    """The verdict line in `language`, from the summary's verdict (whose `line` is English)."""
    say = catalogue.gettext(language)
    level = catalogue.word(facts["fail_on"], language)
    if facts["fail_on"] == "none":
        return say("PASS: --fail-on none, findings never fail this run")
    if facts["failed"]:
        count = facts["count"]
        noun = "finding" if count == 1 else "findings"
        return say(f"FAIL: {{count}} {noun} at or above '{{level}}'").format(
            count=f"{count:,}", level=level
        )
    return say("PASS: no findings at or above '{level}'").format(level=level)


def script_words(language: str) -> str:
    """report.js's strings in `language`, as JSON for the body's `data-words` (escaped there like
    any attribute), which the script reads: the script itself, and so its CSP hash, is the same
    in every language. Empty for English, the script's own."""
    words = catalogue.script_words(language)
    return json.dumps(words, ensure_ascii=False) if words else ""
