"""The report's memory stays flat in the number of records failing their schema, and it counts
each archived record failing it once, a run and a re-render of its bag alike.

A record is a line of the archive: two variants of one msg_id are two records, as in
`records.total`. A run emits a record's findings one after another and its bag keeps that order,
so the builder remembers only the last record a schema finding was about (probe 16: a set of
every one took the run ~180 B, a re-render ~110 B, a record failing its schema).
"""

import tracemalloc

import orjson
import pytest
from click.testing import CliRunner

from auditor.archive.keys import generate_key_files
from auditor.cli import main
from auditor.partitions import HOUR_MS
from auditor.report import ReportBuilder, RunInfo
from auditor.report.bag import render_bag
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def record(number: int, sent: int, chat="chat", text: object = "ok", msg_id=True) -> dict:
    """Record `number` (its msg_id, unless `msg_id` is false); the chat type `privatechat` and a
    text that is not a string are the schema defects planted."""
    found = {
        "msg_id": str(number),
        "timestamp": sent,
        "direction": "outgoing",
        "to": "bob",
        "from": f"user{number % 7}",
        "chat_type": chat,
        "payload": {"bodies": [{"type": "txt", "msg": text}], "ext": {}, "from": "alice"},
    }
    if not msg_id:
        del found["msg_id"]
    return found


def schema_finding(number: int, seq: int, shown: dict | None) -> dict:
    """A schema finding about record `number` at line `seq`, showing the record (as a run
    hands it to the report) or not (as its bag holds it)."""
    return {
        "msg_id": str(number),
        "category": "schema",
        "rule": "envelope",
        "severity": "medium",
        "message": "chat_type: not one of the chat types",
        "pointer": "/chat_type",
        "details": {"keyword": "enum"} | ({"record": shown} if shown is not None else {}),
        "seq": seq,
    }


def feed_as_a_run(builder: ReportBuilder, numbers: range) -> None:
    for number in numbers:
        shown = record(number, NOV_1 + number % HOUR_MS, chat="privatechat")
        place = (shown["timestamp"], shown["from"])
        builder.observe_finding(schema_finding(number, number, shown), place)


def feed_as_a_re_render(builder: ReportBuilder, numbers: range) -> None:
    for number in numbers:
        builder.observe_finding(schema_finding(number, number, None))
        shown = record(number, NOV_1 + number % HOUR_MS, chat="privatechat")
        builder.observe_record(shown, "2026110100", number)


# Past the first 10,000 records, a run's next 20,000 held 32 bytes more, and 3.3 MB with a set
# of every record (measured): 30,000 tell them apart. A re-render's traced memory swings by
# 2.3 MB at 30,000 with the fix in place (measured), so it is measured at 100,000 as before.
@pytest.mark.parametrize(
    ("feed", "records"), [(feed_as_a_run, 30_000), (feed_as_a_re_render, 100_000)]
)
def test_memory_does_not_grow_with_the_records_failing_their_schema(feed, records):
    builder = ReportBuilder(RunInfo(1, NOV_1, NOV_1 + HOUR_MS))
    tracemalloc.start()
    try:
        feed(builder, range(10_000))
        before = tracemalloc.get_traced_memory()[0]
        feed(builder, range(10_000, records))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        builder.close()
    assert builder.summary()["records"]["failing_schema"] == records
    assert grown < 256 * 1024  # a set of every record grew by 8.5 MB at 100,000


def test_a_record_is_counted_once_for_all_its_schema_findings_and_each_variant_apart():
    lines = [  # (msg_id, schema findings) of each archived line, in bag order
        ("a", 3),
        ("a", 2),  # a variant of "a": another record
        (None, 2),  # no msg_id: known by its line
        (None, 1),
        ("b", 0),
        ("c", 1),
    ]
    run, re_render = (ReportBuilder(RunInfo(1, NOV_1, NOV_1 + HOUR_MS)) for _ in range(2))
    for seq, (key, count) in enumerate(lines):
        shown = record(seq, NOV_1 + seq, text=f"version {seq}") | {"msg_id": key}
        about = schema_finding(seq, seq, None) | {"msg_id": key}
        other = about | {"category": "keyword", "severity": "high"}
        for finding in [about] * count + [other]:  # as a worker lists a record's findings
            run.observe_finding(finding | {"details": {"record": shown}}, (NOV_1 + seq, "alice"))
            re_render.observe_finding(finding)
        re_render.observe_record(shown, "2026110100", seq)
    assert run.summary()["records"]["failing_schema"] == 5
    assert re_render.summary()["records"]["failing_schema"] == 5


# -- a whole run and its re-render ------------------------------------------------------------


