"""`auditor pull` and `auditor unread`: the Easemob history client on the command line.

The client (requests) and the sources are imported when a command begins, not for its --help,
nor for `auditor run`'s, which shares the connection options.
"""

from __future__ import annotations

from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import click

from auditor import crashpoints
from auditor.archive.layout import SPOOL_FOLDER
from auditor.cli.access import file_access_option
from auditor.errors import ConfigError, SourceError
from auditor.partitions import check_window, parse_hour_timezone, parse_instant
from auditor.sources.options import APIS

if TYPE_CHECKING:
    from auditor.sources.interface import Source
    from auditor.sources.pull import HourOutcome, PullSummary


def _connection_options(command):
    options = (
        click.option("--base-url", help="Easemob REST base URL [env: EASEMOB_BASE_URL]."),
        click.option("--org", help="Easemob org name [env: EASEMOB_ORG]."),
        click.option("--app", help="Easemob app name [env: EASEMOB_APP]."),
        click.option(
            "--client-id",
            help="App client id [env: EASEMOB_CLIENT_ID]. The secret "
            "comes only from EASEMOB_CLIENT_SECRET or EASEMOB_CLIENT_SECRET_FILE.",
        ),
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="YAML file whose `source:` section holds the same settings.",
        ),
        click.option(
            "--retries",
            "max_retries",
            type=click.IntRange(min=0),
            help="Retries of a failed call before giving up [default: 6].",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            help="Seconds to wait for an answer [default: 30].",
        ),
        click.option(
            "--retention-days",
            type=float,
            help="Days the source keeps hour files: 3, or 7, 90 or 180 by contract; older hours "
            "are expired, not asked for [env: EASEMOB_RETENTION_DAYS; default: 3].",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def _instant(text: str, name: str) -> int:
    try:
        return parse_instant(text)
    except ConfigError as error:
        raise ConfigError(f"{name}: {error}") from None


# Hours named in a line that lists them; a backfill past the retention has thousands.
LABELS_SHOWN = 5


def _hour_line(hour: HourOutcome) -> str:
    if hour.status == "not_ready":
        clocks = f"; {hour.clocks}" if hour.clocks else ""
        return f"{hour.label}  not ready  ({hour.detail}{clocks})"
    if hour.status == "expired":
        return f"{hour.label}  expired  ({hour.detail})"
    notes = [
        f"{count} {what}"
        for count, what in (
            (hour.duplicates, "duplicates dropped"),
            (hour.conflicts, "conflicting msg_ids"),
            (hour.outside, "outside the hour"),
            (hour.unreadable, "unreadable"),
            (hour.files if hour.files > 1 else 0, "different files"),
            (hour.earlier, "no longer served"),
        )
        if count
    ]
    text = f"{hour.label}  {hour.status:<9}{hour.records:>8} records"
    return text + (f"  ({', '.join(notes)})" if notes else "")


@click.command("pull")
@click.option(
    "--since",
    required=True,
    help="Start of the window: ISO 8601 (UTC unless a zone is given) or epoch ms. "
    "Whole hours are pulled.",
)
@click.option("--until", required=True, help="End of the window (exclusive), as --since.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of hour files and checkpoint; a pull into it resumes.",
)
@click.option(
    "--api",
    type=click.Choice(APIS),
    help="hourfiles (current) or legacy (ql pages) [env: EASEMOB_API; default: hourfiles].",
)
@click.option(
    "--hour-timezone",
    help="Zone hours are named in: UTC or +8 [env: EASEMOB_HOUR_TIMEZONE; default: UTC].",
)
@click.option(
    "--from",
    "from_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Read local .jsonl/.gz files or folders instead of Easemob (repeatable).",
)
@click.option(
    "--refetch",
    is_flag=True,
    help="Pull hours again that are already done, to pick up records that arrived late.",
)
@file_access_option()
@_connection_options
def pull_command(since, until, out_dir, from_paths, refetch, config_file, **flags) -> None:
    """Pull a window of chat history into one JSON-lines file per hour, resumably.

    Exits 0 when every hour is in --out (hours the source no longer keeps are listed as
    expired, with a warning), 2 on bad usage, configuration or a folder it cannot write, 3 when
    the source failed after all retries or has not written an hour yet (run the same pull
    again: completed hours are kept), 130 or 143 when interrupted (progress kept).
    """
    since_ms, until_ms = _instant(since, "--since"), _instant(until, "--until")
    check_window(since_ms, until_ms)
    from auditor.fsutil import refuse_inside_any_bag
    from auditor.processes import raise_kept, stops_kept

    refuse_inside_any_bag(out_dir, "a pull")
    from auditor.sources.interface import both_clocks

    with stops_kept() as stops:
        summary = _pulled(since_ms, until_ms, out_dir, from_paths, refetch, config_file, flags)
        crashpoints.reached("pull.ended")
        if from_paths:
            with suppress(OSError):  # only when empty: another pull may be sorting there
                (Path(out_dir) / SPOOL_FOLDER).rmdir()
        waiting = _summarized(summary)
        # A stop whose exception a finalizer swallowed once the hours were done (the source
        # closing) exited 0 though stopped; `pull` raises those of the hours itself.
        raise_kept(stops)
    if waiting:
        clocks = next((both_clocks(hour.clocks) + "; " for hour in waiting if hour.clocks), "")
        raise SourceError(
            f"{len(waiting)} hour(s) not ready yet at the source ({_listed(waiting)}); {clocks}"
            "run the same pull again later, completed hours are kept"
        )


def _pulled(since_ms, until_ms, out_dir, from_paths, refetch, config_file, flags) -> PullSummary:
    """The pull of the window from the source the options name, closed on the way out."""
    from auditor.hidden_env import secrets_hidden
    from auditor.sources.folder import work_folder
    from auditor.sources.local import LocalFileSource
    from auditor.sources.pull import pull
    from auditor.sources.settings import load_settings, make_source

    with ExitStack() as stack:
        if from_paths:
            # Sorted beside the pull, not in TMPDIR: a pull killed there left its copy of the
            # export for ever; here the next pull removes it (probe 20 #7).
            work = stack.enter_context(work_folder((Path(out_dir) / SPOOL_FOLDER).resolve()))
            zone = parse_hour_timezone(flags["hour_timezone"] or "UTC")
            source: Source = LocalFileSource(from_paths, hour_timezone=zone, spool_parent=work)
        else:
            settings = load_settings(flags, config_file=config_file)
            stack.enter_context(secrets_hidden([settings.client_secret]))
            source = make_source(settings)
        stack.enter_context(source)
        return pull(
            source,
            since_ms,
            until_ms,
            out_dir,
            refetch=refetch,
            on_hour=lambda hour: click.echo(_hour_line(hour)),
        )


def _summarized(summary: PullSummary) -> list[HourOutcome]:
    """Prints the totals and the hours expired at the source; returns the hours not ready."""
    pulled, done = summary.with_status("pulled"), summary.with_status("done")
    expired, waiting = summary.with_status("expired"), summary.with_status("not_ready")
    gone = f", {len(expired)} expired" if expired else ""
    click.echo(
        f"total: {summary.records} records in {len(summary.hours) - len(waiting)} hours "
        f"({len(pulled)} pulled, {len(done)} already done{gone}) in {summary.out_dir}"
    )
    if expired:
        # not an error: pulling again cannot bring them back, so exit 3 ("run again") would lie
        click.echo(
            f"auditor: warning: {len(expired)} hour(s) expired at the source "
            f"({_listed(expired)}): it no longer keeps them, so their records are lost to this "
            "pull unless an export holds them; recorded as expired, not asked for again "
            "(--refetch asks)",
            err=True,
        )
    return waiting


def _listed(hours: list[HourOutcome]) -> str:
    labels = [hour.label for hour in hours[:LABELS_SHOWN]]
    if len(hours) > LABELS_SHOWN:
        labels.append(f"... {hours[-1].label}")
    return ", ".join(labels)


@click.command("unread")
@click.argument("users", nargs=-1, required=True)
@_connection_options
def unread_command(users, config_file, **flags) -> None:
    """Print how many messages wait for each USER while offline."""
    if any(not user.strip() for user in users):
        raise ConfigError("a USER is empty: name each user whose unread count you want")
    from auditor.sources.settings import load_settings
    from auditor.sources.unread import unread_counts

    settings = load_settings(flags, config_file=config_file)
    for user, count in unread_counts(settings, users).items():
        click.echo(f"{user}\t{count}")


COMMANDS: list[click.Command] = [pull_command, unread_command]
