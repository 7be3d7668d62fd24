"""Shared by the run, Dask and multi-app tests: what two runs must agree on byte for byte."""

from __future__ import annotations

from pathlib import Path

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.partitions import HOUR_MS
from auditor.pipeline import RunSettings
from auditor.resources import example_policy
from auditor.sources.settings import ConnectionSettings


def payload(bag: Path) -> dict[str, bytes]:
    """Every file a run must reproduce byte for byte: the payload and the undated bag-info."""
    files = {
        str(path.relative_to(bag)): path.read_bytes()
        for path in sorted((bag / "data").rglob("*"))
        if path.is_file() and path.parent.name != "report"
    }
    info = (bag / "bag-info.txt").read_text().splitlines()
    files["bag-info.txt"] = "\n".join(
        line for line in info if not line.startswith("Bagging-Date")
    ).encode()
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
    """A run of the first six hours of the emulator's history into `folder`."""
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
    return RunSettings(**values)
