"""`auditor state prune`: keep the state database's message index from growing without end."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.errors import ConfigError
from auditor.partitions import format_instant, parse_instant
from auditor.state import prune


@click.group("state")
def state_group() -> None:
    """The state database of a chain of runs (runs, checkpoints, message index)."""


@state_group.command("prune")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("state.db"),
    show_default=True,
    help="State database of the chain.",
)
@click.option(
    "--before",
    required=True,
    help="Forget messages sent before this instant: ISO 8601 (UTC unless a zone is given) or "
    "epoch ms. Choose one the source no longer serves (Easemob keeps days to months of history).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be forgotten.")
def prune_command(state_path: Path, before: str, dry_run: bool) -> None:
    """Forget, in the message index, the messages sent before --before.

    The index keeps a message from being archived twice and tells changed and vanished ones; the
    bags keep every message whatever is pruned, and runs and the chain are untouched. A pruned
    message the source still serves would be archived again by a run over its window.
    """
    try:
        before_ms = parse_instant(before)
    except ConfigError as error:
        raise ConfigError(f"--before: {error}") from None
    outcome = prune(state_path, before_ms, dry_run=dry_run)
    verb = "would forget" if dry_run else "forgot"
    click.echo(
        f"{state_path}: {verb} {outcome.messages:,} message(s) sent before "
        f"{format_instant(before_ms)}; {outcome.kept:,} kept in the index"
    )


COMMANDS: list[click.Command] = [state_group]
