"""`--file-access` after the name of each command that writes files, where its --help lists it:
`auditor run --file-access group` as well as `auditor --file-access group run`, the group's own
option (which also reads AUDITOR_FILE_ACCESS). Given in both places, the command's wins."""

from __future__ import annotations

import click

ACCESSES = ("owner", "group")  # file_access.ACCESS; tests/test_file_access.py holds them equal


def _restrict(_ctx: click.Context, _param: click.Parameter, access: str | None) -> None:
    if access is not None:
        from auditor.file_access import restrict

        restrict(access)


def given_here(ctx: click.Context) -> bool:
    """Whether the command's own `--file-access` was given (its source is never the
    environment: the group reads the variable)."""
    return ctx.get_parameter_source("file_access") is not click.core.ParameterSource.DEFAULT


def file_access_option(also: str = ""):
    """The option, applied while the command's options are read, before it writes anything;
    `also` names another place that sets it (a config section)."""
    return click.option(
        "--file-access",
        type=click.Choice(ACCESSES),
        default=None,
        expose_value=False,
        callback=_restrict,
        help="Who may read the files and folders this command writes: the owner alone (files "
        "0600, folders 0700) or the owner's group too (0640, 0750). Also set by `auditor "
        f"--file-access` or AUDITOR_FILE_ACCESS{also}; given here, it wins.  [default: owner]",
    )
