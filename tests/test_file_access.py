"""Who may read what the auditor writes: every file a run, a pull, a report or `due` leaves is its
owner's alone (0600, folders 0700) whatever umask the command was started with, or its group's
too with `--file-access group`; and bags made so, read-only or copied by someone else, still
verify. Each command runs as its own process, with the umask a scheduler would give it."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from run_support import emulator_fixture, run_args
from test_archive_support import make_keys

from auditor import file_access
from auditor.cli import access, main
from auditor.state import State

SECRET = "file-access-secret"
emulator = emulator_fixture(SECRET, messages=300)
ROOT = os.geteuid() == 0
NOBODY = 65534


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return make_keys(tmp_path_factory.mktemp("keys"))[0]


def auditor(*args: str, umask: int = 0o022, env: dict | None = None, user: int | None = None):
    """`auditor ARGS` in a process of its own started with `umask` (as `user`, when given)."""

    def start() -> None:
        os.umask(umask)
        if user is not None:
            os.setgroups([NOBODY])
            os.setgid(NOBODY)
            os.setuid(user)

    done = subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        env={**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, **(env or {})},
        preexec_fn=start,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return done


def modes(folder: Path, *leave_out: str) -> dict[str, int]:
    """The mode of every file and folder under `folder` (not itself), by its path inside."""
    found = {}
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(parent, name)
            inside = str(path.relative_to(folder))
            if inside not in leave_out:
                found[inside] = stat.S_IMODE(path.lstat().st_mode)
    return found


def wrong(found: dict[str, int], file_mode: int, folder_mode: int, folder: Path) -> dict:
    """The paths of `found` whose mode is not the one expected of their kind."""
    expected = {path: folder_mode if (folder / path).is_dir() else file_mode for path in found}
    return {path: oct(mode) for path, mode in found.items() if mode != expected[path]}


def bag_of(folder: Path) -> Path:
    (bag,) = (folder / "archive").glob("run-*")
    return bag


def test_the_commands_option_offers_the_accesses_this_module_knows():
    (option,) = [each for each in main.params if each.name == "file_access"]
    assert (tuple(option.type.choices), option.envvar) == (file_access.ACCESS, file_access.ENVVAR)
    assert access.ACCESSES == file_access.ACCESS


def test_a_commands_own_file_access_option_lets_the_group_read_what_it_writes(tmp_path):
    """Given after the command's name, where its --help lists it, as well as before."""
    out = tmp_path / "keys"
    result = CliRunner().invoke(main, ["keygen", "--file-access", "group", "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert modes(tmp_path) == {
        "keys": 0o750,
        "keys/auditor-signing-key.pem": 0o600,
        "keys/auditor-signing-key.pub.pem": 0o640,
        "keys/allowed_signers": 0o640,
    }


def test_a_command_called_in_a_process_leaves_that_process_its_own_umask(tmp_path):
    before = os.umask(0o022)
    try:
        CliRunner().invoke(main, ["--file-access", "group", "keygen", "--out", str(tmp_path)])
        after = os.umask(0o022)
    finally:
        os.umask(before)
    assert (after, stat.S_IMODE((tmp_path / "auditor-signing-key.pem").stat().st_mode)) == (
        0o022,
        0o600,
    )


@pytest.fixture(scope="module")
def made(emulator, keys, tmp_path_factory):
    """A run of two hours started with umask 000, as some schedulers start jobs."""
    folder = tmp_path_factory.mktemp("made")
    auditor(*run_args(emulator, keys, folder, hours=2), umask=0o000)
    return folder


@pytest.fixture(scope="module")
def made_for_group(emulator, keys, tmp_path_factory):
    """A run of one hour with AUDITOR_FILE_ACCESS=group, started with umask 000."""
    folder = tmp_path_factory.mktemp("made-for-group")
    env = {"AUDITOR_FILE_ACCESS": "group"}
    auditor(*run_args(emulator, keys, folder, hours=1), umask=0o000, env=env)
    return folder


def test_every_file_a_run_writes_is_its_owners_alone_under_umask_000(made):
    found = modes(made, "auditor.yaml")
    assert any(path.startswith("archive/run-") and "attachments/sha256/" in path for path in found)
    assert "state.db" in found and any(path.endswith("report.html") for path in found)
    assert wrong(found, 0o600, 0o700, made) == {}


def test_every_file_a_run_writes_is_its_owners_alone_under_umask_022(emulator, keys, tmp_path):
    """Its out folder made by the operator, a spool folder left there by an earlier version."""
    (tmp_path / "archive").mkdir(mode=0o700)
    (tmp_path / "archive" / ".work").mkdir()
    (tmp_path / "archive" / ".work").chmod(0o755)
    auditor(*run_args(emulator, keys, tmp_path, hours=1), umask=0o022)
    assert wrong(modes(tmp_path, "auditor.yaml"), 0o600, 0o700, tmp_path) == {}


def test_pull_report_and_due_write_for_their_owner_alone(emulator, made, tmp_path):
    pulled, rendered = tmp_path / "pulled", tmp_path / "rendered"
    auditor(
        "pull", "--base-url", emulator.base_url, "--org", emulator.options.org,
        "--app", emulator.options.app, "--client-id", emulator.options.client_id,
        "--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z", "--out", str(pulled),
        umask=0o000,
    )  # fmt: skip
    auditor("report", str(bag_of(made)), "-o", str(rendered), umask=0o000)
    state = tmp_path / "state.db"
    shutil.copy(made / "state.db", state)
    auditor(
        "due", "--state", str(state), "--on", "2030-01-01",
        "--policy", str(bag_of(made) / "data" / "policy.yaml"),
        "--out", str(made / "archive"), umask=0o000,
    )  # fmt: skip
    assert any(path.endswith(".jsonl") for path in modes(pulled))
    for folder in pulled, rendered:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert wrong(modes(folder), 0o600, 0o700, folder) == {}
    assert stat.S_IMODE((tmp_path / "state.db.due-holds").stat().st_mode) == 0o600


def test_group_access_lets_the_group_read_and_enter_and_no_one_else(made_for_group):
    found = modes(made_for_group, "auditor.yaml")
    assert wrong(found, 0o640, 0o750, made_for_group) == {}


def test_group_access_in_the_config_is_applied_unless_the_flag_says_otherwise(
    emulator, keys, tmp_path
):
    owner = ("--file-access", "owner")
    for name, before, after in ("group", (), ()), ("before", owner, ()), ("after", (), owner):
        folder = tmp_path / name
        args = run_args(emulator, keys, folder, *after, hours=1)
        config = folder / "auditor.yaml"
        config.write_text(config.read_text() + "run:\n  file_access: group\n")
        auditor(*before, *args, umask=0o000)
        file_mode, folder_mode = (0o640, 0o750) if name == "group" else (0o600, 0o700)
        assert wrong(modes(folder, "auditor.yaml"), file_mode, folder_mode, folder) == {}


def test_a_state_others_could_read_is_made_the_owners_alone_when_opened(made, tmp_path):
    state = tmp_path / "state.db"
    shutil.copy(made / "state.db", state)
    state.chmod(0o644)
    before = os.umask(0o022)
    try:
        file_access.restrict("owner")  # as every command does first
        State(state).close()
    finally:
        os.umask(before)
    assert wrong(modes(tmp_path), 0o600, 0o700, tmp_path) == {}


@pytest.fixture
def shared():
    """A folder other users may enter (pytest's own is its owner's alone), removed after."""
    folder = Path(tempfile.mkdtemp(prefix="file-access-", dir="/tmp"))
    folder.chmod(0o711)
    yield folder
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)  # a bag made read-only
    shutil.rmtree(folder)


