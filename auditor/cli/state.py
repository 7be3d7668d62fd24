"""`auditor state prune|show|rebuild` and `auditor due`: the state database of a chain of runs.

What a command does is imported when it begins: `due` and `state rebuild` read bags and policies
(the policy engine, the schemas, the verifier), which `state show`, `state prune` and every
--help have no use for.
"""

from __future__ import annotations

import json
import logging
import sys
from itertools import islice
from pathlib import Path

import click
from click.core import ParameterSource

from auditor import expected_head
from auditor.cli.access import file_access_option
from auditor.cli.archive import _PUBKEY
from auditor.errors import EXIT_FINDINGS, ConfigError
from auditor.partitions import format_instant, parse_instant

log = logging.getLogger(__name__)


def _state_option(help: str = "State database of the chain.", *, required: bool = False):
    """`--state`: the chain's state database, `state.db` here unless given (or, required, the
    one `state rebuild` writes). The options below are made by one function each: the four
    commands repeated their shape."""
    return click.option(
        "--state",
        "state_path",
        type=click.Path(dir_okay=False, path_type=Path),
        required=required,
        default=None if required else Path("state.db"),
        show_default=not required,
        help=help,
    )


def _format_option(*choices: str, help: str):
    """`--format`: how the answer is written, a table for a terminal by default."""
    return click.option(
        "--format",
        "output",
        type=click.Choice(choices),
        default="table",
        show_default=True,
        help=help,
    )


def _instant_option(name: str, help: str, *, required: bool = False, metavar: str | None = None):
    """An instant (`--before`, `--on`, `--since`), read by `_instant` or `_day_end`."""
    return click.option(
        name, name.removeprefix("--"), required=required, metavar=metavar, help=help
    )


def _bags_option(help: str, *, required: bool = False, exists: bool = False):
    """`--out`: the chain's folder of bags."""
    return click.option(
        "--out",
        "out_dir",
        required=required,
        type=click.Path(file_okay=False, exists=exists, path_type=Path),
        help=help,
    )


@click.group("state")
def state_group() -> None:
    """The state database of a chain of runs (runs, checkpoints, message index)."""


