"""Records that reach an hour's file after a run fetched it: the `--incremental` chain fetches
each hour a second time once it is `late_hours` old, and archives what is new, once."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import run_support
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import Progress, RunOutcome, run_audit
from auditor.records import content_hash
from auditor.report.bag import render_bag

SECRET = "late-test-secret"


def settings_for(emulator, keys, folder: Path, **values):
    """A run's settings; attachments are left unfetched unless a test asks, since late records
    and second looks are about hour files: the fetches (a request each for a quarter of the
    records) were two thirds of these runs' CPU."""
    values.setdefault("attachments", "skip")
    return run_support.settings_for(emulator, keys, folder, SECRET, **values)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="test-auditor")


def incremental(emulator, keys, folder: Path, now_hour: int, **more) -> RunOutcome | None:
    """An `--incremental` run as the clock reads `now_hour` hours into the history."""
    values = dict(
        since_ms=DEFAULT_START_MS,
        until_ms=None,
        incremental=True,
        now_ms=lambda: DEFAULT_START_MS + now_hour * HOUR_MS,
        late_hours=6,
        fail_on="none",
        as_of_ms=DEFAULT_START_MS,
    )
    values.update(more)
    return run_audit(settings_for(emulator, keys, folder, **values))


def archived(*outcomes: RunOutcome | Path) -> Counter[tuple[str, str]]:
    """Every record line of the bags (of runs, or folders), by (msg_id, content), counted."""
    bags = [each if isinstance(each, Path) else each.bag_path for each in outcomes]
    return Counter(
        (str(record.get("msg_id")), content_hash(record))
        for bag in bags
        for path in sorted((bag / "data" / "records").glob("*.jsonl"))
        for record in (orjson.loads(line)["record"] for line in path.open("rb"))
    )


def findings(outcome: RunOutcome, rule: str) -> list[dict]:
    lines = (outcome.bag_path / "data" / "findings.jsonl").open("rb")
    return [finding for finding in map(orjson.loads, lines) if finding["rule"] == rule]


def bag_info(outcome: RunOutcome) -> dict[str, str]:
    lines = (outcome.bag_path / "bag-info.txt").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines)


def expected_and_late(emulator, hours: int):
    """The records the emulator's first `hours` hold, and the msg_ids among them it serves late."""
    end = DEFAULT_START_MS + hours * HOUR_MS
    history, faults = emulator.history, emulator.feed.faults
    late = {
        history.msg_id(i)
        for i in history.index_range(DEFAULT_START_MS, end)
        if faults.late(i) and "msg_id" in history.record(i)
    }
    return emulator.expected_records(DEFAULT_START_MS, end), late


def test_a_chain_fetches_each_hour_again_once_it_is_late_hours_old_and_loses_nothing(
    keys, tmp_path
):
    options = EmulatorOptions(
        messages=1200, days=1, client_secret=SECRET, late_rate=0.1, duplicate_rate=0.02
    )
    with run_emulator(options) as emulator:
        runs = [
            incremental(emulator, keys, tmp_path, now_hour=h, late_hours=12, attachments="fetch")
            for h in (12, 24, 36)
        ]
        expected, late_ids = expected_and_late(emulator, hours=24)
    first, second, third = runs

    assert late_ids and not late_ids & {msg_id for msg_id, _ in archived(first)}
    assert archived(*runs) == Counter(
        {(str(r.get("msg_id")), content_hash(r)): 1 for r in expected}
    )
    assert "Fetched-Again-Since" not in bag_info(first)
    assert (bag_info(second)["Fetched-Again-Since"], bag_info(second)["Fetched-Again-Until"]) == (
        "2026-11-01T00:00:00Z",
        "2026-11-01T12:00:00Z",
    )
    assert bag_info(third)["Fetched-Again-Since"] == "2026-11-01T12:00:00Z"
    late = [f for run in runs for f in findings(run, "late-arrival")]
    assert {f["msg_id"] for f in late if f["msg_id"]} == late_ids
    assert {f["severity"] for f in late} == {"info"}
    again = findings(second, "hour-fetched-again")
    assert [f["details"]["hour"] for f in again] == [f"20261101{h:02d}" for h in range(12)]
    assert sum(f["details"]["late"] for f in again) == len(findings(second, "late-arrival"))
    assert sum(f["details"]["archived_before"] for f in again) == second.relooked > 0
    assert [f for run in runs for f in findings(run, "archived-earlier")] == []
    assert second.skipped_duplicates == third.skipped_duplicates == 0
    summary = orjson.loads((second.bag_path / "data/report/summary.json").read_bytes())
    assert summary["run"]["fetched_again"] == {
        "since": "2026-11-01T00:00:00Z",
        "until": "2026-11-01T12:00:00Z",
    }
    records = summary["records"]
    assert records["in_hours_fetched_again"] == len(findings(second, "late-arrival")) > 0
    assert records["outside_window"] == 0
    in_window = sum(records["per_day"].values())
    assert (
        in_window + records["in_hours_fetched_again"] + records["without_time"] == records["total"]
    )
    again_rendered = render_bag(second.bag_path, tmp_path / "again").summary
    assert again_rendered["records"] == records


