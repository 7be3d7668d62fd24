"""What `auditor demo` prints for a newcomer to read and paste: counts written one way, the
verdict `auditor run` would give, and a verify command that runs as printed in a new shell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_archive_support import build_bag, make_keys, signature_checks

from auditor.archive import layout
from auditor.demo import run_line, verify_runs
from auditor.pipeline import RunOutcome

# A shell without the venv activated, as after `make demo` in a new terminal, or under cron.
BARE_PATH = {"PATH": "/usr/bin:/bin"}


def test_a_run_line_writes_every_count_with_thousands_separators_and_the_verdict():
    outcome = RunOutcome(
        sequence=2,
        bag_path=Path("demo-output/archive/run-000002"),
        since_ms=0,
        until_ms=3_600_000,
        records=15_012,
        skipped_duplicates=0,
        findings=2_411,
        by_severity={"high": 1_272, "medium": 604, "low": 35, "info": 500},
        fail_on="high",
        merkle_root="0" * 64,
        tagmanifest_sha256="0" * 64,
        attachments=0,
    )

    assert run_line(outcome) == (
        "run 2: 15,012 records, 2,411 findings (1,272 high, 604 medium, 35 low, 500 info), "
        "FAIL: 1,272 at or above 'high'"
    )


def test_the_demo_verifies_each_bag_once_for_its_lines_and_the_chain(tmp_path):
    """Two chained bags: each bag's two signatures checked once (not once for its own line and
    again for the chain's), the verdict of each run and of the chain printed."""
    _files, key = make_keys(tmp_path / "keys")
    archive, previous, outcomes = tmp_path / "archive", layout.ZERO_HASH, []
    for sequence in (1, 2):
        name = f"run-00000{sequence}"
        summary = build_bag(archive, key, name, sequence, previous, messages=24, seed=sequence)
        previous = summary.tagmanifest_sha256
        outcomes.append(
            RunOutcome(
                sequence=sequence, bag_path=archive / name, since_ms=0, until_ms=3_600_000,
                records=24, skipped_duplicates=0, findings=0, by_severity={}, fail_on="high",
                merkle_root=summary.merkle_root, tagmanifest_sha256=previous, attachments=0,
            )
        )  # fmt: skip
    printed: list[str] = []

    with signature_checks() as checks:
        problems = verify_runs(archive, key.public_key(), outcomes, printed.append)

    assert (problems, len(checks)) == (0, 2 * 2)
    assert printed == [
        "run 1: 24 records, 0 findings (none), PASS: nothing at or above 'high', verify: intact",
        "run 2: 24 records, 0 findings (none), PASS: nothing at or above 'high', verify: intact",
        "chain of 2 runs: intact",
    ]


def test_the_verify_command_the_demo_prints_runs_as_printed_in_a_shell_without_the_venv(
    tmp_path,
):
    """In Chinese, as `run --report-lang zh-CN` writes it: the reports change, not what the demo
    prints (commands and counts to paste stay as `run` prints them)."""
    command = ["demo", "--messages", "600", "--days", "2", "--report-lang", "zh-CN"]
    demo = subprocess.run(
        [sys.executable, "-m", "auditor", *command],
        cwd=tmp_path,
        env=BARE_PATH,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    reports = sorted((tmp_path / "demo-output/archive").glob("run-*/data/report/report.html"))
    assert len(reports) == 2
    assert all('<html lang="zh-CN">' in report.read_text() for report in reports)
    assert "chain of 2 runs: intact" in demo.stdout
    (printed,) = [line for line in demo.stdout.splitlines() if line.startswith("verify:")]

    pasted = subprocess.run(
        ["/bin/sh", "-c", printed.removeprefix("verify:").strip()],
        cwd=tmp_path,
        env=BARE_PATH,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert pasted.returncode == 0, pasted.stderr
    assert ": intact: run 2, " in pasted.stdout
