"""`auditor report`: render the audit report again from a bag alone (the renderer, Jinja2 and
the policy engine imported when it begins, not for its --help)."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.cli.access import file_access_option
from auditor.errors import EXIT_FINDINGS
from auditor.findings import FAIL_ON_LEVELS
from auditor.report.catalogue import DEFAULT_LANGUAGE, LANGUAGES


@click.command("report")
@click.argument("bag", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    help="Folder for report.html, findings.csv, findings.jsonl and summary.json.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON_LEVELS),
    default=None,
    help="Severity the verdict counts from. [default: the bag's Fail-On]",
)
@click.option(
    "--table-rows",
    type=click.IntRange(1, 100_000),
    default=1_000,
    show_default=True,
    help="Most severe findings shown per table of the page (all are in the CSV and JSONL).",
)
@click.option(
    "--report-lang",
    "language",
    type=click.Choice(LANGUAGES),
    default=DEFAULT_LANGUAGE,
    show_default=True,
    help="Language of report.html: en or zh-CN (Simplified Chinese). The CSV and JSON stay "
    "as programs read them.",
)
@file_access_option()
def report(bag: Path, out_dir: Path, fail_on: str | None, table_rows: int, language: str) -> None:
    """Render the HTML report, CSV and JSON of BAG (an archive folder) into --out.

    Exits 1 when the verdict is FAIL (findings at or above --fail-on), as `run` does.
    """
    from auditor.report.bag import render_bag

    rendered = render_bag(bag, out_dir, fail_on=fail_on, table_rows=table_rows, language=language)
    for path in rendered.files.values():
        click.echo(path)
    click.echo(rendered.summary["verdict"]["line"])
    if rendered.summary["verdict"]["failed"]:
        raise click.exceptions.Exit(EXIT_FINDINGS)


COMMANDS: list[click.Command] = [report]
