"""`auditor run` on a chain that fell behind the source's retention (Easemob keeps hour files 3
days unless a contract says more), against the emulator over loopback HTTP: an hour the source
refuses once it is past the retention is archived as lost, with a high finding, and the chain
moves on; an hour it refuses while young still stops the run with exit 3, to be run again."""

from __future__ import annotations

import json
import re
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
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import DAY_MS, HOUR_MS, Partition, format_instant
from auditor.records import content_hash

SECRET = "retention-test-secret"
START = DEFAULT_START_MS  # 2026-11-01T00:00Z
# No keyword or PII rules: every high finding of these runs is about the source.
POLICY = "version: 1\nretention:\n  default: {keep_for: 1y, then: delete}\n"


@pytest.fixture
def emulator():
    """Four days of history; the source keeps hour files 3 days, and its clock starts six hours
    into the history, weeks behind this machine's."""
    options = EmulatorOptions(
        messages=1200,
        days=4,
        client_secret=SECRET,
        retention_days=3,
        clock_start=(START + 6 * HOUR_MS) / 1000,
    )
    with run_emulator(options) as running:
        yield running


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


def audit(emulator, keys, folder, *window: str):
    policy = folder / "policy.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    policy.write_text(POLICY)
    args = run_support.run_args(
        emulator, keys, folder, "--policies", str(policy), "--quiet", *window
    )
    return CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})


def test_a_chain_whose_middle_hours_expired_archives_the_rest_with_one_high_finding_an_hour(
    emulator, keys, tmp_path
):
    first = audit(
        emulator, keys, tmp_path, "--since", "2026-11-01T00:00Z", "--until", "2026-11-01T03:00Z"
    )
    # At 2026-11-04T12:30 the source refuses the hours that ended by 2026-11-01T12:30.
    emulator.clock.advance((START + 3 * DAY_MS + 12.5 * HOUR_MS - emulator.clock.now_ms()) / 1000)
    second = audit(
        emulator, keys, tmp_path, "--incremental", "--until", "2026-11-01T18:00Z", "--json"
    )
    asked = emulator.stats.by_route("hour")
    third = audit(emulator, keys, tmp_path, "--incremental", "--until", "2026-11-01T18:00Z")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 1, second.output  # --fail-on high, the default
    outcome = json.loads(second.stdout)
    assert outcome["window"] == {"since": "2026-11-01T03:00:00Z", "until": "2026-11-01T18:00:00Z"}
    assert outcome["by_severity"]["high"] == 9
    data = Path(outcome["bag"]) / "data"
    lost = [orjson.loads(line) for line in (data / "findings.jsonl").open()]
    lost = [finding for finding in lost if finding["severity"] == "high"]
    assert [(f["category"], f["rule"], f["details"]["label"]) for f in lost] == [
        ("coverage", "hour-expired", f"20261101{hour:02d}") for hour in range(3, 12)
    ]
    assert lost[0]["message"] == (
        "hour 2026110103 (2026-11-01T03:00:00Z) could no longer be fetched from the source, "
        "which keeps hour files 3 days (retention_days); asked at "
        f"{lost[0]['details']['judged_at']}, it answered: illegal arguments: appkey: "
        "demo-org#demo-app, time: 2026110103, maybe chat message history is expired or "
        "unstored; the hour's records are lost to this archive unless an export holds them"
    )
    archived = Counter(
        content_hash(orjson.loads(line)["record"])
        for path in (data / "records").glob("*.jsonl")
        for line in path.open("rb")
    )
    expected = emulator.expected_records(START + 12 * HOUR_MS, START + 18 * HOUR_MS)
    assert archived == Counter(content_hash(record) for record in expected)
    summary = json.loads((data / "report" / "summary.json").read_text())
    assert {"category": "coverage", "rule": "hour-expired", "severity": "high", "count": 9} in (
        summary["findings"]["by_rule"]
    )
    assert (third.exit_code, third.output) == (
        0,
        "nothing to do: no complete hour since the last run\n",
    )
    assert emulator.stats.by_route("hour") == asked


def test_one_hour_lost_is_told_in_the_singular(emulator, keys, tmp_path, caplog):
    assert audit(emulator, keys, tmp_path, "--until", "2026-11-01T03:00Z").exit_code == 0
    emulator.clock.advance((START + 3 * DAY_MS + 4.5 * HOUR_MS - emulator.clock.now_ms()) / 1000)
    second = audit(emulator, keys, tmp_path, "--incremental", "--until", "2026-11-01T06:00Z")

    assert second.exit_code == 1, second.output
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        "1 hour between 2026-11-01T03:00:00Z and 2026-11-01T04:00:00Z is lost to this archive: "
        "the source no longer serves it (its hour-expired finding says what it answered)"
    ]


