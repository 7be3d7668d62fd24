"""`auditor policy check FILE` and `auditor scan --policies FILE INPUT...`.

The policy engine and the schemas are imported when a command begins, not for its --help.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from auditor.findings import FAIL_ON_LEVELS
from auditor.partitions import format_instant, parse_instant

if TYPE_CHECKING:
    from auditor.policies.scan import ScanSummary

NOW_HELP = "Reference time for holds and retention (ISO 8601 or epoch ms); default: now."


def _now(value: str | None) -> int:
    return parse_instant(value) if value else int(time.time() * 1000)


@click.group("policy")
def policy_group() -> None:
    """Policy files: retention, legal holds, keyword lists and detectors."""


@policy_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--now", "now", metavar="INSTANT", help=NOW_HELP)
@click.pass_context
def check(ctx: click.Context, file: str, now: str | None) -> None:
    """Report conflicts in FILE before anything runs.

    Exit 0 when clean (warnings are printed but pass), 1 when there are conflicts, 2 when the
    file is invalid.
    """
    from auditor.policies.check import check_policy

    policy, found = check_policy(file, _now(now))
    for conflict in found:
        kind = "warning: " if conflict.warning else ""
        click.echo(f"{file}:{conflict.line}: {conflict.subject}: {kind}{conflict.message}")
    conflicts = [conflict for conflict in found if not conflict.warning]
    warnings = len(found) - len(conflicts)
    terms = sum(len(each.terms) for each in policy.keyword_lists)
    counts = (
        f"{_count(len(policy.retention_rules()), 'retention rule')}, "
        f"{_count(len(policy.holds), 'hold')}, "
        f"{_count(len(policy.keyword_lists), 'keyword list')} ({_count(terms, 'term')}), "
        f"{_count(len(policy.detectors), 'detector')}"
    )
    if policy.term_files:
        counts += "; term files: " + ", ".join(
            f"{each.declared} ({_count(each.terms, 'term')}, sha256 {each.sha256[:12]}…)"
            for each in policy.term_files
        )
    if warnings:
        counts += f"; {warnings} warning(s)"
    if conflicts:
        click.echo(f"{file}: {len(conflicts)} conflict(s); {counts}")
        ctx.exit(1)
    click.echo(f"{file}: OK, no conflicts; {counts}; sha256 {policy.sha256}")


@click.command("scan")
@click.option(
    "--policies",
    "policy_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The policy file (YAML).",
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--findings",
    "findings_out",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write findings as JSON lines to this file (- for stdout).",
)
@click.option("--now", "now", metavar="INSTANT", help=NOW_HELP)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON_LEVELS),
    default="low",
    show_default=True,
    help="Exit 1 when a finding is at least this severe.",
)
@click.pass_context
def scan(
    ctx: click.Context,
    policy_file: str,
    inputs: tuple[str, ...],
    findings_out: str | None,
    now: str | None,
    fail_on: str,
) -> None:
    """Apply a policy to INPUT files (JSONL, .gz, folders of them, or bags: their archived
    records) and summarise the findings.

    Exit 0 when no finding reaches --fail-on, 1 when some do, 2 on a bad policy or input.
    """
    from auditor.fsutil import refuse_inside_any_bag
    from auditor.policies.scan import scan_files

    if findings_out not in (None, "-"):
        refuse_inside_any_bag(findings_out, "findings")
    reference = _now(now)
    summary = scan_files(policy_file, inputs, reference, findings_out, fail_on)
    _print_summary(summary, reference, to_stderr=findings_out == "-")
    if summary.failing:
        ctx.exit(1)


def _print_summary(summary: ScanSummary, reference: int, to_stderr: bool) -> None:
    def say(line: str = "") -> None:
        click.echo(line, err=to_stderr)

    say(
        f"{summary.records} records in {summary.files} file(s), {summary.unreadable} unreadable "
        f"line(s); reference time {format_instant(reference)}"
    )
    if summary.dispositions:
        say(
            "dispositions: "
            + ", ".join(f"{name} {count}" for name, count in sorted(summary.dispositions.items()))
        )
    if summary.by_rule:
        say()
        say(f"{'category':<10} {'rule':<24} {'severity':<8} {'findings':>8}")
        for (category, rule, severity), count in sorted(summary.by_rule.items()):
            say(f"{category:<10} {rule:<24} {severity:<8} {count:>8}")
    say()
    verdict = "FAIL" if summary.failing else "PASS"
    say(
        f"{verdict}: {summary.failing} of {summary.findings} finding(s) at or above "
        f"'{summary.fail_on}'"
    )


COMMANDS: list[click.Command] = [policy_group, scan]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