@state_group.command("prune")
@_state_option()
@_instant_option(
    "--before",
    required=True,
    help="Forget messages sent before this instant: ISO 8601 (UTC unless a zone is given) or "
    "epoch ms. Choose one the source no longer serves (Easemob keeps days to months of history).",
)
@_instant_option(
    "--on",
    metavar="INSTANT",
    help="Keep what `auditor due` lists after this instant (as its --on; a date alone is its "
    "end). Default: now.",
)
@click.option(
    "--carried-out",
    "carried_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The listing of `auditor due` (its CSV or JSON) whose deletions and reviews were "
    "carried out: its delete, review, expired and no-retention rows are forgotten too.",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be forgotten.")
@file_access_option()
def prune_command(
    state_path: Path, before: str, on: str | None, carried_out: Path | None, dry_run: bool
) -> None:
    """Forget, in the message index, the messages sent before --before, but those `auditor due`
    still lists: retention (or a hold) not ended on --on, held by an open-ended hold, or due for
    deletion or review and not in the --carried-out listing.

    The index keeps a message from being archived twice and tells changed and vanished ones, and
    `due` answers from it alone; the bags keep every message whatever is pruned, and runs and
    the chain are untouched. A pruned message the source still serves would be archived again
    by a run over its window.

    Exits 0 when done, 2 when the state is missing or the --carried-out file is no listing of
    `auditor due` (nothing forgotten), 4 while a run holds the state.
    """
    from auditor.carried_out import acted_on
    from auditor.state import prune

    before_ms = _instant("--before", before)
    on_ms = _day_end("--on", on) if on else None
    if on_ms is not None:
        from auditor.due import judged_at  # once read: a value refused loads no due code

        on_ms = judged_at(on_ms)
    done = acted_on(carried_out) if carried_out is not None else ()
    outcome = prune(state_path, before_ms, dry_run=dry_run, due_on_ms=on_ms, carried_out=done)
    verb = "would forget" if dry_run else "forgot"
    needed = (
        f" ({outcome.needed:,} sent before it, which `auditor due` still needs: retention not "
        "ended, or held)"
        if outcome.needed
        else ""
    )
    pending = (
        f"; {outcome.pending:,} due for deletion or review by the index, kept until a listing "
        "of `auditor due` that names them so is given as carried out (--carried-out FILE)"
        if outcome.pending
        else ""
    )
    click.echo(
        f"{state_path}: {verb} {outcome.messages:,} message(s) sent before "
        f"{format_instant(before_ms)}; {outcome.kept:,} kept in the index{needed}{pending}"
    )


@state_group.command("show")
@_state_option()
@_format_option("table", "json", help="A table for a terminal, or JSON for a script.")
@expected_head.OPTION
def show_command(state_path: Path, output: str, expect_head: str | None) -> None:
    """Show the chain's runs (window, counts, hours lost, policy digest, bag), its head and the
    database's size. Read-only.

    Exits 0 when shown, 1 when no run it records has the --expect-head head (its newest runs
    are missing), 2 when the state is missing, unreadable or damaged (SQLite's quick_check), 4
    while a run holds it. The JSON's `format` is its version.
    """
    from auditor import state_show

    view = state_show.show(state_path, expected_head.parse(expect_head))
    if output == "json":
        click.echo(json.dumps(view.to_dict(), indent=2))
        return
    for line in state_show.as_table(view):
        click.echo(line)


@state_group.command("rebuild")
@_bags_option("The chain's folder of bags.", required=True, exists=True)
@_state_option("The state database to write; it must not exist yet.", required=True)
@_PUBKEY
@expected_head.OPTION
@click.option(
    "--policy",
    "policies",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The policy file a bag written before bags kept theirs applied (its SHA-256 is the "
    "bag's Policy-SHA256); repeat for several.",
)
@file_access_option()
def rebuild_command(
    out_dir: Path,
    state_path: Path,
    pubkeys: tuple[Path, ...],
    expect_head: str | None,
    policies: tuple[Path, ...],
) -> None:
    """Write a new state database from the bags in --out, once every bag and the chain verify:
    runs, chain head and message index, so a lost or out-of-date state does not force a new
    chain. Give a path where no file is, then put the new database in place of the old one.

    Exits 0 when written, 1 when a bag or the chain does not verify, or no bag has the
    --expect-head head (its newest bags were deleted; nothing written in either case), 2 when
    the folder, a key or a bag's policy cannot be read or --state exists, 4 while a run holds
    the folder.
    """
    from auditor.archive.publickey import load_public_keys
    from auditor.fsutil import refuse_inside_any_bag
    from auditor.state_rebuild import rebuild

    refuse_inside_any_bag(state_path, "the state database")
    expected = expected_head.parse(expect_head)
    outcome = rebuild(out_dir, state_path, load_public_keys(pubkeys), expected, policies)
    click.echo(
        f"{state_path}: rebuilt from {outcome.runs} run(s) of {out_dir}: {outcome.messages:,} "
        f"message(s) indexed, {outcome.unidentified:,} without a msg_id"
        + (f", {outcome.verbatim:,} kept verbatim (no leaf)" if outcome.verbatim else "")
        + "; chain head "
        f"{outcome.head_tagmanifest_sha256}"
    )


@click.command("due")
@_state_option()
@_instant_option(
    "--on",
    metavar="INSTANT",
    help="The day to answer for: an instant, ISO 8601 (UTC unless a zone is given) or epoch ms; "
    "a date alone means its end. Default: now.",
)
@_instant_option(
    "--since",
    metavar="INSTANT",
    help="List only the retentions that ended after this instant (what became due since the "
    "last look); holds are always listed, every verdict always counted.",
)
@_format_option(
    "table", "csv", "json", help="A table for a terminal, CSV for a spreadsheet, JSON for a script."
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The current policy file: the messages due for deletion or review, and those of runs "
    "that did not apply one of its holds, are read again from their bags and listed as held "
    "when one of its holds (not ended on the day) covers them; those held by a hold it says has "
    "ended are judged by its retention rules unless another covers them.",
)
@_bags_option(
    "The chain's folder of bags, read with --policy [default: --config's run.out, else the "
    "state's folder]."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config file of `auditor run`: its run.state and run.out (where the runs wrote "
    "their bags) apply unless --state or --out is given.",
)
@expected_head.OPTION
@file_access_option()
def due_command(
    state_path: Path,
    on: str | None,
    since: str | None,
    output: str,
    policy_path: Path | None,
    out_dir: Path | None,
    config_file: Path | None,
    expect_head: str | None,
) -> None:
    """What is due across the whole chain: the messages whose retention has ended (to delete at
    the source and purge from the archive, or to review), those under a legal hold, each with
    the rule or hold that decided it and the bag and seq that hold it (for `auditor prove`).

    Answers from the state's message index, as each run judged its messages (a hold of its
    policy that begins later holds them already): without --policy, a hold added since is not
    known; with it, a hold added since covers every message it matches; a message due whose
    line in its bag could not be checked against them is listed as `unchecked`, never as due.
    Read-only.

    Exits 0 when answered, 1 when no run the state records has the --expect-head head or (after
    the listing) a message is listed as unchecked (a bag not in --out makes its messages so), 2
    when the state or the policy is missing or unreadable, --out holds none of the chain's bags,
    or the state is damaged (SQLite's quick_check), 4 while a run holds the state.
    """
    on_ms = _day_end("--on", on) if on else _now_ms()
    since_ms = _day_end("--since", since) if since else None
    if out_dir is not None and policy_path is None:
        raise ConfigError("--out is read with --policy only: give the current policy file too")
    if config_file is not None:
        state_path, out_dir = _from_config(config_file, state_path, out_dir)
    from auditor import due as due_module

    policy = None
    if policy_path is not None:
        from auditor.policies.loading import load_policy

        policy = load_policy(policy_path, matchers=False)
    expected = expected_head.parse(expect_head)
    with due_module.due(state_path, on_ms, since_ms, policy, out_dir, expected) as report:
        if report.rejudged is not None:
            from auditor import due_holds, due_memo

            rejudged = report.rejudged
            if rejudged.missing_bags:
                _warn_missing(rejudged.missing_bags, out_dir or state_path.parent)
            log.warning(
                "holds of %s applied to %s message(s) read again from their bags (due for "
                "deletion or review, held by a hold it says has ended, or archived by a run that "
                "did not apply one of its holds)%s: %s now held, %s no longer held (judged by its "
                "retention rules)%s",
                policy_path,
                f"{rejudged.read:,}",
                f" and {rejudged.remembered:,} whose retention runs, as an earlier due read them "
                f"({due_memo.memo_path(state_path).name})"
                if rejudged.remembered
                else "",
                f"{rejudged.held:,}",
                f"{rejudged.released:,}",
                f"; {rejudged.unchecked:,} could not be checked in their bags as indexed ("
                + "; ".join(
                    f"{why}: {count:,}, {due_holds.UNCHECKED_WHY[why]}"
                    for why, count in rejudged.unchecked_why.items()
                )
                + "), listed as unchecked: do not delete them before checking them by hand"
                if rejudged.unchecked
                else "",
            )
        elif set(report.counts) - {"hold"}:
            log.warning(
                "holds are as each run applied them to the messages it archived: a hold added to "
                "the policy since is not applied here (a message it covers is counted as kept, "
                "or listed for deletion once its retention ends); before deleting, give the "
                "current policy (auditor due --policy CURRENT.yaml), or check the list against "
                "it (auditor scan --policies CURRENT.yaml --now %s OUT)",
                format_instant(on_ms),
            )
        out = sys.stdout
        if output == "json":
            for chunk in report.json_chunks():
                out.write(chunk)
        elif output == "csv":
            from auditor.report.cells import csv_line, spreadsheet_cell

            # as findings.csv: a BOM, and msg_ids kept as text, never run as a formula
            out.write("\ufeff" + csv_line(due_module.CSV_FIELDS))
            lines = (csv_line([spreadsheet_cell(value) for value in m]) for m in report.messages)
            while batch := "".join(islice(lines, 1_000)):
                out.write(batch)
        else:
            for line in due_module.as_table(report):
                out.write(line + "\n")
        unchecked = report.counts.get("unchecked", 0)
    if unchecked:
        out.flush()
        log.error(
            "%s message(s) due could not be checked against the holds of %s and are listed as "
            "unchecked, not as due: exit 1",
            f"{unchecked:,}",
            policy_path,
        )
        click.get_current_context().exit(EXIT_FINDINGS)


def _from_config(config_file: Path, state_path: Path, out_dir: Path | None) -> tuple[Path, Path]:
    """The state and folder of bags of `due`: the flags given, else those `auditor run` takes
    from the same config (its paths from the file's folder), so `due --config auditor.yaml`
    finds the bags where the runs wrote them."""
    from auditor.apps import has_apps
    from auditor.config import load_run_section

    if has_apps(config_file):
        raise ConfigError(
            f"{config_file}: it lists apps:, each with its own chain; give one app's --state and "
            "--out instead of --config"
        )
    section = load_run_section(config_file)
    source = click.get_current_context().get_parameter_source("state_path")
    if source is ParameterSource.DEFAULT and "state" in section:
        state_path = Path(section["state"])
    if out_dir is None:
        out_dir = Path(section["out"]) if "out" in section else state_path.parent
    return state_path, out_dir


def _warn_missing(missing: dict[str, int], bags_dir: Path) -> None:
    """One line naming the bags `due --policy` did not find, whose messages are unchecked."""
    named = ", ".join(f"{name} ({count:,})" for name, count in islice(missing.items(), 5))
    more = f" and {len(missing) - 5:,} more" if len(missing) > 5 else ""
    log.warning(
        "%s bag(s) not in %s: %s%s; their messages read again are listed as unchecked (restore "
        "the bags there, or give the folder that holds them with --out)",
        f"{len(missing):,}",
        bags_dir,
        named,
        more,
    )


def _instant(option: str, text: str) -> int:
    try:
        return parse_instant(text)
    except ConfigError as error:
        raise ConfigError(f"{option}: {error}") from None


def _day_end(option: str, text: str) -> int:
    """An instant; a date alone (any ISO 8601 form: 2027-11-01, 20271101, 2027-W44-1) is the end
    of that day, UTC, its last millisecond (`due.judged_at` keeps the calendar's last one from
    ending a retention kept for ever)."""
    from datetime import date

    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return _instant(option, text)
    return _instant(option, text) + 86_400_000 - 1


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


COMMANDS: list[click.Command] = [state_group, due_command]
