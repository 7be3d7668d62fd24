"""A command imports what it needs and no more: `auditor --help` lists every command without
importing one, and `auditor verify` (legal's laptop) runs without the pipeline, the emulator or
the source's HTTP client. Each fresh interpreter reports the modules it ended with."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import click
import pytest

import auditor.cli
from auditor.cli import COMMANDS, main
from auditor.cli.lazy import LazyGroup

# What `--help` may import of the auditor: the group, its error handling and its exit codes.
HELP_MODULES = {
    "auditor",
    "auditor.cli",
    "auditor.cli.exit_codes",
    "auditor.cli.lazy",
    "auditor.errors",
}
# What a verifier has no use for: running audits, serving, pulling, rendering.
NOT_FOR_VERIFY = (
    "auditor.pipeline",
    "auditor.emulator",
    "auditor.sources",
    "auditor.policies",
    "auditor.report",
    "auditor.validation",
    "jsonschema",
    "jinja2",
    "requests",
)

SHOW_MODULES = """
import runpy, sys
try:
    runpy.run_module("auditor", run_name="__main__")
except SystemExit as done:
    code = done.code
print("\\n".join(["--modules--", str(code), *sorted(sys.modules)]))
"""


def modules_after(*args: str) -> tuple[int, set[str]]:
    """The exit code of `python -m auditor ARGS` and every module it had imported at the end."""
    shown = subprocess.run(
        [sys.executable, "-c", SHOW_MODULES, *args], capture_output=True, text=True, check=True
    ).stdout
    code, *modules = shown.split("--modules--\n")[1].split()
    return int(code), set(modules)


def interpreter_modules() -> set[str]:
    """What any interpreter of this venv starts with (site, .pth hooks, `__main__`)."""
    shown = subprocess.run(
        [sys.executable, "-c", "import sys; print(*sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(shown.stdout.split())


def test_help_lists_every_command_importing_none_of_them_nor_a_library_but_click():
    code, modules = modules_after("--help")

    assert code == 0
    assert {name for name in modules if name.split(".")[0] == "auditor"} == HELP_MODULES
    added = {name.split(".")[0] for name in modules - interpreter_modules()}
    assert added - set(sys.stdlib_module_names) == {"auditor", "click"}


@pytest.mark.parametrize("args", [["verify", "--help"], ["verify-proof", "--help"]])
def test_the_verifiers_import_nothing_that_audits_serves_pulls_or_renders(args):
    code, modules = modules_after(*args)

    assert code == 0 and "auditor.archive.verify" in modules
    assert [name for name in sorted(modules) if name.startswith(NOT_FOR_VERIFY)] == []


def commands_section(group: click.Group, width: int) -> str:
    formatter = click.HelpFormatter(width=width)
    group.format_commands(click.Context(group), formatter)
    return formatter.getvalue()


@pytest.mark.parametrize("width", [50, 80, 200])
def test_help_lists_each_command_as_the_loaded_command_would_list_itself(width):
    loaded = [main.get_command(click.Context(main), name) for name in COMMANDS]
    eager = click.Group("auditor", commands=loaded)

    listed = commands_section(LazyGroup("auditor", lazy=COMMANDS), width)

    assert listed == commands_section(eager, width)
    assert listed.count("\n") == len(COMMANDS) + 1


def test_every_command_of_every_cli_module_is_named_in_the_table_with_its_module():
    modules = [
        importlib.import_module(f"auditor.cli.{each.name}")
        for each in pkgutil.iter_modules(auditor.cli.__path__)
    ]
    found = {
        command.name: module.__name__
        for module in modules
        for command in getattr(module, "COMMANDS", ())
    }

    assert found == {name: lazy.module for name, lazy in COMMANDS.items()}


def test_a_command_not_in_the_table_is_still_one_usage_line_with_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "auditor", "verfiy"], capture_output=True, text=True
    )

    assert result.returncode == 2
    assert result.stderr.startswith("auditor: error: No such command 'verfiy'.")
    assert result.stderr.count("\n") == 1