def test_an_hour_whose_first_look_answered_404_is_filled_by_the_second(keys, tmp_path):
    """Easemob answers 404 for an hour whose file it has not written yet, as for an empty one."""
    options = EmulatorOptions(messages=48, days=1, client_secret=SECRET, late_rate=0.6)
    with run_emulator(options) as emulator:
        first = incremental(emulator, keys, tmp_path, now_hour=24, late_hours=24)
        second = incremental(emulator, keys, tmp_path, now_hour=48, late_hours=24)
        expected = emulator.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + 24 * HOUR_MS)
    truth = Counter({(str(r.get("msg_id")), content_hash(r)): 1 for r in expected})

    empty_at_first = [
        path.name
        for path in (first.bag_path / "data" / "records").glob("*.jsonl")
        if not path.stat().st_size
    ]
    assert empty_at_first
    assert sum(archived(first).values()) < len(truth)
    assert archived(first, second) == truth


def test_late_hours_zero_trusts_the_first_look(keys, tmp_path):
    options = EmulatorOptions(messages=600, days=1, client_secret=SECRET, late_rate=0.1)
    with run_emulator(options) as emulator:
        incremental(emulator, keys, tmp_path, now_hour=6, late_hours=0)
        second = incremental(emulator, keys, tmp_path, now_hour=12, late_hours=0)

    assert "Fetched-Again-Since" not in bag_info(second)
    assert findings(second, "late-arrival") == []