def test_a_run_and_its_re_render_count_each_archived_record_failing_its_schema_once(tmp_path):
    first, second = NOV_1, NOV_1 + HOUR_MS
    export = [
        record(1, first + 1),
        record(2, first + 2, chat="privatechat"),  # one schema finding
        record(3, first + 3, chat="privatechat", text=5),  # two
        record(3, first + 4, chat="privatechat", text=6),  # a variant of 3 in the same hour
        record(3, first + 3, chat="privatechat", text=5),  # an exact copy: dropped
        record(4, first + 5, msg_id=False),  # no msg_id: one finding
        record(5, first + 6, chat="privatechat", msg_id=False),  # no msg_id: two
        record(2, second + 2, chat="privatechat", text="later"),  # a variant of 2 an hour later
        record(6, second + 3),
        record(7, second + 4, chat="privatechat", text=7),
    ]
    source = tmp_path / "export.jsonl"
    source.write_bytes(b"".join(orjson.dumps(each) + b"\n" for each in export))
    keys = generate_key_files(tmp_path / "keys", identity="memory@test")
    ran = CliRunner().invoke(
        main,
        [
            *("run", "--from", str(source), "--policies", str(example_policy())),
            *("--key", str(keys.private_key), "--out", str(tmp_path / "archive")),
            *("--state", str(tmp_path / "state.db"), "--as-of", "2026-11-01T02:00Z"),
            *("--fail-on", "none", "--attachments", "skip", "--quiet"),
        ],
    )
    assert ran.exit_code == 0, ran.output
    (bag,) = (tmp_path / "archive").glob("run-*")

    signed = orjson.loads((bag / "data" / "report" / "summary.json").read_bytes())
    again = render_bag(bag, tmp_path / "again").summary
    written = (bag / "data" / "findings.jsonl").read_bytes().splitlines()
    findings = [orjson.loads(line) for line in written]
    failing = {f["seq"] for f in findings if f["category"] == "schema"}
    assert len(failing) == signed["records"]["failing_schema"] == 7
    assert again["records"]["failing_schema"] == 7
    assert signed["records"]["total"] == 9


# -- findings about messages the run does not hold -------------------------------------------


def disappeared(number: int) -> dict:
    """A finding about a message an earlier run archived that the source no longer serves: the
    run's bag never holds it, so no record comes to place it."""
    return {
        "msg_id": f"gone{number}",
        "category": "disappeared",
        "rule": "missing-at-source",
        "severity": "high",
        "message": "message archived in run 1 is no longer served by the source",
        "pointer": None,
        "details": {"first_run": 1, "retain_until": None},
    }


def test_memory_does_not_grow_with_findings_about_messages_never_archived():
    """A `--recheck` of a window the source no longer serves emits one finding a message, none
    of which a record of the run will place: each waited in memory, and 199,491 of them took
    the coordinator from 94 to 144 MB (probe28, 200,000 records)."""
    builder = ReportBuilder(RunInfo(1, NOV_1, NOV_1 + HOUR_MS))
    tracemalloc.start()
    try:
        for number in range(10_000):
            builder.observe_finding(disappeared(number))
        before = tracemalloc.get_traced_memory()[0]
        for number in range(10_000, 60_000):
            builder.observe_finding(disappeared(number))
        grown = tracemalloc.get_traced_memory()[0] - before
        summary = builder.summary()
        places = list(builder.snapshot().places())
    finally:
        tracemalloc.stop()
        builder.close()
    assert summary["findings"]["total"] == summary["findings"]["undated"] == 60_000
    assert places == [(None, None)] * 60_000
    assert grown < 1024 * 1024  # each waited: 50,000 more held 13.4 MB


def test_findings_waiting_for_their_records_are_placed_by_them_past_what_memory_holds():
    """Findings that come before their records (all of a bag's, fed first) wait on disk past
    the builder's memory, and each is still dated by its record when it comes."""
    builder = ReportBuilder(RunInfo(1, NOV_1, NOV_1 + HOUR_MS))
    count = 25_000
    try:
        for number in range(count):
            builder.observe_finding(disappeared(number) | {"severity": "low"})
        builder.observe_finding(disappeared(count))  # never archived: stays undated
        for number in range(count):
            gone = record(number, NOV_1 + number) | {"msg_id": f"gone{number}"}
            builder.observe_record(gone, "2026110100", number)
        summary = builder.summary()
        places = list(builder.snapshot().places())
    finally:
        builder.close()
    assert summary["findings"]["per_day"] == {"2026-11-01": {"low": count}}
    assert summary["findings"]["undated"] == 1
    assert places[:count] == [(NOV_1 + number, "alice") for number in range(count)]
    assert places[count] == (None, None)
