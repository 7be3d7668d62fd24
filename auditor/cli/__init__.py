"""The `auditor` command: a click group whose commands live one area a module beside this file.

Commands parse, call one function of the package, and print. Errors a user can cause arrive as
`AuditorError` and leave as one line on stderr with the documented exit code.
"""

from __future__ import annotations

import io
import logging
import os
import select
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import click

from auditor import __version__
from auditor.cli.exit_codes import EXIT_CODES_HELP
from auditor.cli.lazy import Lazy, LazyGroup
from auditor.entry import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated, import_held
from auditor.errors import EXIT_INTERNAL, EXIT_USAGE, AuditorError, os_reason

log = logging.getLogger(__name__)
# click 8.2+ answers a group called without a command with this usage error; older ones exit 0.
_HELP_ASKED = getattr(click.exceptions, "NoArgsIsHelpError", ())

HELP = f"""Compliance auditor for Easemob (环信) chat history: pull, validate, apply retention,
hold and keyword policies, write signed hash-chained archives, and report.

Start with `auditor demo`. Exit codes of every command:

{EXIT_CODES_HELP}"""
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE  # as shells report a command the signal killed

# Set once SIGTERM reached this process: an error that follows it (a worker dead of the same
# signal, a `Terminated` swallowed where Python only prints exceptions, as in an at-fork hook)
# is reported as the stop it is, with exit 143, not as a failure of the run.
_TERMINATED = threading.Event()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Has SIGTERM raise `Terminated` in this process while the command runs.

    Once only: a second SIGTERM must not break the unwinding of the first. A child forked
    meanwhile (a worker, a report writer) inherits the handler; it dies of the signal, as before.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    coordinator = os.getpid()
    raised = False
    _TERMINATED.clear()

    def terminate(number: int, _frame) -> None:
        nonlocal raised
        if os.getpid() != coordinator:
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return
        _TERMINATED.set()
        if not raised:
            raised = True
            raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _stopped(error: BaseException) -> int:
    """The line and exit code of a command stopped by SIGINT or SIGTERM.

    The last line of stderr stays this one: what the stop cut short in a library's event loop
    (Dask's client closing: a timeout's future never retrieved) asyncio reports as its objects
    are collected on the way out, after the line, as "TimeoutError: Timeout" (a CI run of the
    group Ctrl-C test failed on it); not news once the command is stopped, so said with -vv only."""
    asyncio_log = logging.getLogger("asyncio")
    if not asyncio_log.isEnabledFor(logging.DEBUG):
        asyncio_log.setLevel(logging.CRITICAL)
    if isinstance(error, Terminated) or isinstance(error.__cause__, Terminated):
        click.echo("auditor: terminated", err=True)
        return EXIT_TERMINATED
    click.echo("auditor: interrupted", err=True)
    return EXIT_INTERRUPTED


def _refusal(error: OSError | sqlite3.Error, command: str) -> str:
    """What the system refused, naming the file: the error's own file names (`filename`,
    `filename2`), else the files the code noted it was working on, else the command."""
    notes = "; ".join(getattr(error, "__notes__", ()))
    if isinstance(error, sqlite3.Error):
        return f"{notes or 'state database'}: {error}"
    if error.filename is not None:
        # Python words an errno-less one "[Errno None] None: 'name'"
        said = str(error) if error.errno else f"{error.filename}: {os_reason(error)}"
        return f"{said} ({notes})" if notes else said
    return f"{notes or command}: {error if error.errno else os_reason(error)}"


