"""README's examples are what a newcomer copies first: its config is accepted as written, the
flags it names exist, and the settings it calls file-only have no flag."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import load_run_section
from auditor.sources.settings import load_settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def readme_config() -> str:
    """The `auditor.yaml` README shows, the YAML block after "holds every setting"."""
    after = README[README.index("`auditor.yaml` holds every setting") :]
    return re.search(r"```yaml\n(.*?)```", after, re.S)[1]


def test_the_readme_config_is_accepted_as_written_with_every_value_it_shows(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text(readme_config())
    (tmp_path / "secret").write_text("s3cret")

    source = load_settings(
        config_file=config, environ={"EASEMOB_CLIENT_SECRET_FILE": str(tmp_path / "secret")}
    )
    run = load_run_section(config)

    assert (source.org, source.app, source.api, source.retention_days) == (
        "my-org", "my-app", "hourfiles", 3,
    )  # fmt: skip
    assert (source.timeout, source.max_retries, source.backoff_base, source.backoff_cap) == (
        30, 6, 0.5, 30,
    )  # fmt: skip
    assert (run["workers"], run["late_hours"], run["namespace"]) == (2, 48, "easemob-auditor")


def run_flags() -> set[str]:
    help_text = CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output
    return set(re.findall(r"(--[a-z][a-z-]+)", help_text))


@pytest.mark.parametrize(
    "flag",
    ["--timeout", "--retries", "--incremental", "--since", "--late-hours", "--retention-days"],
)
def test_a_flag_the_readme_names_for_a_setting_exists(flag):
    assert flag in run_flags()


def test_the_settings_the_readme_calls_file_only_have_no_flag():
    said = README[README.index("flags win). ") :].split(" are set in the file only")[0]
    file_only = re.findall(r"`([a-z_]+)`", said)
    assert len(file_only) == 5
    assert not {"--" + key.replace("_", "-") for key in file_only} & run_flags()


def after_heading(marker: str, kind: str) -> str:
    """The first ```KIND block after the README text `marker`."""
    return re.search(rf"```{kind}\n(.*?)```", README[README.index(marker) :], re.S)[1]


def daily_due_script() -> str:
    return after_heading("`due-daily.sh` keeps each day's listing", "sh")


def command_flags(command: str) -> set[str]:
    help_text = CliRunner().invoke(main, [command, "--help"], terminal_width=200).output
    return set(re.findall(r"(--[a-z][a-z-]+)", help_text))


def test_the_scheduled_commands_take_the_options_the_readme_gives_them():
    scheduled = after_heading("A daily `due` beside the hourly run", "cron")
    calls = re.findall(r"auditor (run|due) ([^>\n]*)", scheduled + daily_due_script())
    assert {command for command, _ in calls} == {"run", "due"}
    for command, options in calls:
        assert set(re.findall(r"(--[a-z][a-z-]+)", options)) <= command_flags(command), command


def test_the_daily_due_script_acts_on_the_exit_codes_due_documents():
    """0 and 1 keep the listing (1 with a line: messages listed as unchecked), 4 is tried
    again, any other is a failure: as `auditor due --help` says its codes."""
    script = daily_due_script()
    help_text = " ".join(CliRunner().invoke(main, ["due", "--help"]).output.split())

    assert re.findall(r'"\$code" -eq (\d+)', script) == ["4"]
    assert re.findall(r"^  (\S+)\) ", script, re.M) == ["0", "1", "*"]
    assert "Exits 0 when answered, 1 when" in help_text and "listed as unchecked" in help_text
    assert "4 while a run holds the state" in help_text


@pytest.fixture(scope="module")
def daily_template(tmp_path_factory):
    """A real chain of one run beside README's `due-daily.sh`, as the script expects it (its
    `.venv/bin/auditor`, `auditor.yaml`, `policies.yaml`): made once, copied by each test."""
    import json
    import shutil
    import subprocess
    import sys

    from auditor.archive.keys import generate_key_files
    from auditor.resources import example_policy

    folder = tmp_path_factory.mktemp("daily")
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "auditor").symlink_to(Path(sys.executable).parent / "auditor")
    generate_key_files(folder / "keys", identity="readme-test")
    shutil.copy(example_policy(), folder / "policies.yaml")
    (folder / "auditor.yaml").write_text(
        "run:\n  policies: policies.yaml\n  key: keys/auditor-signing-key.pem\n"
        "  out: archive/\n  state: state.db\n"
    )
    body = {"bodies": [{"type": "txt", "msg": "hi"}]}
    record = {"msg_id": "1", "timestamp": 1761955200000, "from": "a", "to": "b", "payload": body}
    (folder / "r.jsonl").write_text(json.dumps(record) + "\n")
    auditor = str(folder / ".venv" / "bin" / "auditor")
    ran = subprocess.run(
        [auditor, "run", "--config", "auditor.yaml", "--from", "r.jsonl", "--quiet"],
        cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    (folder / "due-daily.sh").write_text(daily_due_script())
    return folder


def daily_chain(template, tmp_path):
    """A copy of `template` in `tmp_path`, and a function that runs its script by `sh` and
    gives its exit code, stderr and the listings it kept in due/."""
    import shutil
    import subprocess

    shutil.copytree(template, tmp_path, symlinks=True, dirs_exist_ok=True)

    def daily(env=None):
        done = subprocess.run(
            ["sh", "due-daily.sh"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
            env=env,
        )  # fmt: skip
        listings = sorted((tmp_path / "due").iterdir())
        return done.returncode, done.stderr, [p.name for p in listings]

    return daily


def test_the_daily_due_script_keeps_each_listing_and_says_why_there_is_none(
    daily_template, tmp_path
):
    """The script as README gives it, run by `sh` on a real chain of one run: the listing of a
    day kept in due/ (exit 0), kept with a line when a message is unchecked (its bag's line
    edited: exit 1), and none but a line when `due` fails (no state: exit 2)."""
    import shutil

    daily = daily_chain(daily_template, tmp_path)

    code, _err, listings = daily()
    assert (code, len(listings)) == (0, 1) and listings[0].startswith("due-")
    assert '"delete","=""1"""' in (tmp_path / "due" / listings[0]).read_text(encoding="utf-8-sig")

    (lines,) = (tmp_path / "archive").glob("run-*/data/records/*.jsonl")
    lines.write_text(lines.read_text().replace('"from":"a"', '"from":"z"'))
    code, err, listings = daily()
    assert (code, len(listings)) == (1, 1) and "lists unchecked messages" in err

    shutil.rmtree(tmp_path / "due")
    (tmp_path / "state.db").unlink()
    code, err, listings = daily()
    assert (code, listings) == (2, [])
    assert "state.db" in err and "auditor due failed with exit 2" in err


# Holds the run lock on the state, as a run does, until the file it names exists.
HOLD_LOCK = """
import fcntl, os, sys, time
lock = open(sys.argv[1], "a")
fcntl.flock(lock, fcntl.LOCK_EX)
print("held", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
lock.close()
open(sys.argv[2] + ".done", "w").close()
"""

# `sleep` for the script: says it was asked, and (with release-on-sleep) ends the lock's holder.
FAKE_SLEEP = """#!/bin/sh
echo "$*" >> slept
[ -e release-on-sleep ] || exit 0
touch release
while [ ! -e release.done ]; do :; done
"""


def test_the_daily_due_script_tries_again_while_a_run_holds_the_state(daily_template, tmp_path):
    """Exit 4 (a run holds the state): the script waits and tries again, keeping the listing of
    the try that got through; after three tries it gives up with exit 4, no listing and a line,
    having waited only between tries. `sleep` is replaced so as not to wait 600 s; the lock is
    the real one, held by another process as a run holds it."""
    import os
    import subprocess
    import sys

    daily = daily_chain(daily_template, tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "sleep").write_text(FAKE_SLEEP)
    (tmp_path / "bin" / "sleep").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    def hold_lock():
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, "state.db.lock", "release"],
            cwd=tmp_path, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert holder.stdout.readline() == "held\n"
        return holder

    holder = hold_lock()
    try:
        code, err, listings = daily(env)
    finally:
        (tmp_path / "release").touch()
        holder.wait(timeout=60)
    assert (code, listings) == (4, [])
    assert "busy" in err and "auditor due failed with exit 4" in err
    assert (tmp_path / "slept").read_text() == "600\n600\n"

    for name in ("slept", "release", "release.done"):
        (tmp_path / name).unlink()
    (tmp_path / "release-on-sleep").touch()
    holder = hold_lock()
    try:
        code, err, listings = daily(env)
    finally:
        holder.wait(timeout=60)
    assert (code, len(listings)) == (0, 1), err
    assert (tmp_path / "slept").read_text() == "600\n"
    assert '"delete","=""1"""' in (tmp_path / "due" / listings[0]).read_text(encoding="utf-8-sig")


def test_the_readme_names_every_module_whose_change_empties_what_due_keeps():
    """README tells when `STATE.due-holds` is emptied (the bags read again once): by the files
    of `due_memo.MATCHING`, which must all be named there."""
    from auditor import due_memo

    said = README[README.index("`STATE.due-holds` keeps what it learnt") :].split("\n\n")[0]
    said = " ".join(said.split())
    for name in due_memo.MATCHING:
        assert f"{name.rpartition('.')[2]}.py`" in said, name