def test_hours_lost_are_told_in_the_log_the_outcome_bag_info_and_verify_chain(
    emulator, keys, tmp_path, caplog
):
    """Lost hours were only findings: a scheduled run exits 1 for a keyword too, its log said
    nothing of them, and `verify-chain` called the chain intact (probe 22 #1)."""
    assert audit(emulator, keys, tmp_path, "--until", "2026-11-01T03:00Z").exit_code == 0
    emulator.clock.advance((START + 3 * DAY_MS + 12.5 * HOUR_MS - emulator.clock.now_ms()) / 1000)
    second = audit(emulator, keys, tmp_path, "--incremental", "--until", "2026-11-01T18:00Z")
    hours = "9 hours between 2026-11-01T03:00:00Z and 2026-11-01T12:00:00Z"

    assert second.exit_code == 1, second.output
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        f"{hours} are lost to this archive: the source no longer serves them (their "
        "hour-expired findings say what it answered)"
    ]
    bags = sorted((tmp_path / "archive").glob("run-*"))
    assert f"\nHours-Lost: {hours}\n" in (bags[1] / "bag-info.txt").read_text()
    assert "Hours-Lost" not in (bags[0] / "bag-info.txt").read_text()
    chain = CliRunner().invoke(
        main, ["verify-chain", str(tmp_path / "archive"), "--pubkey", str(keys.public_key)]
    )
    assert chain.exit_code == 0, chain.output
    assert chain.output.splitlines()[-1] == (
        f"{tmp_path / 'archive' / bags[1].name}: run 2 could not archive {hours}: the source no "
        "longer served them (see that run's report)"
    )
    shown = audit(
        emulator,
        keys,
        tmp_path,
        "--since",
        "2026-11-01T03:00Z",
        "--until",
        "2026-11-01T18:00Z",
        "--json",
    )
    assert json.loads(shown.stdout)["lost_hours"] == 9


def test_an_hour_refused_while_young_still_stops_the_run_with_exit_3(emulator, keys, tmp_path):
    # At 06:00 the hours 04:00 and 05:00 are not ready: Easemob writes an hour's file later.
    result = audit(
        emulator, keys, tmp_path, "--since", "2026-11-01T03:00Z", "--until", "2026-11-01T06:00Z"
    )

    assert result.exit_code == 3, result.output
    assert re.fullmatch(
        r"auditor: error: hour 2026110104 is not available yet or has expired \(illegal "
        r"arguments: appkey: demo-org#demo-app, time: 2026110104, maybe chat message history is "
        r"expired or unstored\); the source's clock reads 2026-11-01T06:00:\d\dZ, [\d.]+ days "
        r"behind this machine's, and an hour counts as expired only when both clocks say so\n",
        result.stderr,
    )


def shifted_emulator(days: float, **options) -> EmulatorOptions:
    """A source whose clock runs `days` ahead of this machine's (behind if negative)."""
    return EmulatorOptions(
        client_secret=SECRET, clock_start=time.time() + days * DAY_MS / 1000, **options
    )


def this_hour_ms() -> int:
    now_ms = int(time.time() * 1000)
    return now_ms - now_ms % HOUR_MS


def refused_naming_the_clocks(result, label: str, gap: str) -> bool:
    """Whether the run stopped with exit 3 on hour `label`, naming the source's clock `gap` this
    machine's ("10 days ahead of")."""
    assert result.exit_code == 3, result.output
    return bool(
        re.fullmatch(
            rf"auditor: error: hour {label} is not available yet or has expired \(.*\); the "
            rf"source's clock reads \S+Z, {gap} this machine's, and an hour counts as expired "
            r"only when both clocks say so\n",
            result.stderr,
        )
    )


def test_a_source_clock_days_ahead_does_not_make_a_young_hour_expired_it_stops_with_exit_3(
    keys, tmp_path
):
    """The source, 10 days ahead, refuses an hour that ended an hour ago by this machine's clock:
    by the source's it is past the 3 days it keeps, but a wrong clock must not archive an hour
    as lost; the hour is judged by the earlier clock, and the error names the other."""
    hour = this_hour_ms() - 2 * HOUR_MS
    label = Partition(hour).label()
    window = ("--since", format_instant(hour), "--until", format_instant(hour + HOUR_MS))
    with run_emulator(shifted_emulator(10, messages=5, retention_days=3)) as emulator:
        result = audit(emulator, keys, tmp_path, *window)

    assert refused_naming_the_clocks(result, label, "10 days ahead of")
    assert not list((tmp_path / "archive").glob("run-*"))


