"""The `auditor` command: a click group whose commands live one area a module beside this file.

Commands parse, call one function of the package, and print. Errors a user can cause arrive as
`AuditorError` and leave as one line on stderr with the documented exit code.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

import click

from auditor import __version__
from auditor.cli import archive, emulator, policy, pull, report, run, state, validate
from auditor.errors import EXIT_USAGE, AuditorError

log = logging.getLogger(__name__)

HELP = """Compliance auditor for Easemob (环信) chat history: pull, validate, apply retention,
hold and keyword policies, write signed hash-chained archives, and report.

Start with `auditor demo`. Exit codes of every command:

\b
  0  done, nothing at or above --fail-on (or: verified intact)
  1  done with findings at or above --fail-on (or: verification found problems)
  2  bad usage, configuration, input file, policy file or key, or a file
     or database it cannot write (disk full, permissions)
  3  the source failed after all retries (progress kept)
  4  another run holds the lock
"""


class AuditorGroup(click.Group):
    """Turns `AuditorError` into one clean line and its exit code instead of a traceback; so too
    what the machine refuses where no step expected it (a full disk, a folder or database it may
    not write), with the traceback kept for `-vv`."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AuditorError as error:
            click.echo(f"auditor: error: {error}", err=True)
            ctx.exit(error.exit_code)
        except (OSError, sqlite3.Error) as error:
            log.debug("refused by the system", exc_info=True)
            where = "state database: " if isinstance(error, sqlite3.Error) else ""
            click.echo(f"auditor: error: {where}{error}", err=True)
            ctx.exit(EXIT_USAGE)
        except KeyboardInterrupt:
            click.echo("auditor: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=AuditorGroup, help=HELP)
@click.version_option(__version__, prog_name="auditor")
@click.option("-v", "--verbose", count=True, help="More log lines (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def main(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


for _module in (emulator, pull, validate, policy, archive, run, report, state):
    for _command in _module.COMMANDS:
        main.add_command(_command)
