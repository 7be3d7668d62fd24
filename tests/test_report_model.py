"""The report's accumulator: counts, verdict, bounded tables, findings dated by their record."""

import json
from collections import Counter

import jsonschema
import pytest

from auditor.emulator.dataset import SyntheticHistory
from auditor.errors import ConfigError
from auditor.partitions import HOUR_MS, Partition, parse_timezone
from auditor.records import timestamp_ms
from auditor.report import ReportBuilder, RunInfo, model, verdict_line
from auditor.report.display import local_time, zone_name
from auditor.report.synthetic import planted_findings
from auditor.resources import schemas_dir

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def run_info(**overrides) -> RunInfo:
    values = {"sequence": 2, "since_ms": NOV_1, "until_ms": NOV_1 + 24 * HOUR_MS}
    values.update(overrides)
    return RunInfo(**values)


def finding(severity="high", category="keyword", msg="1", **extra) -> dict:
    return {
        "msg_id": msg,
        "category": category,
        "rule": extra.pop("rule", "r"),
        "severity": severity,
        "message": extra.pop("message", "m"),
        "pointer": None,
        "details": extra,
    }


def record(msg="1", ts=NOV_1, sender="alice", kind="txt", chat="chat") -> dict:
    return {
        "msg_id": msg,
        "timestamp": ts,
        "chat_type": chat,
        "payload": {"from": sender, "bodies": [{"type": kind, "msg": "hi"}]},
    }


def test_the_summary_counts_what_the_synthetic_history_planted():
    history = SyntheticHistory(messages=3_000, days=1)
    builder = ReportBuilder(run_info(since_ms=history.start_ms, until_ms=history.end_ms))
    fed: list[dict] = []
    undated = 0
    for index in range(len(history)):
        truth = history.truth(index)
        builder.observe_record(truth.record, Partition.containing(history.timestamp(index)).label())
        for each in planted_findings(truth):
            builder.observe_finding(each)
            fed.append(each)
            # undated: its record has no time, or no msg_id to find it by (unless attached)
            unfindable = each["msg_id"] is None and "record" not in each["details"]
            undated += timestamp_ms(truth.record) is None or unfindable
        builder.observe_verdict("review" if index % 100 == 0 else "keep", "default")
    summary = builder.summary()

    defects = sum(1 for index in range(len(history)) if history.truth(index).defect)
    records = list(history)
    assert summary["records"]["total"] == 3_000
    assert summary["records"]["failing_schema"] == defects
    assert summary["records"]["by_chat_type"] == dict(Counter(r["chat_type"] for r in records))
    assert sum(summary["records"]["by_message_type"].values()) == 3_000
    untimed = sum(timestamp_ms(r) is None for r in records)
    assert summary["records"]["per_day"] == {"2026-11-01": 3_000 - untimed}
    assert summary["records"]["without_time"] == untimed > 0
    assert summary["findings"]["total"] == len(fed)
    assert summary["findings"]["by_category"] == dict(Counter(f["category"] for f in fed))
    assert summary["findings"]["by_severity"] == {
        "info": 0,
        "low": sum(f["severity"] == "low" for f in fed),
        "medium": sum(f["severity"] == "medium" for f in fed),
        "high": sum(f["severity"] == "high" for f in fed),
    }
    assert summary["verdict"]["count"] == summary["findings"]["by_severity"]["high"] > 0
    assert summary["retention"]["by_disposition"] == {
        "keep": 2_970,
        "dispose": 0,
        "review": 30,
        "hold": 0,
    }
    assert summary["findings"]["undated"] == undated > 0


