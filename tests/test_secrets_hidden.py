"""Secrets given in environment variables are not in the environment of a run's workers.

Read by the coordinator, they stayed where any process of the same user reads them: in each
forked worker's `/proc/<pid>/environ`, and in every program a worker starts. Removing them from
`os.environ` alone does not do it: that file shows the bytes a process started with, which a
forked worker inherits. The test reads the file of a real run's workers while they work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

import pytest
import run_support

from auditor.archive.keys import generate_key_files
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.hidden_env import secrets_hidden
from auditor.resources import example_policy

SECRET = "Cs-5e4f-hidden-from-workers"
PASSPHRASE = "Kp-91ab-hidden-from-workers"
pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def environment(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None


def test_neither_a_run_nor_its_workers_hold_a_secret_in_their_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDITOR_KEY_PASSPHRASE", PASSPHRASE)
    keys = generate_key_files(tmp_path / "keys", identity="test")
    options = EmulatorOptions(
        messages=300, days=1, client_secret=SECRET, slow_rate=1.0, slow_seconds=0.4
    )
    seen: dict[int, bytes] = {}
    with run_emulator(options) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--workers", "2", "--quiet", hours=6)
        env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, "APP_SECRET_COPY": SECRET}
        run = subprocess.Popen([sys.executable, "-m", "auditor", *args], env=env)
        try:
            while run.poll() is None:
                for child in children(run.pid):
                    if (block := environment(child)) is not None and b"PATH=" in block:
                        seen[child] = block
                        seen[run.pid] = environment(run.pid) or b""
                time.sleep(0.02)
        finally:
            run.kill()
            run.wait()
    assert run.returncode in (0, 1)

    assert len(seen) >= 3, "the run's workers (and itself) were read while they worked"
    for block in seen.values():
        assert SECRET.encode() not in block
        assert PASSPHRASE.encode() not in block
        assert b"EASEMOB_CLIENT_SECRET=" not in block


def descendants(pid: int) -> list[int]:
    found = children(pid)
    for child in list(found):
        found += descendants(child)
    return found


def watch_environments(command: list[str], env: dict[str, str]) -> tuple[int, dict[int, bytes]]:
    """Runs `command`, reading the environment of it and every process under it while it runs."""
    seen: dict[int, bytes] = {}
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        while run.poll() is None:
            for pid in (run.pid, *descendants(run.pid)):
                if (block := environment(pid)) is not None and b"PATH=" in block:
                    seen[pid] = block
            time.sleep(0.02)
    finally:
        run.kill()
        run.wait()
    return run.returncode, seen


def test_apps_run_side_by_side_hold_no_secret_in_any_processs_environment(tmp_path, monkeypatch):
    """Each app runs in a spawned process, which starts with its parent's environment: the
    parent takes the secrets out before starting them and hands each the passphrase."""
    monkeypatch.setenv("AUDITOR_KEY_PASSPHRASE", PASSPHRASE)
    keys = generate_key_files(tmp_path / "keys", identity="test")
    apps = {"shop": SECRET + "-shop", "support": SECRET + "-support"}
    slow = {"messages": 300, "days": 1, "slow_rate": 1.0, "slow_seconds": 0.3}
    with (
        run_emulator(EmulatorOptions(app="shop", client_secret=apps["shop"], **slow)) as shop,
        run_emulator(
            EmulatorOptions(app="support", client_secret=apps["support"], **slow)
        ) as support,
    ):
        entries = "".join(
            f"  - name: {name}\n    source:\n      base_url: {emulator.base_url}\n"
            f"      org: {emulator.options.org}\n      app: {name}\n"
            f"      client_id: {emulator.options.client_id}\n"
            f"      client_secret_env: {name.upper()}_SECRET\n"
            for name, emulator in (("shop", shop), ("support", support))
        )
        config = tmp_path / "auditor.yaml"
        config.write_text(
            "source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\nrun:\n"
            f"  policies: {example_policy()}\n  key: {keys.private_key}\n"
            f"  out: {tmp_path / 'archive'}\n  state: {tmp_path / 'state.db'}\n"
            "  fail_on: none\n  workers: 1\n  parallel_apps: 2\n"
            "  since: '2026-11-01T00:00Z'\n  until: '2026-11-01T04:00Z'\n"
            "  as_of: '2026-11-01T04:00Z'\napps:\n" + entries
        )
        env = {
            **os.environ,
            "SHOP_SECRET": apps["shop"],
            "SUPPORT_SECRET": apps["support"],
            "AUDITOR_KEY_PASSPHRASE": PASSPHRASE,
        }
        code, seen = watch_environments(
            [sys.executable, "-m", "auditor", "run", "--config", str(config), "--quiet"], env
        )

    assert code == 0
    assert len(seen) >= 5, "the parent, both apps' processes and their workers were read"
    for block in seen.values():
        for secret in (*apps.values(), PASSPHRASE):
            assert secret.encode() not in block
    assert sorted(path.name for path in (tmp_path / "archive").iterdir()) == ["shop", "support"]


def test_a_pull_holds_no_secret_in_its_environment_while_it_works(tmp_path):
    options = EmulatorOptions(
        messages=300, days=1, client_secret=SECRET, slow_rate=1.0, slow_seconds=0.3
    )
    with run_emulator(options) as emulator:
        command = [sys.executable, "-m", "auditor", "pull", "--out", str(tmp_path / "pulled")]
        command += ["--since", "2026-11-01T00:00Z", "--until", "2026-11-01T04:00Z"]
        command += ["--base-url", emulator.base_url, "--org", emulator.options.org]
        command += ["--app", emulator.options.app, "--client-id", emulator.options.client_id]
        env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET}
        code, seen = watch_environments(command, env)

    assert code == 0
    assert seen, "the pull was read while it worked"
    assert all(SECRET.encode() not in block for block in seen.values())
    assert len(list((tmp_path / "pulled").glob("2026110*.jsonl"))) == 4


def test_the_secrets_are_back_in_os_environ_after_the_block_for_a_next_run(monkeypatch):
    monkeypatch.setenv("EASEMOB_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("MY_APP_SECRET", "app-secret")
    monkeypatch.setenv("HOME_LIKE", "kept")

    with secrets_hidden(["app-secret"]):
        assert "EASEMOB_CLIENT_SECRET" not in os.environ
        assert "MY_APP_SECRET" not in os.environ
        assert os.environ["HOME_LIKE"] == "kept"
        shown = subprocess.run(["env"], capture_output=True, text=True).stdout
        assert SECRET not in shown and "app-secret" not in shown

    assert os.environ["EASEMOB_CLIENT_SECRET"] == SECRET
    assert os.environ["MY_APP_SECRET"] == "app-secret"
