"""What a scheduled job meets that a shell does not: no HOME, a user the password database does not
know (a container run under an arbitrary uid), a working folder deleted under it. A path written
`~/...` where no shell expands it (a systemd `Environment=`, a Kubernetes `env:`, a policy's
`terms_file:`) is then an error of the operator's, said in one line with exit 2, as the config
file's own paths are kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_support import emulator_fixture, payload, run_args
from test_archive_support import make_keys

from auditor.cli import main
from auditor.resources import example_policy

UNKNOWN_USER = 4321  # in no password database: no home to expand `~` to


@pytest.fixture
def homeless():
    """A folder the unknown user may write in, and the command runner that runs as that user
    without HOME."""
    if os.geteuid() != 0:
        pytest.skip("runs a command as a user the password database does not know")
    folder = Path(tempfile.mkdtemp(prefix="homeless-", dir="/tmp"))
    folder.chmod(0o777)

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        environ = {key: value for key, value in os.environ.items() if key != "HOME"}

        def become() -> None:
            os.setgroups([])
            os.setgid(UNKNOWN_USER)
            os.setuid(UNKNOWN_USER)

        return subprocess.run(
            [sys.executable, "-m", "auditor", *args],
            cwd=folder,
            env={**environ, **(env or {})},
            preexec_fn=become,
            capture_output=True,
            text=True,
            timeout=60,
        )

    yield folder, run
    shutil.rmtree(folder)


def test_a_term_file_under_a_home_that_is_not_there_is_one_line_and_exit_2(homeless):
    folder, run = homeless
    head = example_policy().read_text(encoding="utf-8").split("retention:")[0]
    policy = folder / "policy.yaml"
    policy.write_text(
        head + "keywords:\n  - id: k\n    severity: low\n    terms_file: ~/terms.txt\n",
        encoding="utf-8",
    )
    policy.chmod(0o644)

    checked = run("policy", "check", str(policy))

    assert checked.returncode == 2, checked.stderr
    assert checked.stderr.count("\n") == 1 and "~/terms.txt" in checked.stderr


def test_a_secret_file_under_a_home_that_is_not_there_is_one_line_and_exit_2(homeless):
    _folder, run = homeless
    pulled = run(
        "pull", "--base-url", "http://127.0.0.1:9", "--org", "o", "--app", "a",
        "--client-id", "c", "--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z",
        "--out", "pulled", env={"EASEMOB_CLIENT_SECRET_FILE": "~/secret"},
    )  # fmt: skip

    assert pulled.returncode == 2, pulled.stderr
    assert pulled.stderr.count("\n") == 1 and "no such client secret file" in pulled.stderr


emulator = emulator_fixture("environment-secret", messages=100)


def test_a_run_whose_working_folder_was_deleted_writes_its_bag(emulator, tmp_path):
    """cron's `cd /srv/auditor/current && ...`, and a deploy that replaces that release while the
    run goes on: every path the run was given is absolute, so it needs no working folder."""
    keys = make_keys(tmp_path / "keys")[0]
    gone = tmp_path / "gone"
    gone.mkdir()

    def in_a_deleted_folder() -> None:
        os.chdir(gone)
        os.rmdir(gone)

    done = subprocess.run(
        [sys.executable, "-m", "auditor", *run_args(emulator, keys, tmp_path / "run", hours=1)],
        env={**os.environ, "EASEMOB_CLIENT_SECRET": "environment-secret"},
        preexec_fn=in_a_deleted_folder,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "run" / "archive").glob("run-*"))) == 1


def test_a_run_started_with_stdout_and_stderr_closed_audits_and_keeps_its_files_whole(
    emulator, tmp_path
):
    """cron's `>&-`, or a daemon that closed them: the run has nowhere to say anything, but must
    neither fail on that nor let the next file it opens take descriptor 1 or 2, where a line
    meant for stderr would be written into the state database or a bag."""
    keys = make_keys(tmp_path / "keys")[0]
    folder = tmp_path / "run"

    def closed() -> None:
        os.close(1)
        os.close(2)

    done = subprocess.run(
        [sys.executable, "-m", "auditor", "-vv",
         *run_args(emulator, keys, folder, "--workers", "2", hours=2)],
        env={**os.environ, "EASEMOB_CLIENT_SECRET": "environment-secret"},
        preexec_fn=closed,
        timeout=120,
    )  # fmt: skip
    (bag,) = (folder / "archive").glob("run-*")
    # what the run left is read in process: the closed descriptors were the run's alone
    verified = CliRunner().invoke(main, ["verify", str(bag), "--pubkey", str(keys.allowed_signers)])
    shown = CliRunner().invoke(main, ["state", "show", "--state", str(folder / "state.db")])

    assert done.returncode == 0
    assert (verified.exit_code, shown.exit_code) == (0, 0), verified.output + shown.output


def test_no_locale_and_an_odd_time_zone_make_the_same_bag(emulator, tmp_path):
    keys = make_keys(tmp_path / "keys")[0]
    bags = []
    for name, environ in [
        ("usual", {"LANG": "C.UTF-8", "TZ": "UTC"}),
        ("bare", {"LC_ALL": "C", "LANG": "C", "TZ": "Pacific/Chatham"}),  # +13:45 in November
    ]:
        folder = tmp_path / name
        subprocess.run(
            [sys.executable, "-m", "auditor", *run_args(emulator, keys, folder, hours=1)],
            env={**os.environ, "EASEMOB_CLIENT_SECRET": "environment-secret", **environ},
            capture_output=True,
            check=True,
            timeout=120,
        )
        (bag,) = (folder / "archive").glob("run-*")
        bags.append(payload(bag))

    assert bags[0] == bags[1]
