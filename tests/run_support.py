"""Shared by the run, stage, Dask and multi-app tests: the module's emulator, settings,
arguments, and what two runs must agree on byte for byte."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

from auditor import stages
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import RunSettings
from auditor.resources import example_policy
from auditor.sources.easemob import EasemobClient, RetryPolicy
from auditor.sources.settings import ConnectionSettings
from auditor.stages import PartitionProcessor


def emulator_fixture(secret: str, messages: int):
    """A module's `emulator` fixture: one emulator of `messages` over one day, answering the
    client secret `secret`, that the module's tests share."""

    @pytest.fixture(scope="module")
    def emulator():
        options = EmulatorOptions(messages=messages, days=1, client_secret=secret)
        with run_emulator(options) as running:
            yield running

    return emulator


def payload(bag: Path) -> dict[str, bytes]:
    """Every file a run must reproduce byte for byte: the payload and the undated bag-info.

    The report is left out, since it says when it was generated, and so is its share of
    bag-info's Payload-Oxum: a generation time on a whole second is written without its
    milliseconds, four bytes shorter.
    """
    files: dict[str, bytes] = {}
    report_bytes = report_files = 0
    for path in sorted((bag / "data").rglob("*")):
        if not path.is_file():
            continue
        if path.parent.name == "report":
            report_bytes += path.stat().st_size
            report_files += 1
        else:
            files[str(path.relative_to(bag))] = path.read_bytes()
    kept = []
    for line in (bag / "bag-info.txt").read_text().splitlines():
        if line.startswith("Payload-Oxum: "):
            size, count = map(int, line.removeprefix("Payload-Oxum: ").split("."))
            line = f"Payload-Oxum less the report: {size - report_bytes}.{count - report_files}"
        if not line.startswith("Bagging-Date"):
            kept.append(line)
    files["bag-info.txt"] = "\n".join(kept).encode()
    return files


def source_of(emulator, secret: str) -> ConnectionSettings:
    """Connection settings for a test emulator, with backoff short enough for tests."""
    return ConnectionSettings(
        base_url=emulator.base_url,
        org=emulator.options.org,
        app=emulator.options.app,
        client_id=emulator.options.client_id,
        client_secret=secret,
        backoff_base=0.001,
        backoff_cap=0.01,
    )


def settings_for(emulator, keys, folder: Path, secret: str, **overrides) -> RunSettings:
    """A run of the first six hours of the emulator's history into `folder`, its verdicts judged
    as of the window's end, so that two runs of it give the same bytes whenever they run."""
    values = dict(
        source=source_of(emulator, secret),
        policy_path=example_policy(),
        key_path=keys.private_key,
        out_dir=folder / "archive",
        state_path=folder / "state.db",
        since_ms=DEFAULT_START_MS,
        until_ms=DEFAULT_START_MS + 6 * HOUR_MS,
        ready_delay_hours=0,
    )
    values.update(overrides)
    values.setdefault("as_of_ms", values["until_ms"])
    return RunSettings(**values)


def run_args(emulator, keys, folder: Path, *extra: str, hours: int = 6) -> list[str]:
    """`auditor run` arguments for the first `hours` of the emulator's history into `folder`;
    backoff short enough for tests comes from a config file (it has no flags)."""
    config = folder / "auditor.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    config.write_text("source:\n  backoff_base: 0.001\n  backoff_cap: 0.01\n")
    return [
        "run",
        "--config", str(config),
        "--base-url", emulator.base_url,
        "--org", emulator.options.org,
        "--app", emulator.options.app,
        "--client-id", emulator.options.client_id,
        "--policies", str(example_policy()),
        "--key", str(keys.private_key),
        "--out", str(folder / "archive"),
        "--state", str(folder / "state.db"),
        "--since", "2026-11-01T00:00Z",
        "--until", f"2026-11-01T{hours:02d}:00Z",
        "--as-of", f"2026-11-01T{hours:02d}:00Z",
        *extra,
    ]  # fmt: skip


def stage_settings(
    tmp_path: Path, connection: ConnectionSettings | None = None, **overrides
) -> stages.StageSettings:
    """A worker's settings: the example policy, judged an hour into the emulator's history,
    spooling under `tmp_path/spool`, attachments not fetched."""
    values = dict(
        source=connection or ConnectionSettings("http://127.0.0.1:9", "o", "a", "c", "s"),
        policy_path=str(example_policy()),
        profile="loose",
        reference_ms=DEFAULT_START_MS + HOUR_MS,
        salt_key=b"k" * 32,
        spool_dir=str(tmp_path / "spool"),
        fetch_attachments=False,
    )
    values.update(overrides)
    return stages.StageSettings(**values)


def stage_processor(tmp_path: Path, monkeypatch, source, **overrides) -> PartitionProcessor:
    """A worker's stages over `source` (a `Source`), spooling under `tmp_path/spool`."""
    monkeypatch.setattr(stages, "make_source", lambda _settings, _pace=None: source)
    return PartitionProcessor(stage_settings(tmp_path, **overrides))


class StderrLines:
    """A running `auditor run`'s stderr, line by line, read by a thread of its own.

    Without --quiet and off a terminal, the run prints `hour ...` once an hour is checkpointed in
    the state: the way to watch its progress from outside, since the run holds the state
    database exclusively until it ends.
    """

    def __init__(self, process: subprocess.Popen) -> None:
        self._arrived: queue.Queue[str | None] = queue.Queue()
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._arrived.put(line.decode() if isinstance(line, bytes) else line)
        self._arrived.put(None)

    def wait_for_hours(self, count: int, timeout: float = 30.0) -> None:
        """Returns once `count` hours are checkpointed; fails on timeout or end of output."""
        deadline = time.monotonic() + timeout
        while sum(line.startswith("hour ") for line in self.lines) < count:
            line = self._arrived.get(timeout=max(deadline - time.monotonic(), 0.001))
            assert line is not None, f"the run ended first: {''.join(self.lines)}"
            self.lines.append(line)

    def rest(self, timeout: float = 30.0) -> list[str]:
        """Every line not yet taken, up to the end of output, without the progress lines."""
        while (line := self._arrived.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return [line for line in self.lines if not line.startswith("hour ")]


def emulator_client(emu, max_retries: int = 0) -> EasemobClient:
    """A client of the emulator's demo app, its retries (if any) a few milliseconds apart: the
    tests that talk to a source directly, not through a run."""
    retry = RetryPolicy(max_retries=max_retries, backoff_base=0.001, backoff_cap=0.01)
    return EasemobClient(
        emu.base_url, "demo-org", "demo-app", "demo-client", "demo-secret", retry=retry
    )
