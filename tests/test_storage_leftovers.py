"""What killed runs leave in the archive folder is removed by the next run (probe 20 #2).

A run replacing a killed one covers another window, so its bag has another name: the killed
run's unpublished bag (`.run-….partial`) stayed, one per kill of an hourly schedule.
"""

from __future__ import annotations

import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main

SECRET = "leftovers-secret"


emulator = run_support.emulator_fixture(SECRET, messages=300)


def test_the_unpublished_bags_of_killed_runs_are_removed_by_the_next_run(emulator, tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="test")
    archive = tmp_path / "archive"
    stale = [
        archive / ".run-000001-2026110100-2026110101.partial",
        archive / ".run-000001-2026110100-2026110103.partial",
    ]
    for folder in stale:
        (folder / "data" / "records").mkdir(parents=True)
        (folder / "data" / "records" / "2026110100.jsonl").write_bytes(b"{}\n" * 1000)
    other = archive / ".keep-me"
    other.mkdir()
    args = run_support.run_args(emulator, keys, tmp_path, "--workers", "1", hours=2)

    result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert result.exit_code in (0, 1), result.output
    assert not any(folder.exists() for folder in stale)
    assert other.is_dir()
    assert [entry.name for entry in archive.glob("run-*")] == ["run-000001-2026110100-2026110102"]