def test_verify_and_report_read_a_bag_made_read_only(made, keys, shared):
    mine = shared / "mine"
    subprocess.run(["cp", "-r", str(made / "archive"), str(mine)], check=True)
    shutil.copy(keys.allowed_signers, mine / "allowed_signers")
    user = None
    if ROOT:  # root reads whatever the modes say: the bag's owner reads it here
        user = NOBODY
        for path in [mine, *mine.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
    (bag,) = mine.glob("run-*")
    subprocess.run(["chmod", "-R", "a-w", str(bag)], check=True)
    verified = auditor("verify", str(bag), "--pubkey", str(mine / "allowed_signers"), user=user)
    auditor("report", str(bag), "-o", str(mine / "rendered"), user=user)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert (mine / "rendered" / "report.html").stat().st_size > 0


@pytest.mark.skipif(not ROOT, reason="copies as root, and as another user")
def test_a_bag_copied_by_root_or_by_a_member_of_its_group_verifies(made_for_group, keys, shared):
    theirs = shared / "theirs"
    subprocess.run(["cp", "-a", str(made_for_group / "archive"), str(theirs)], check=True)
    for path in [theirs, *theirs.rglob("*")]:
        os.lchown(path, 1, NOBODY)  # made by another user (daemon), of the group nogroup
    (bag,) = theirs.glob("run-*")
    public = shared / "allowed_signers"
    shutil.copy(keys.allowed_signers, public)
    public.chmod(0o644)
    copies = shared / "copies"
    copies.mkdir(mode=0o777)
    copies.chmod(0o777)
    subprocess.run(["cp", "-r", str(bag), str(copies / "by-root")], check=True)
    member = subprocess.run(
        ["cp", "-r", str(bag), str(copies / "by-member")],
        preexec_fn=lambda: (os.setgroups([NOBODY]), os.setgid(NOBODY), os.setuid(NOBODY)),
        capture_output=True,
        text=True,
    )
    assert member.returncode == 0, member.stderr
    for copy, user in [(copies / "by-root", None), (copies / "by-member", NOBODY)]:
        verified = auditor("verify", str(copy), "--pubkey", str(public), user=user)
        assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_bag_file_the_reader_may_not_read_is_one_line_and_exit_2_not_a_verdict(
    made, keys, shared
):
    theirs = shared / "theirs"
    subprocess.run(["cp", "-r", str(made / "archive"), str(theirs)], check=True)
    shutil.copy(keys.allowed_signers, theirs / "allowed_signers")
    (bag,) = theirs.glob("run-*")
    user = None
    if ROOT:
        user = NOBODY
        for path in [theirs, *theirs.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
    records = sorted((bag / "data" / "records").iterdir())[0]
    records.chmod(0o000)

    verified = subprocess.run(
        [sys.executable, "-m", "auditor", "verify", str(bag), "--pubkey",
         str(theirs / "allowed_signers")],
        preexec_fn=(lambda: (os.setgroups([NOBODY]), os.setgid(NOBODY), os.setuid(NOBODY)))
        if user else None,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert (verified.returncode, verified.stderr) == (
        2,
        f"auditor: error: {records}: cannot read (Permission denied)\n",
    )


def test_tasks_sharing_a_worker_write_under_all_their_masks_and_leave_it_its_own():
    """A Dask worker's threads share one umask: a group run's task beside an owner-only one's
    must not widen the other's files, and the worker's own (000 here) is back after both."""
    before = os.umask(0)
    try:
        with file_access.umask_while(file_access.UMASKS["group"]):
            alone = file_access.current_umask()
            with file_access.umask_while(file_access.UMASKS["owner"]):
                together = file_access.current_umask()
            after_one = file_access.current_umask()
        after_both = file_access.current_umask()
    finally:
        os.umask(before)

    assert (alone, together, after_one, after_both) == (0o027, 0o077, 0o027, 0)