def test_a_state_from_before_second_looks_gains_the_columns_and_a_bounded_second_look(
    keys, tmp_path
):
    options = EmulatorOptions(messages=600, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        incremental(emulator, keys, tmp_path, now_hour=12, until_ms=None)
        with closing(sqlite3.connect(tmp_path / "state.db")) as db:
            for column in ("settled_until_ms", "relook_until_ms", "relook_since_ms"):
                db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
            db.execute("DROP TABLE unidentified")
        second = incremental(emulator, keys, tmp_path, now_hour=24)

    # The last run ended at hour 12: its last six hours (late_hours) are fetched again.
    assert bag_info(second)["Fetched-Again-Since"] == "2026-11-01T06:00:00Z"
    assert bag_info(second)["Fetched-Again-Until"] == "2026-11-01T12:00:00Z"
    assert findings(second, "late-arrival") == []


def test_recheck_does_not_call_gone_a_message_served_in_a_later_hours_file(keys, tmp_path):
    """The server names its hours an hour ahead of the auditor's zone: every message is served
    in the file of the hour after its send time, as a late message is. A recheck of an hour
    looks only for what was archived from that hour's file."""
    options = EmulatorOptions(messages=600, days=1, client_secret=SECRET, hour_timezone="+1")

    def window(start: int, end: int, **more) -> RunOutcome:
        return run_audit(
            settings_for(
                emulator,
                keys,
                tmp_path,
                since_ms=DEFAULT_START_MS + start * HOUR_MS,
                until_ms=DEFAULT_START_MS + end * HOUR_MS,
                fail_on="none",
                **more,
            )
        )

    with run_emulator(options) as emulator:
        window(0, 1)
        served_later = window(1, 3)
        recheck = window(0, 1, recheck=True)
        same_hour_again = window(1, 2, recheck=True)

    assert served_later.records > 0
    assert findings(recheck, "missing-at-source") == []
    # Hour 01's file served hour 00's messages to run 2; hour 02's are not looked for there.
    assert findings(same_hour_again, "missing-at-source") == []


def test_hours_too_old_to_fetch_again_are_reported_not_fetched(keys, tmp_path):
    """A chain paused past the source's retention cannot look at its last hours again: the source
    would answer that they expired, though their first fetch is archived."""
    options = EmulatorOptions(messages=600, days=2, client_secret=SECRET)
    with run_emulator(options) as emulator:
        source = replace(run_support.source_of(emulator, SECRET), retention_days=1)
        incremental(emulator, keys, tmp_path, now_hour=12, late_hours=12, source=source)
        resumed = incremental(emulator, keys, tmp_path, now_hour=48, late_hours=12, source=source)

    assert "Fetched-Again-Since" not in bag_info(resumed)
    (passed,) = findings(resumed, "not-fetched-again")
    assert passed["severity"] == "low"
    assert passed["details"] == {"since": "2026-11-01T00:00:00Z", "until": "2026-11-01T12:00:00Z"}
    assert findings(resumed, "hour-expired") == []


class _Stopped(Exception):
    """Stands in for the kill of a run part way."""


def _stopping_after(hours: int) -> Progress:
    done = []

    def partition_done(partition, outcome) -> None:
        done.append(partition)
        if len(done) == hours:
            raise _Stopped

    return Progress(partition_done=partition_done)


def test_a_run_replacing_a_killed_one_later_keeps_its_start_so_its_early_hours_are_looked_at_again(
    keys, tmp_path
):
    """The next cron tick runs a wider window than the killed run and reuses the hours it
    spooled, fetched then, too early to be sure of: they must not count as fetched for good."""
    options = EmulatorOptions(messages=1200, days=1, client_secret=SECRET, late_rate=0.1)
    with run_emulator(options) as emulator:
        incremental(emulator, keys, tmp_path, now_hour=6)
        with pytest.raises(_Stopped):
            run_audit(
                settings_for(
                    emulator,
                    keys,
                    tmp_path,
                    since_ms=None,
                    until_ms=None,
                    incremental=True,
                    now_ms=lambda: DEFAULT_START_MS + 9 * HOUR_MS,
                    late_hours=6,
                    fail_on="none",
                    as_of_ms=DEFAULT_START_MS,
                ),
                _stopping_after(4),
            )
        runs = [incremental(emulator, keys, tmp_path, now_hour=h) for h in (18, 24, 30)]
        expected = emulator.expected_records(DEFAULT_START_MS, DEFAULT_START_MS + 24 * HOUR_MS)

    replacing = runs[0]
    assert bag_info(replacing)["Fetched-Again-Until"] == "2026-11-01T03:00:00Z"
    assert bag_info(runs[1])["Fetched-Again-Since"] == "2026-11-01T03:00:00Z"
    every_bag = archived(*sorted((tmp_path / "archive").glob("run-*")))
    assert every_bag == Counter({(str(r.get("msg_id")), content_hash(r)): 1 for r in expected})


def test_a_second_look_tells_no_conflict_again_that_brought_no_new_variant(keys, tmp_path):
    options = EmulatorOptions(messages=1200, days=1, client_secret=SECRET, conflict_rate=0.05)
    with run_emulator(options) as emulator:
        first, second = (
            incremental(emulator, keys, tmp_path, now_hour=h, late_hours=12) for h in (12, 24)
        )

    told = {f["msg_id"] for f in findings(first, "conflicting-content")}
    again = {f["msg_id"] for f in findings(second, "conflicting-content")}
    assert told and bag_info(second)["Fetched-Again-Since"] == "2026-11-01T00:00:00Z"
    assert not told & again


def test_hours_no_run_fetched_are_archived_by_a_second_look_without_late_arrival_findings(
    keys, tmp_path
):
    """An ad-hoc later window left hours 06-12 unaudited; the second look over the chain's
    unsettled hours fetches them for the first time, which is no late arrival."""
    options = EmulatorOptions(messages=1200, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        incremental(emulator, keys, tmp_path, now_hour=6)
        run_audit(
            settings_for(
                emulator,
                keys,
                tmp_path,
                since_ms=DEFAULT_START_MS + 12 * HOUR_MS,
                until_ms=DEFAULT_START_MS + 18 * HOUR_MS,
                fail_on="none",
            )
        )
        third = incremental(emulator, keys, tmp_path, now_hour=24)

    assert bag_info(third)["Fetched-Again-Since"] == "2026-11-01T00:00:00Z"
    looked_again = {f["details"]["hour"] for f in findings(third, "hour-fetched-again")}
    assert looked_again == {f"20261101{h:02d}" for h in (*range(6), *range(12, 18))}
    assert findings(third, "late-arrival") == []
    hours_archived = {path.stem for path in (third.bag_path / "data" / "records").glob("*.jsonl")}
    assert {f"20261101{h:02d}" for h in range(6, 12)} <= hours_archived


def test_a_second_look_the_source_refuses_is_no_loss_and_does_not_stop_the_chain(keys, tmp_path):
    """The source keeps hour files one day and its clock runs four hours ahead of this
    machine's: by its clock, hours 00-04 are gone when this machine plans to look at them again."""
    options = EmulatorOptions(
        messages=1200,
        days=2,
        client_secret=SECRET,
        retention_days=1,
        clock_start=(DEFAULT_START_MS + 16 * HOUR_MS) / 1000,
    )
    with run_emulator(options) as emulator:
        source = replace(run_support.source_of(emulator, SECRET), retention_days=1)
        incremental(emulator, keys, tmp_path, now_hour=12, late_hours=12, source=source)
        emulator.clock.advance((DEFAULT_START_MS + 28 * HOUR_MS - emulator.clock.now_ms()) / 1000)
        second = incremental(emulator, keys, tmp_path, now_hour=24, late_hours=12, source=source)

    refused = findings(second, "hour-not-fetched-again")
    assert refused and {f["severity"] for f in refused} == {"low"}
    assert findings(second, "hour-expired") == []


def test_a_chains_first_incremental_run_without_since_starts_at_the_oldest_hour_the_source_keeps(
    keys, tmp_path
):
    """A schedule installed before any run audits the app's whole history the source still
    holds (one day here, less three hours' margin), then goes on from where that run ended."""
    options = EmulatorOptions(messages=960, days=2, client_secret=SECRET)
    with run_emulator(options) as emulator:
        source = replace(run_support.source_of(emulator, SECRET), retention_days=1)
        first = incremental(
            emulator, keys, tmp_path, now_hour=40, since_ms=None, source=source,
            ready_delay_hours=2,
        )  # fmt: skip
        second = incremental(
            emulator, keys, tmp_path, now_hour=42, since_ms=None, source=source,
            ready_delay_hours=2,
        )  # fmt: skip
        expected = archived_counter(emulator.expected_records(*hours(19, 40)))

    assert (first.since_ms, first.until_ms) == hours(19, 38)
    assert (second.since_ms, second.until_ms) == hours(38, 40)
    assert archived(first, second) == expected


def hours(since: int, until: int) -> tuple[int, int]:
    return DEFAULT_START_MS + since * HOUR_MS, DEFAULT_START_MS + until * HOUR_MS


def archived_counter(records) -> Counter[tuple[str, str]]:
    return Counter((str(record.get("msg_id")), content_hash(record)) for record in records)


def test_the_retention_days_flag_sets_where_a_chains_first_run_starts(keys, tmp_path, caplog):
    """`--retention-days`, on the command line, is what the config's `retention_days` is: the
    first `--incremental` run of a chain starts that many days back, less three hours."""
    now_hour = int(time.time() * 1000) // HOUR_MS * HOUR_MS
    options = EmulatorOptions(
        messages=480, days=2, start_ms=now_hour - 40 * HOUR_MS, client_secret=SECRET
    )
    with run_emulator(options) as emulator:
        args = run_support.run_args(emulator, keys, tmp_path, "--fail-on", "none")
        for flag in ("--since", "--until", "--as-of"):
            del args[args.index(flag) : args.index(flag) + 2]
        args += ["--incremental", "--ready-delay-hours", "2", "--retention-days", "1", "--json"]
        result = CliRunner().invoke(main, args, env={"EASEMOB_CLIENT_SECRET": SECRET})

    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert "(retention_days 1)" in caplog.text
    assert (summary["since_ms"], summary["until_ms"]) in {
        (now_hour - 20 * HOUR_MS, now_hour - 2 * HOUR_MS),
        (now_hour - 19 * HOUR_MS, now_hour - HOUR_MS),  # the hour turned during the run
    }


def test_the_legacy_api_too_archives_late_records_once_when_the_hour_is_fetched_again(
    keys, tmp_path
):
    """The legacy pager leaves late rows out until a query read their hour to the end."""
    options = EmulatorOptions(
        messages=1200, days=1, client_secret=SECRET, late_rate=0.1, duplicate_rate=0.02
    )
    with run_emulator(options) as emulator:
        legacy = replace(run_support.source_of(emulator, SECRET), api="legacy")
        runs = [
            incremental(emulator, keys, tmp_path, now_hour=h, late_hours=12, source=legacy)
            for h in (12, 24, 36)
        ]
        expected, late_ids = expected_and_late(emulator, hours=24)
    entity = ("uuid", "type", "created", "modified")
    got = Counter(
        (
            str(record.get("msg_id")),
            content_hash({k: v for k, v in record.items() if k not in entity}),
        )
        for run in runs
        for path in sorted((run.bag_path / "data" / "records").glob("*.jsonl"))
        for record in (orjson.loads(line)["record"] for line in path.open("rb"))
    )
    assert late_ids and not late_ids & {msg_id for msg_id, _ in archived(runs[0])}
    assert got == Counter({(str(r.get("msg_id")), content_hash(r)): 1 for r in expected})
    late = [f for run in runs for f in findings(run, "late-arrival")]
    assert {f["msg_id"] for f in late if f["msg_id"]} == late_ids


def test_a_state_from_before_second_looks_archives_no_record_without_a_msg_id_twice(keys, tmp_path):
    """The state an earlier version wrote has no `unidentified` table: the records without a
    msg_id its runs archived are known to no table, and the second look at their hours took
    each for a late one and archived it again (probe months25 #3)."""
    options = EmulatorOptions(messages=1200, days=1, client_secret=SECRET)
    with run_emulator(options) as emulator:
        first = incremental(emulator, keys, tmp_path, now_hour=12, until_ms=None)
        with closing(sqlite3.connect(tmp_path / "state.db")) as db:
            for column in ("settled_until_ms", "relook_until_ms", "relook_since_ms"):
                db.execute(f"ALTER TABLE runs DROP COLUMN {column}")
            db.execute("DROP TABLE unidentified")
            db.execute("PRAGMA user_version = 0")
        second = incremental(emulator, keys, tmp_path, now_hour=24)

    both = archived(first, second)
    anonymous = [pair for pair in archived(first) if pair[0] == "None"]  # hours 6 and 10
    assert bag_info(second)["Fetched-Again-Since"] == "2026-11-01T06:00:00Z"
    assert anonymous and [pair for pair, count in both.items() if count > 1] == []
    assert findings(second, "late-arrival") == []