def test_a_source_clock_days_behind_keeps_an_hour_it_no_longer_has_at_exit_3_and_says_why(
    keys, tmp_path
):
    """The source, 3 days behind, refuses an hour that ended 4 days ago by this machine's clock
    (its history starts after it): by the source's clock the hour is a day old, not past the 3
    days it keeps, so it may yet come; the run cannot tell, and names the clocks."""
    hour = this_hour_ms() - 4 * DAY_MS - HOUR_MS
    label = Partition(hour).label()
    window = ("--since", format_instant(hour), "--until", format_instant(hour + HOUR_MS))
    options = shifted_emulator(-3, messages=5, start_ms=hour + HOUR_MS)
    with run_emulator(options) as emulator:
        result = audit(emulator, keys, tmp_path, *window)

    assert refused_naming_the_clocks(result, label, "3 days behind")


def test_a_recheck_of_expired_hours_reports_them_out_of_reach_not_lost_nor_their_messages_gone(
    emulator, keys, tmp_path
):
    window = ("--since", "2026-11-01T00:00Z", "--until", "2026-11-01T03:00Z")
    first = audit(emulator, keys, tmp_path, *window)
    emulator.clock.advance((START + 3 * DAY_MS + 12.5 * HOUR_MS - emulator.clock.now_ms()) / 1000)
    recheck = audit(emulator, keys, tmp_path, *window, "--recheck", "--json")

    assert first.exit_code == 0, first.output
    data = Path(json.loads(recheck.stdout)["bag"]) / "data"
    rules = Counter(orjson.loads(line)["rule"] for line in (data / "findings.jsonl").open())
    # run 1 archived the hours: not lost, only out of reach of this run (probe 15 #4)
    assert (rules["hour-expired"], rules["hour-not-fetched-again"]) == (0, 3)
    assert rules["missing-at-source"] == 0


def test_an_hour_refused_days_after_it_ended_names_retention_days_as_the_likely_cause(
    keys, tmp_path
):
    """retention_days above what the source keeps (7 against 3): every run stopped at exit 3 at
    the first hour the source had deleted, while more hours passed its retention, and the error
    said only "not available yet" (probe 22 #3)."""
    options = EmulatorOptions(
        messages=300,
        days=4,
        client_secret=SECRET,
        retention_days=3,
        clock_start=(START + 4 * DAY_MS) / 1000,
    )
    with run_emulator(options) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--quiet", hours=1)
        config = tmp_path / "auditor.yaml"
        config.write_text(config.read_text() + "  retention_days: 7\n")
        result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("auditor: error: hour 2026110100 is not available yet")
    assert re.search(
        r"it ended 4\.0 days ago, long after the source writes an hour's file", result.stderr
    )
    assert "set retention_days to what it keeps" in result.stderr


def test_a_new_apps_first_incremental_run_is_told_to_begin_at_its_first_hour(keys, tmp_path):
    """An app two days old at a source keeping seven: the chain's first `--incremental` run
    begins where the source would keep hours, five days before the app had any, which the
    source refuses as "expired or unstored"; every daily run stopped there with exit 3 for a
    week (probe months25). The error says to begin the chain at the app's first hour, and a run
    begun there archives every record."""
    born = int(time.time() * 1000) // HOUR_MS * HOUR_MS - 2 * DAY_MS
    options = EmulatorOptions(
        messages=200, days=2, start_ms=born, client_secret=SECRET, retention_days=7,
        ready_delay_hours=0,
    )  # fmt: skip
    with run_emulator(options) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--quiet")
        config = tmp_path / "auditor.yaml"
        config.write_text(config.read_text() + "  retention_days: 7\n")
        window = args.index("--since")
        incremental = [*args[:window], "--incremental", "--ready-delay-hours", "0"]
        env = {"EASEMOB_CLIENT_SECRET": SECRET}
        refused = CliRunner().invoke(main, incremental, env=env)
        since = ["--since", format_instant(born)]
        begun = CliRunner().invoke(main, [*incremental, *since], env=env)
        served = sum(1 for _ in emulator.expected_records(born, born + 2 * DAY_MS))

    assert refused.exit_code == 3, refused.output
    assert "begin the chain with --since the app's first hour" in refused.stderr
    assert begun.exit_code in (0, 1), begun.output
    (bag,) = (tmp_path / "archive").glob("run-*")
    lines = sum(len(path.read_bytes().splitlines()) for path in (bag / "data/records").iterdir())
    assert lines == served
