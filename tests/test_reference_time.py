"""A run judges retention and legal holds when it begins, or at the instant --as-of names.

The source serves the records now, so "over-retained" and "held" are statements about now: a
backfill judged as of its window's end reported years-old records as kept and missed every hold
begun since.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.partitions import HOUR_MS, format_instant, parse_instant
from auditor.pipeline import run_audit

SECRET = "reference-test-secret"
WEEK_THEN_DELETE = """\
version: 1
name: a week
retention:
  default: {id: week, keep_for: 7d, then: delete, severity: medium}
holds:
  - id: later-matter
    reason: a matter opened after the window
    scope: {message_type: [img]}
    starts: 2026-11-20
"""


emulator = run_support.emulator_fixture(SECRET, messages=600)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="reference-test")


def bag_info(bag: Path) -> dict[str, str]:
    lines = (bag / "bag-info.txt").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def dispositions(bag: Path) -> Counter[str]:
    lines = (bag / "data" / "findings.jsonl").read_bytes().splitlines()
    findings = [orjson.loads(line) for line in lines]
    return Counter(
        f["details"]["disposition"] for f in findings if f["category"] in ("retention", "hold")
    )


def test_a_run_judges_retention_and_holds_when_it_begins(emulator, keys, tmp_path):
    policy = tmp_path / "week.yaml"
    policy.write_text(WEEK_THEN_DELETE)
    before = int(time.time() * 1000)
    outcome = run_audit(
        run_support.settings_for(
            emulator, keys, tmp_path, SECRET, policy_path=policy, as_of_ms=None, fail_on="none"
        )
    )
    after = int(time.time() * 1000)

    judged = parse_instant(bag_info(outcome.bag_path)["Policy-Reference-Time"])
    assert before <= judged <= after
    found = dispositions(outcome.bag_path)
    assert found["dispose"] > 100 and found["hold"] > 0
    assert outcome.records == found["dispose"] + found["hold"]


def test_as_of_judges_them_at_the_instant_it_names(emulator, keys, tmp_path):
    policy = tmp_path / "week.yaml"
    policy.write_text(WEEK_THEN_DELETE)
    args = run_support.run_args(emulator, keys, tmp_path, hours=6)
    args[args.index("--policies") + 1] = str(policy)
    args[args.index("--as-of") + 1] = "2026-11-01T06:00Z"
    result = CliRunner().invoke(
        main, [*args, "--fail-on", "none", "--json"], env={"EASEMOB_CLIENT_SECRET": SECRET}
    )

    assert result.exit_code == 0, result.output
    bag = Path(orjson.loads(result.stdout)["bag"])
    assert bag_info(bag)["Policy-Reference-Time"] == format_instant(DEFAULT_START_MS + 6 * HOUR_MS)
    assert dispositions(bag) == Counter()  # every record kept: a week had not passed


def test_a_resumed_run_keeps_the_instant_its_first_attempt_began(emulator, keys, tmp_path):
    args = run_support.run_args(emulator, keys, tmp_path, hours=6)
    del args[args.index("--as-of") : args.index("--as-of") + 2]
    env = {**os.environ, "EASEMOB_CLIENT_SECRET": SECRET, "AUDITOR_CRASH_AT": "archive.partition:3"}
    args += ["--fail-on", "none", "--quiet"]
    began = int(time.time() * 1000)
    killed = subprocess.run(
        [sys.executable, "-m", "auditor", *args], env=env, capture_output=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr.decode()
    time.sleep(1.1)
    resumed = int(time.time() * 1000)
    # the resumed run in process: only the killed one must be a process of its own
    done = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert done.exit_code == 0, done.output
    (bag,) = [p for p in (tmp_path / "archive").iterdir() if not p.name.startswith(".")]
    judged = parse_instant(bag_info(bag)["Policy-Reference-Time"])
    assert began <= judged < resumed