class AuditorGroup(LazyGroup):
    """Turns `AuditorError` into one clean line and its exit code instead of a traceback; so too
    what the machine refuses where no step expected it (a full disk, a folder or database it may
    not write), with the traceback kept for `-vv`."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """The command, with the umask `--file-access` set only while it runs (a test or a
        program that calls it in its own process keeps its own)."""
        _open_standard_streams()
        umask = os.umask(0o077)
        os.umask(umask)
        strict = _escaping_streams()
        try:
            return self._main(args, prog_name, complete_var, standalone_mode, **extra)
        finally:
            os.umask(umask)
            for stream in strict:
                stream.reconfigure(errors="strict")

    def _main(self, args, prog_name, complete_var, standalone_mode, **extra):
        """Usage errors (a wrong option, a missing argument) as one line too, with exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            with _sigterm_raises():
                code = super().main(args, prog_name, complete_var, False, **extra)
        except _HELP_ASKED as error:  # `auditor` alone: the help, as click shows it
            error.show()
            sys.exit(error.exit_code)
        except click.ClickException as error:
            hint = ""
            if isinstance(error, click.UsageError) and error.ctx is not None:
                hint = f" (see: {error.ctx.command_path} --help)"
            click.echo(f"auditor: error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except (click.Abort, KeyboardInterrupt) as error:
            sys.exit(_stopped(error))
        except SystemExit as done:
            # click answers a closed pipe met while it parses (`--help | head`) with exit 1,
            # which here means findings
            if done.code == 1 and _stdout_closed():
                sys.exit(EXIT_PIPE_CLOSED)
            raise
        sys.exit(code if isinstance(code, int) else 0)

    def make_context(self, info_name, args, parent=None, **extra):
        """The group's options read; a stop meanwhile leaves as `Abort`, which click passes on
        as it is: a KeyboardInterrupt it would first answer with a blank line on stderr."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt as stop:
            raise click.Abort from stop

    def invoke(self, ctx: click.Context):
        try:
            durable = import_held("auditor.durable")  # not for --help: it imports only click
            durable.forget()
            import_held("orjson")  # its init crashes when an import in it is cut short
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt as error:
            ctx.exit(_stopped(error))
        except BrokenPipeError as error:
            if not _stdout_closed():
                ctx.exit(_failed(error, ctx))
            ctx.exit(EXIT_PIPE_CLOSED)
        except Exception as error:
            if isinstance(error.__cause__, KeyboardInterrupt):  # as Python 3.11 wraps one met
                ctx.exit(_stopped(error.__cause__))  # in `__set_name__` (a class being made)
            if _TERMINATED.is_set():
                log.debug("failed after SIGTERM", exc_info=True)
                ctx.exit(_stopped(Terminated()))
            ctx.exit(_failed(error, ctx))


def _escaping_streams() -> list[io.TextIOWrapper]:
    """Sets stdout and stderr to write what their encoding cannot hold as a backslash escape, and
    returns those that refused it: a path named in bytes that are not UTF-8 (`archiv\\xe9/`,
    which Python holds as `\\udce9`) printed after a run had published its bag stopped it as an
    internal error saying nothing was published (Python's stdout is strict under
    `LANG=en_US.UTF-8`)."""
    strict = []
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")
            strict.append(stream)
    return strict


def _open_standard_streams() -> None:
    """Opens on /dev/null each of stdin, stdout and stderr the command was started without
    (cron's `>&-`, a daemon's leftovers), as daemons do: Python left `sys.stderr` None, which
    failed the run (exit 70), and the next file opened would have taken descriptor 1 or 2, where
    a worker's or a library's line meant for stderr would land in the state database or a bag."""
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        try:
            os.fstat(number)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != number:
                os.dup2(opened, number)
                os.close(opened)
        if getattr(sys, name) is None:
            setattr(sys, name, open(number, "r" if number == 0 else "w", closefd=False))  # noqa: SIM115


def _stdout_closed() -> bool:
    """Whether the reader of stdout went away (`auditor due ... | head`), as a shell's pipe
    does once it has read enough: then the command stops quietly, as `git log | head` does, and
    stdout is pointed at /dev/null so that Python's flush at exit does not fail on it again.
    Asked of the file itself (a pipe with no reader polls as an error), not of the exception,
    which a socket raises too."""
    try:
        stdout = sys.__stdout__.fileno()
        poller = select.poll()
        poller.register(stdout, select.POLLOUT)
        gone = any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False
    if gone:
        with suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout)
    return gone


def _failed(error: Exception, ctx: click.Context) -> int:
    """The line and exit code of a command that failed, saying which runs it made durable
    before it failed: those are done, and running again would not redo them."""
    from auditor import durable

    done = durable.told()
    if isinstance(error, AuditorError):
        click.echo(f"auditor: error: {error}{done and f'; {done}'}", err=True)
        return error.exit_code
    command = f"{ctx.command_path} {ctx.invoked_subcommand or ''}".strip()
    if isinstance(error, (OSError, sqlite3.Error)):
        log.debug("refused by the system", exc_info=True)
        click.echo(f"auditor: error: {_refusal(error, command)}{done and f'; {done}'}", err=True)
        return EXIT_USAGE
    log.debug("internal error", exc_info=True)
    reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
    kept = done or _KEPT.get(ctx.invoked_subcommand or "", "")
    if done and durable.nothing_of_its_own() and ctx.invoked_subcommand in ("run", "demo"):
        kept = f"{done}; this run published nothing, progress is kept"
    click.echo(
        f"auditor: internal error ({reason}); this is a bug in the auditor{kept and f': {kept}'}; "
        "run with -vv for the traceback and report it",
        err=True,
    )
    return EXIT_INTERNAL


# What an internal error leaves of the commands that keep progress, when no run was made durable.
_KEPT = {
    "run": "nothing was published, progress is kept",
    "demo": "nothing was published, progress is kept",
    "pull": "the hours written so far are kept, pull again to resume",
}


# Each command's module, imported when that command runs, and the sentence `--help` lists for it
# (tests/test_cli_startup.py holds both to the commands themselves).
COMMANDS = {
    "demo": Lazy(
        "auditor.cli.run",
        "Audit a seeded week of history from the built-in emulator, end to end.",
    ),
    "due": Lazy(
        "auditor.cli.state",
        "What is due across the whole chain: the messages whose retention has ended (to delete at"
        " the source and purge from the archive, or to review), those under a legal hold, each "
        "with the rule or hold that decided it and the bag and seq that hold it (for `auditor "
        "prove`).",
    ),
    "emulator": Lazy(
        "auditor.cli.emulator",
        "Serve a local Easemob-compatible server with a synthetic history, until SIGTERM.",
    ),
    "keygen": Lazy("auditor.cli.archive", "Create the Ed25519 key that signs every run's archive."),
    "policy": Lazy(
        "auditor.cli.policy",
        "Policy files: retention, legal holds, keyword lists and detectors.",
    ),
    "prove": Lazy(
        "auditor.cli.archive",
        "Write one message's inclusion proof: its line, audit path, root and signed manifest.",
    ),
    "pull": Lazy(
        "auditor.cli.pull",
        "Pull a window of chat history into one JSON-lines file per hour, resumably.",
    ),
    "report": Lazy(
        "auditor.cli.report",
        "Render the HTML report, CSV and JSON of BAG (an archive folder) into --out.",
    ),
    "run": Lazy(
        "auditor.cli.run",
        "Audit a window of history: pull every hour, validate, apply the policies, write one "
        "signed, hash-chained bag with its findings and report, and record the run.",
    ),
    "scan": Lazy(
        "auditor.cli.policy",
        "Apply a policy to INPUT files (JSONL, .gz, folders of them, or bags: their archived "
        "records) and summarise the findings.",
    ),
    "state": Lazy(
        "auditor.cli.state",
        "The state database of a chain of runs (runs, checkpoints, message index).",
    ),
    "unread": Lazy("auditor.cli.pull", "Print how many messages wait for each USER while offline."),
    "validate": Lazy(
        "auditor.cli.validate",
        "Check JSONL or .gz files, folders written by `auditor pull`, or bags (the records they "
        "archived) against the schemas.",
    ),
    "verify": Lazy(
        "auditor.cli.archive",
        "Check a run's bag: signatures, checksums, files, every line, Merkle root, chain link.",
    ),
    "verify-chain": Lazy(
        "auditor.cli.archive",
        "Check every run in FOLDER and the chain they form: no gap, no repeat, every link.",
    ),
    "verify-proof": Lazy(
        "auditor.cli.archive",
        "Check an inclusion proof with the public key alone, without the rest of the archive.",
    ),
}


@click.group(cls=AuditorGroup, help=HELP, lazy=COMMANDS)
@click.version_option(__version__, prog_name="auditor")
@click.option("-v", "--verbose", count=True, help="More log lines (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option(
    "--file-access",
    type=click.Choice(("owner", "group")),  # file_access.ACCESS, imported once a command runs
    default="owner",
    envvar="AUDITOR_FILE_ACCESS",
    show_default=True,
    show_envvar=True,
    help="Who may read the files and folders a command writes (bags, reports, the state, the "
    "spool, a pull's folder): the owner alone (files 0600, folders 0700, whatever the umask), or "
    "the owner's group too (0640, 0750), for a legal team's group; `run` also takes "
    "`file_access:` from its config's `run:` section.",
)
def main(verbose: int, quiet: bool, file_access: str) -> None:
    from auditor.file_access import restrict

    restrict(file_access)
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
