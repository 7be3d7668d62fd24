"""`auditor validate`: check exported or pulled records against the record schemas.

The schemas' validators (jsonschema) are imported when it begins, not for its --help; its
--profile choices are written out, as `run`'s, and tests/test_cli_startup.py holds both to
`validation.PROFILES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

import click

from auditor.errors import EXIT_FINDINGS, ConfigError, os_reason

if TYPE_CHECKING:
    from auditor.findings import Finding
    from auditor.validation import ValidationSummary


def _table(summary: ValidationSummary) -> str:
    rows = [("type", "records", "valid", "invalid")]
    rows += [
        (kind, str(count.records), str(count.valid), str(count.invalid))
        for kind, count in summary.by_type.items()
    ]
    rows.append(
        (
            "total",
            str(summary.records),
            str(summary.records - summary.invalid),
            str(summary.invalid),
        )
    )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    if summary.unparsed:
        lines.append(f"{summary.unparsed} line(s) were not JSON records (see the parse findings)")
    return "\n".join(lines)


def _writer(sink: BinaryIO) -> Callable[[Finding], None]:
    import orjson

    def write(finding: Finding) -> None:
        sink.write(orjson.dumps(finding.to_dict()) + b"\n")

    return write


@click.command("validate")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE_OR_FOLDER...")
@click.option(
    "--profile",
    type=click.Choice(["loose", "strict"]),
    default="loose",
    show_default=True,
    help="loose accepts what Easemob really sends; strict also flags each loose encoding.",
)
@click.option(
    "--findings",
    "findings_out",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    metavar="FILE",
    help="Write every finding as a JSON line to FILE ('-' for stdout; the table then goes to "
    "stderr). Without it only the table is printed.",
)
@click.pass_context
def validate_command(
    ctx: click.Context, inputs: tuple[str, ...], profile: str, findings_out: str | None
) -> None:
    """Check JSONL or .gz files, folders written by `auditor pull`, or bags (the records they
    archived) against the schemas.

    Prints records, valid and invalid per message type. Exits 0 when every record is valid,
    1 when some are not (or a line is not JSON), 2 when an input cannot be read.
    """
    from auditor.fsutil import refuse_inside_any_bag
    from auditor.validation import validate_files

    if findings_out not in (None, "-"):
        refuse_inside_any_bag(findings_out, "findings")
    if findings_out is None:
        summary = validate_files(inputs, profile)
    else:
        try:
            opened = click.open_file(findings_out, "wb")
        except OSError as error:  # Python's own line names the file but not the flag
            raise ConfigError(
                f"{findings_out}: cannot write findings ({os_reason(error)})"
            ) from None
        with opened as sink:
            summary = validate_files(inputs, profile, _writer(sink))
    click.echo(_table(summary), err=findings_out == "-")
    if findings_out is None and summary.findings:
        click.echo(f"{summary.findings} finding(s); write them with --findings FILE", err=True)
    if not summary.clean:
        ctx.exit(EXIT_FINDINGS)


COMMANDS: list[click.Command] = [validate_command]
