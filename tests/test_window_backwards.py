"""A window given backwards is refused by `auditor run` and `auditor pull` in the same one line
and exit code, whichever source they read, before anything is fetched or written."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS, SyntheticHistory
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.resources import example_policy

SECRET = "throwaway-window-secret"
BACKWARDS = ("--since", "2026-11-01T02:00Z", "--until", "2026-11-01T01:00Z")
EMPTY = ("--since", "2026-11-01T01:00Z", "--until", "2026-11-01T01:00Z")
SAID = {
    BACKWARDS: "the window is empty: --until 2026-11-01T01:00:00Z is not after "
    "--since 2026-11-01T02:00:00Z",
    EMPTY: "the window is empty: --until 2026-11-01T01:00:00Z is not after "
    "--since 2026-11-01T01:00:00Z",
}


@pytest.fixture(scope="module")
def emulator():
    with run_emulator(EmulatorOptions(messages=240, days=1, client_secret=SECRET)) as running:
        yield running


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="auditor@test")


def export(folder: Path) -> Path:
    history = SyntheticHistory(messages=240, days=1)
    records = [
        history.record(i)
        for i in history.index_range(DEFAULT_START_MS, DEFAULT_START_MS + 2 * HOUR_MS)
    ]
    path = folder / "export.jsonl"
    path.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    return path


def source_args(source: str, emulator, folder: Path) -> list:
    if source == "network":
        return [
            *("--base-url", emulator.base_url, "--org", "demo-org", "--app", "demo-app"),
            *("--client-id", "demo-client", "--retries", "1"),
        ]
    return ["--from", export(folder)]


def command_args(command: str, keys, folder: Path) -> list:
    if command == "pull":
        return ["--out", folder / "pulled"]
    return [
        *("--policies", example_policy(), "--key", keys.private_key, "--out", folder / "archive"),
        *("--state", folder / "state.db", "--attachments", "skip", "--quiet"),
    ]


@pytest.mark.parametrize("window", [BACKWARDS, EMPTY], ids=["backwards", "empty"])
@pytest.mark.parametrize("source", ["network", "local"])
@pytest.mark.parametrize("command", ["run", "pull"])
def test_a_backwards_window_is_one_line_and_exit_2_from_run_and_pull_alike(
    command, source, window, emulator, keys, tmp_path
):
    args = [command, *window, *source_args(source, emulator, tmp_path)]
    args += command_args(command, keys, tmp_path)
    result = CliRunner().invoke(
        main, [str(arg) for arg in args], env={"EASEMOB_CLIENT_SECRET": SECRET}
    )

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [f"auditor: error: {SAID[window]}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["export.jsonl"] if source == "local" else []
    )
