"""A click group that imports a command's module only when that command runs.

Importing every command's module (the pipeline, the emulator, the policy engine, jsonschema,
requests, Jinja2) cost about a second of CPU before any command began: `auditor --help`, a
cron's `auditor run`, legal's `auditor verify` and each subprocess of the test suite paid it.
This is the lazy group of click's "Complex Applications" page, with the one line `--help`
lists for each command kept beside its module's name, so that listing them imports none.
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from auditor.entry import import_held


@dataclass(frozen=True)
class Lazy:
    """Where a command lives, and the sentence `--help` lists for it: the first sentence of
    its help, from which click makes the same short help as from the whole text."""

    module: str
    summary: str


class LazyGroup(click.Group):
    """Commands named in `lazy` are added from their module's `COMMANDS` when first asked for."""

    def __init__(self, *args, lazy: dict[str, Lazy] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            for command in import_held(self.lazy[cmd_name].module).COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with a stand-in carrying the summary for each command not loaded."""
        listed = [
            (name, self.commands.get(name) or click.Command(name, help=self.lazy[name].summary))
            for name in self.list_commands(ctx)
        ]
        listed = [(name, command) for name, command in listed if not command.hidden]
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _command in listed)
        with formatter.section("Commands"):
            formatter.write_dl(
                [(name, command.get_short_help_str(limit)) for name, command in listed]
            )
