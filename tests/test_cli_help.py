"""`--help` says what a run really does when an option is left out, and the exit codes README
documents, so a reader of either learns the same."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.cli.run import DEFAULTS, run_command
from auditor.sources.settings import ConnectionSettings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def shown_help(*command: str) -> str:
    """The help as one line of words: click wraps it to the terminal's width."""
    output = CliRunner().invoke(main, [*command, "--help"], terminal_width=200).output
    return " ".join(output.split())


def option_help(name: str) -> str:
    (option,) = [each for each in run_command.params if each.name == name]
    return " ".join(option.help.split())


OPTIONS_WITH_DEFAULTS = [
    name
    for name, default in DEFAULTS.items()
    if not isinstance(default, bool)  # a flag is off unless given
    and name in {each.name for each in run_command.params}
]


@pytest.mark.parametrize("name", OPTIONS_WITH_DEFAULTS)
def test_every_run_option_the_run_defaults_names_its_default(name):
    assert f"default: {DEFAULTS[name]}" in option_help(name)


@pytest.mark.parametrize("name", ["hour_timezone", "api", "max_retries", "retention_days"])
def test_every_run_option_of_the_source_names_its_default(name):
    (default,) = [
        each.default for each in dataclasses.fields(ConnectionSettings) if each.name == name
    ]
    shown = f"{default:g}" if isinstance(default, float) else default
    assert f"default: {shown}" in option_help(name)


def test_the_signing_key_help_names_both_ways_to_give_its_passphrase():
    shown = option_help("key")
    assert "AUDITOR_KEY_PASSPHRASE," in shown and "AUDITOR_KEY_PASSPHRASE_FILE" in shown


def readme_exit_codes() -> list[str]:
    table = README[README.index("### Exit codes") :].split("\n\n")[1]
    return re.findall(r"^\| (\d+) \|", table, re.M)


def help_exit_codes(shown: str) -> list[str]:
    table = shown.split("Exit codes")[1].split("Options:")[0]
    return re.findall(r"(?:^|\s)(\d+) [a-z]", table)


def test_run_help_and_the_top_help_show_readme_exit_codes_table_in_full():
    codes = readme_exit_codes()
    assert codes == ["0", "1", "2", "3", "4", "70", "130", "141", "143"]

    run_help, top_help = shown_help("run"), shown_help()

    assert help_exit_codes(run_help) == codes == help_exit_codes(top_help)
    for said in (
        "input file",
        "term file",
        "cannot write",
        "has not written an hour of the window yet",
    ):
        assert said in run_help and said in top_help


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        ("prove", ["0", "2"]),
        ("verify-proof", ["0", "1", "2"]),
        ("pull", ["0", "2", "3", "130", "143"]),
    ],
)
def test_the_commands_legal_and_operators_script_name_their_exit_codes(command, codes):
    """test_archive_cli and test_pull_cli hold each command to the codes its help names."""
    shown = shown_help(command).split("Options:")[0]

    assert re.findall(r"\b(\d+)(?= (?:when|with|or|on))", shown) == codes


# Every command that writes files (bags, reports, a pull's folder, keys, a proof, the state).
WRITERS = [
    "run",
    "demo",
    "pull",
    "report",
    "keygen",
    "prove",
    "due",
    "state rebuild",
    "state prune",
]


@pytest.mark.parametrize("command", WRITERS)
def test_every_command_that_writes_files_takes_file_access_after_its_name(command):
    """`auditor run --file-access group` as well as `auditor --file-access group run`: a user
    reads a command's --help for what it can do, and types the option where it lists it."""
    shown = shown_help(*command.split())

    assert "--file-access [owner|group]" in shown
    assert "AUDITOR_FILE_ACCESS" in shown and "0640" in shown


def test_the_hour_timeout_help_names_the_units_it_takes():
    """`--help` showed `30m, 3600s` only: `1h`, `2d` and a bare number of seconds were left to a
    guess (a bare `1` is a second, not an hour), and so was the range the parser refuses past."""
    shown = option_help("hour_timeout")

    assert "s, m, h or d" in shown and "a bare number is seconds" in shown
    assert "1s to 7d" in shown
