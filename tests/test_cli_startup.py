"""A command imports what it needs and no more: `auditor --help` lists every command without
importing one, each command's `--help` (and an option it refuses) imports none of the libraries
its work needs, and `auditor verify` (legal's laptop) runs without the pipeline, the emulator or
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

# What `--help` may import of the auditor: the entry point, the group, its error handling and
# its exit codes.
HELP_MODULES = {
    "auditor",
    "auditor.cli",
    "auditor.cli.exit_codes",
    "auditor.cli.lazy",
    "auditor.entry",
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

# What a command's --help, or an option it refuses, has no use for: its work's libraries and the
# modules that import them (about a second of CPU for `run --help` when it imported them all).
NOT_FOR_HELP = (
    "auditor.apps",
    "auditor.config",
    "auditor.due",
    "auditor.emulator.server",
    "auditor.pipeline",
    "auditor.policies",
    "auditor.report.model",
    "auditor.sources.easemob",
    "auditor.sources.settings",
    "auditor.stages",
    "auditor.state_rebuild",
    "auditor.validation",
    "jinja2",
    "jsonschema",
    "requests",
    "yaml",
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


@pytest.mark.parametrize("command", ["verify", "verify-proof"])
def test_the_verifiers_import_nothing_that_audits_serves_pulls_or_renders(command, tmp_path):
    (tmp_path / "bag").mkdir()
    target = tmp_path / ("bag" if command == "verify" else "proof.json")

    code, modules = modules_after(command, str(target), "--pubkey", str(tmp_path / "none.pem"))

    assert code == 2 and "auditor.archive.verify" in modules  # the key is missing
    assert [name for name in sorted(modules) if name.startswith(NOT_FOR_VERIFY)] == []


# Every command's --help, then options each command refuses in its body, before it starts work.
EACH_HELP = """
import contextlib, io, sys
from auditor.cli import COMMANDS, main

def ask(*args):
    before = set(sys.modules)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main.main(list(args), prog_name="auditor")
        except SystemExit as done:
            code = done.code
    print(" ".join(args), code, *sorted(set(sys.modules) - before), sep="\\t")

for name in COMMANDS:
    ask(name, "--help")
    for sub in getattr(main.get_command(None, name), "commands", ()):
        ask(name, sub, "--help")
ask("run", "--since", "yesterday")
ask("pull", "--since", "yesterday", "--until", "today", "--out", "nowhere")
ask("due", "--on", "someday")
ask("state", "prune", "--before", "someday")
"""


def test_no_command_imports_its_work_for_its_help_or_an_option_it_refuses():
    shown = subprocess.run(
        [sys.executable, "-c", EACH_HELP], capture_output=True, text=True, check=True
    ).stdout
    imported = {}
    for line in shown.splitlines():
        args, code, *modules = line.split("\t")
        imported[args] = (int(code), [name for name in modules if name.startswith(NOT_FOR_HELP)])

    assert len(imported) > len(COMMANDS) + 4
    assert {args: modules for args, (_code, modules) in imported.items() if modules} == {}
    assert {args for args, (code, _modules) in imported.items() if code != 0} == {
        "run --since yesterday",
        "pull --since yesterday --until today --out nowhere",
        "due --on someday",
        "state prune --before someday",
    }
    assert {code for code, _modules in imported.values()} == {0, 2}


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


@pytest.mark.parametrize("name", ["run", "validate"])
def test_a_profile_choice_written_out_for_help_is_the_validators_own(name):
    from auditor.validation import PROFILES

    command = main.get_command(click.Context(main), name)
    (profile,) = [option for option in command.params if option.name == "profile"]

    assert tuple(profile.type.choices) == PROFILES


STATE = "{tmp}/state.db"
KEY = "{tmp}/none.pem"


@pytest.mark.parametrize(
    ("args", "module"),
    [
        (["due", "--state", STATE], "auditor.due"),
        (
            ["state", "rebuild", "--out", ".", "--state", STATE, "--pubkey", KEY],
            "auditor.state_rebuild",
        ),
    ],
)
def test_what_reads_the_state_and_the_bags_imports_no_http_client_nor_policy_engine(
    args, module, tmp_path
):
    """`due` and `state rebuild` read bags (state_rebuild, due_holds), never the network, and
    judge retention and holds, never keywords: state_rebuild took a legacy source's entity
    fields from its class, and requests with it; `auditor.policies` loaded its engine."""
    code, modules = modules_after(*(arg.format(tmp=tmp_path) for arg in args))

    assert code == 2 and module in modules
    unused = ("requests", "urllib3", "auditor.sources.easemob", "auditor.policies.engine")
    assert [name for name in sorted(modules) if name.startswith(unused)] == []