def test_the_summary_follows_its_json_schema():
    builder = ReportBuilder(run_info())
    builder.observe_record(record(), "2026110100")
    builder.observe_finding(finding("medium", "schema", details_record=None))
    builder.observe_finding(finding("odd-severity", "disappeared", msg=None))
    schema = json.loads((schemas_dir() / "summary.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(builder.summary(), schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    ("count", "fail_on", "line"),
    [
        (12, "high", "FAIL: 12 findings at or above 'high'"),
        (1, "low", "FAIL: 1 finding at or above 'low'"),
        (12_345, "info", "FAIL: 12,345 findings at or above 'info'"),
        (0, "medium", "PASS: no findings at or above 'medium'"),
    ],
)
def test_the_verdict_line_says_how_many_findings_reach_the_threshold(count, fail_on, line):
    assert verdict_line(count, fail_on) == line


def test_the_verdict_counts_findings_at_or_above_fail_on_only():
    builder = ReportBuilder(run_info(fail_on="medium"))
    for severity in ("info", "low", "medium", "high", "high"):
        builder.observe_finding(finding(severity))
    verdict = builder.summary()["verdict"]
    assert verdict == {
        "fail_on": "medium",
        "failed": True,
        "count": 3,
        "line": "FAIL: 3 findings at or above 'medium'",
    }


def test_an_unknown_fail_on_level_is_refused():
    with pytest.raises(ConfigError, match="fail-on level 'severe'"):
        run_info(fail_on="severe")


def test_a_table_keeps_its_most_severe_findings_the_earliest_among_equals():
    builder = ReportBuilder(run_info(), table_rows=3)
    for number, severity in enumerate(["low", "high", "info", "medium", "high", "low", "high"]):
        builder.observe_finding(finding(severity, msg=str(number)))
    keyword = builder.snapshot().tables[1]
    assert keyword.kind.key == "keyword"
    assert keyword.total == 7
    assert [(row["severity"], row["msg_id"]) for row in keyword.rows] == [
        ("high", "1"),
        ("high", "4"),
        ("high", "6"),
    ]


def test_findings_are_dated_and_credited_to_their_sender_whichever_comes_first():
    builder = ReportBuilder(run_info(hour_timezone="+8"))
    builder.observe_finding(finding("high", msg="early"))  # before its record
    builder.observe_record(record("early", NOV_1 + 20 * HOUR_MS, "bob"), "2026110204")
    builder.observe_record(record("late", NOV_1, "carol"), "2026110108")
    builder.observe_finding(finding("low", msg="late"))  # after its record
    builder.observe_finding(
        finding("medium", "schema", msg=None, record=record(None, NOV_1, "dave"))
    )
    builder.observe_finding(finding("info", "disappeared", msg="gone"))  # no record this run
    found = builder.summary()["findings"]
    assert found["per_day"] == {
        "2026-11-01": {"low": 1, "medium": 1},
        "2026-11-02": {"high": 1},
    }
    assert found["undated"] == 1
    assert [(each["sender"], each["count"]) for each in found["top_senders"]] == [
        ("bob", 1),
        ("carol", 1),
        ("dave", 1),
    ]


def test_days_and_hours_are_counted_in_the_sources_hour_zone():
    builder = ReportBuilder(run_info(hour_timezone="+08:00"))
    builder.observe_record(record("a", NOV_1 + 15 * HOUR_MS), "2026110123")
    builder.observe_record(record("b", NOV_1 + 16 * HOUR_MS), "2026110200")
    summary = builder.summary()
    assert summary["time_zone"] == "UTC+08:00"
    assert summary["records"]["per_day"] == {"2026-11-01": 1, "2026-11-02": 1}


def test_a_record_without_a_timestamp_counts_as_without_time_not_in_its_partitions_hour():
    builder = ReportBuilder(run_info())
    undated = record("x")
    del undated["timestamp"]
    builder.observe_record(record("a"), "2026110100")
    builder.observe_record(undated, "2026110105")
    builder.observe_record(undated, "not-an-hour")
    records = builder.summary()["records"]
    assert (records["total"], records["per_day"]) == (3, {"2026-11-01": 1})
    assert (records["outside_window"], records["without_time"]) == (0, 2)
    (activity, *_rest) = builder.snapshot().charts
    assert activity.description == (
        "Archived messages per hour of the window, by send time in UTC."
        " Not drawn: 2 of 3 records (2 without a usable time)."
    )


def test_the_findings_chart_says_how_many_findings_it_leaves_out_and_why():
    builder = ReportBuilder(run_info())
    undated = record("untimed")
    del undated["timestamp"]
    builder.observe_record(record("timed", NOV_1 + HOUR_MS), "2026110101")
    builder.observe_record(undated, "2026110105")
    builder.observe_record(record("later", NOV_1 + 30 * HOUR_MS), "2026110206")
    for msg in ("timed", "timed", "untimed", "untimed", "later", "gone"):
        builder.observe_finding(finding("low", msg=msg))
    builder.observe_finding(finding("high", "schema", msg=None, record=undated))

    charts = {chart.key: chart for chart in builder.snapshot().charts}
    summary = builder.summary()["findings"]

    assert charts["findings-per-day"].description == (
        "Findings by the send day of the record they concern. Not drawn: 5 of 7 findings"
        " (3 about records without a usable time, 1 with no record in this run"
        " (e.g. disappeared messages), 1 about records sent outside the window)."
    )
    assert summary["per_day"] == {"2026-11-01": {"low": 2}, "2026-11-02": {"low": 1}}
    assert summary["undated"] == 4


def test_a_chart_that_draws_everything_says_nothing_left_out():
    builder = ReportBuilder(run_info())
    builder.observe_record(record("a", NOV_1 + HOUR_MS), "2026110101")
    builder.observe_finding(finding("low", msg="a"))
    activity, per_day, *_rest = builder.snapshot().charts
    assert activity.description == "Archived messages per hour of the window, by send time in UTC."
    assert per_day.description == "Findings by the send day of the record they concern."


def test_records_failing_schema_are_counted_once_however_many_findings_they_have():
    builder = ReportBuilder(run_info())
    builder.observe_finding(finding("medium", "schema", msg="1"))
    builder.observe_finding(finding("medium", "schema", msg="1"))
    builder.observe_finding(finding("medium", "schema", msg=None, record={"a": 1}))
    builder.observe_finding(finding("medium", "schema", msg=None, record={"a": 1}))
    builder.observe_finding(finding("medium", "parse", msg=None, file="x.jsonl", line=3))
    records = builder.summary()["records"]
    assert (records["failing_schema"], records["unparseable_lines"]) == (2, 1)


def test_facts_known_at_the_end_of_a_run_replace_the_early_ones():
    builder = ReportBuilder(run_info(hour_timezone="+8"))
    builder.observe_finding(finding("medium"))
    builder.run_info = run_info(hour_timezone="+08:00", merkle_root="ab" * 32, fail_on="medium")
    summary = builder.summary()
    assert summary["archive"]["merkle_root"] == "ab" * 32
    assert summary["verdict"]["line"] == "FAIL: 1 finding at or above 'medium'"
    with pytest.raises(ValueError, match="time zone cannot change"):
        builder.run_info = run_info(hour_timezone="UTC")


@pytest.mark.parametrize(
    ("zone", "name", "shown"),
    [
        ("UTC", "UTC", "2026-11-01 00:00:00 +00:00"),
        ("+8", "UTC+08:00", "2026-11-01 08:00:00 +08:00"),
        ("-05:30", "UTC-05:30", "2026-10-31 18:30:00 -05:30"),
    ],
)
def test_times_are_shown_with_their_offset(zone, name, shown):
    assert (zone_name(parse_timezone(zone)), local_time(NOV_1, parse_timezone(zone))) == (
        name,
        shown,
    )


@pytest.mark.parametrize(
    ("first", "last", "unit", "labels"),
    [
        (20_392, 20_393, "day", ["2025-10-31", "2025-11-01"]),
        (20_392, 20_392 + 999, "day", None),  # 1,000 days: still a column a day
        (20_392, 20_392 + 1_000, "month", None),
        (-719_162, 2_932_894, "year", None),  # 0001-01-02 to 9999-12-30
    ],
)
def test_a_long_window_is_drawn_by_month_then_by_year(first, last, unit, labels):
    drawn, label_of, columns = model._columns(first, last)

    assert drawn == unit
    assert len(columns) <= model.DAILY_UP_TO or unit == "year"
    assert columns == sorted(set(columns))
    assert label_of(first) == columns[0] and label_of(last) == columns[-1]
    if labels is not None:
        assert columns == labels
    if unit == "month":
        assert columns[:3] == ["2025-10", "2025-11", "2025-12"] and len(columns) == 34
    if unit == "year":
        assert (columns[0], columns[-1], len(columns)) == ("0001", "9999", 9_999)


@pytest.mark.parametrize("days", [0, 8])  # a window drawn by the hour, and one drawn by the day
def test_records_sent_on_the_windows_days_but_outside_its_hours_count_as_outside(days, tmp_path):
    since, until = NOV_1 + 8 * HOUR_MS, NOV_1 + (days * 24 + 20) * HOUR_MS
    builder = ReportBuilder(run_info(since_ms=since, until_ms=until))
    for number, sent in enumerate([NOV_1, since - 1, since, until - 1, until, until + HOUR_MS]):
        builder.observe_record(record(str(number), sent), "2026110100")
    records = builder.summary()["records"]
    activity = builder.snapshot().charts[0]
    html = builder.render(tmp_path)["report.html"].read_text(encoding="utf-8")

    assert records["outside_window"] == 4
    assert sum(records["per_day"].values()) == 2
    assert activity.description.endswith(" Not drawn: 4 of 6 records (4 sent outside the window).")
    assert "<td>4 outside, 0 without a usable time</td>" in html


def test_exact_copies_the_source_served_are_counted_apart_from_the_records(tmp_path):
    builder = ReportBuilder(run_info())
    builder.observe_record(record("a"), "2026110100")
    builder.observe_source_copies(3)  # one partition's exact copies
    builder.observe_source_copies(0)
    builder.observe_source_copies(379)
    records = builder.summary()["records"]
    html = builder.render(tmp_path)["report.html"].read_text(encoding="utf-8")

    assert (records["total"], records["source_copies_dropped"]) == (1, 382)
    assert (
        '<td id="source-copies">382 exact copies served by the source were archived once</td>'
        in html
    )


def test_a_finding_that_states_its_messages_time_and_sender_is_dated_by_them():
    # what a bag holds about a message an earlier run archived: no record, only the findings
    builder = ReportBuilder(run_info(hour_timezone="+8"))
    builder.observe_finding(finding("medium", "duplicate", msg="old"))  # before the statement
    builder.observe_finding(
        finding("info", "duplicate", msg="old", sent=NOV_1 + 20 * HOUR_MS, sender="bob")
    )
    builder.observe_finding(finding("info", "duplicate", msg="untimed", sent=None, sender="eve"))
    found = builder.summary()["findings"]

    assert found["per_day"] == {"2026-11-02": {"info": 1, "medium": 1}}
    assert found["undated"] == 1  # its message has no usable send time
    assert found["top_senders"] == [
        {"sender": "bob", "count": 2, "by_severity": {"medium": 1, "info": 1}}
    ]


def test_a_record_without_msg_id_failing_its_schema_twice_counts_once_by_its_line():
    # as in a bag: schema findings without their record, about the record at line `seq`
    builder = ReportBuilder(run_info())
    builder.observe_finding(finding("medium", "schema", msg=None) | {"seq": 4})
    builder.observe_finding(finding("medium", "schema", msg=None, message="other") | {"seq": 4})
    builder.observe_finding(finding("medium", "schema", msg=None) | {"seq": 9})
    assert builder.summary()["records"]["failing_schema"] == 2


def test_verdicts_and_send_times_of_any_type_are_taken_as_the_interpreted_code_takes_them():
    """A bag's summary may name a verdict by a number or null, and the compiled builder checks
    the types its arguments are declared with: such a verdict is counted under its text, not
    refused (which `auditor report` would log as no retention counts readable)."""
    from auditor.report.csv_rows import SendTimes

    with ReportBuilder(run_info()) as builder:
        builder.observe_verdict(3, None, 2)
        assert builder.summary()["retention"]["by_rule"] == [
            {"disposition": "3", "rule": "", "count": 2}
        ]
    assert SendTimes(parse_timezone("UTC"))("1793491200000") == ""
