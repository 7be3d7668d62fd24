"""Runs against a source whose msg_ids do not grow with time archive exactly the ground truth.

The emulator's msg_ids grow with the record's index by default, so every index a run keeps by
msg_id gets its rows in key order. Easemob's are snowflake-style (several servers' clocks, so
they interleave within an hour) and an export may come in any order: the run's own index is
keyed by hour for that reason (`pipeline._Archiver`), and these runs check that no record is
lost, archived twice, or has its conflicting version dropped, whatever the order, with every
record a stray (a source naming its hours in another zone) or none.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
from collections import Counter
from contextlib import closing
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import run_support
from test_hostile_data_hourfiles import HourFileServer

from auditor.archive.keys import generate_key_files
from auditor.archive.publickey import load_public_key
from auditor.archive.verify import verify_bag
from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS
from auditor.pipeline import RunSettings, run_audit
from auditor.records import content_hash
from auditor.resources import example_policy
from auditor.sources.settings import ConnectionSettings

SECRET = "msg-id-order-secret"
FAULTS = dict(duplicate_rate=0.05, conflict_rate=0.05, fail_rate=0.05)
# A source naming its hours in Beijing time serves, as the UTC hour a run asks for, the
# records of eight hours earlier: every one of them a stray of another hour.
SHIFT = {"UTC": 0, "+8": 8 * HOUR_MS}
# Two runs of four hours overlapping by two, over 2,400 messages a day: about 630 records, 28 to
# 30 msg_ids in two versions and two records without a msg_id in the overlap, which is what the
# checks below need (runs of six hours over 4,800 messages made 1,900 records for the same).
RUN_HOURS, OVERLAP_HOURS = 4, 2


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_key_files(tmp_path_factory.mktemp("keys"), identity="order-test")


def pairs_of(records) -> list[tuple[str, str]]:
    return [(str(record.get("msg_id")), content_hash(record)) for record in records]


def archived(bag: Path) -> list[dict]:
    return [
        json.loads(line)["record"]
        for path in sorted((bag / "data" / "records").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def indexed(state: Path) -> list[tuple[str, str, int]]:
    with closing(sqlite3.connect(state)) as db:
        return db.execute("SELECT msg_id, content_hash, first_run FROM messages").fetchall()


@pytest.mark.parametrize("zone", ["UTC", "+8"])
@pytest.mark.parametrize("order", ["snowflake", "random"])
def test_two_overlapping_runs_archive_and_index_the_ground_truth_once(keys, tmp_path, order, zone):
    """Attachments are not fetched: what is archived and indexed once is the claim, and a fetch
    is a request a file, about half of these runs' CPU."""
    options = EmulatorOptions(
        messages=2_400, days=1, client_secret=SECRET, msg_id_order=order, hour_timezone=zone,
        **FAULTS,
    )  # fmt: skip
    since = DEFAULT_START_MS + 8 * HOUR_MS
    second_since = since + (RUN_HOURS - OVERLAP_HOURS) * HOUR_MS
    first_until, until = since + RUN_HOURS * HOUR_MS, second_since + RUN_HOURS * HOUR_MS
    shift = SHIFT[zone]
    with run_emulator(options) as emulator:
        first = run_audit(
            run_support.settings_for(
                emulator, keys, tmp_path, SECRET, since_ms=since, until_ms=first_until,
                fail_on="none", attachments="skip",
            )
        )  # fmt: skip
        second = run_audit(
            run_support.settings_for(
                emulator, keys, tmp_path, SECRET, since_ms=second_since, until_ms=until,
                fail_on="none", attachments="skip",
            )
        )  # fmt: skip
        expected_first = pairs_of(emulator.expected_records(since - shift, first_until - shift))
        expected_all = pairs_of(emulator.expected_records(since - shift, until - shift))
        overlap = pairs_of(emulator.expected_records(second_since - shift, until - shift))
    public_key = load_public_key(keys.public_key)
    in_first, in_second = pairs_of(archived(first.bag_path)), pairs_of(archived(second.bag_path))
    identified = sorted(pair for pair in expected_all if pair[0] != "None")
    # a record without a msg_id is archived by each run whose window holds it (README)
    anonymous = sorted(pair for pair in overlap if pair[0] == "None")
    versions = Counter(identity for identity, _content in identified)

    assert verify_bag(first.bag_path, public_key).problems == ()
    assert verify_bag(second.bag_path, public_key, previous=first.bag_path).problems == ()
    assert sorted(in_first) == sorted(expected_first)
    assert sorted(in_second) == sorted([*(set(identified) - set(expected_first)), *anonymous])
    assert sorted((i, c) for i, c, _run in indexed(tmp_path / "state.db")) == identified
    assert {run for _i, _c, run in indexed(tmp_path / "state.db")} == {1, 2}
    assert anonymous and sum(count == 2 for count in versions.values()) > 20
    assert second.skipped_duplicates > 0


def test_records_served_in_every_hour_of_a_run_are_archived_once_whatever_their_msg_ids(
    keys, tmp_path
):
    """The same file for each of three hours: records sent in the first hour (archived there,
    strays of the other two), in the second (strays of the first, then archived in their own
    hour, then strays again), after the window (strays each time), and without a timestamp;
    msg_ids in no order, one with two versions. Each (msg_id, content) is archived once."""
    start = DEFAULT_START_MS
    sent = [start + 5, start + 17, start + HOUR_MS + 9, start + HOUR_MS + 3, start + 4 * HOUR_MS]
    ids = ["918273645546372819", "100000000000000001", "555555555555555555", "300000000000000003"]
    ids.append("777777777777777777")
    records = [
        {"msg_id": identity, "timestamp": at, "chat_type": "chat", "from": "a", "to": "b"}
        for identity, at in zip(ids, sent, strict=True)
    ]
    records.append(dict(records[2], to="c"))  # a second version of a message
    records.append({"msg_id": "400000000000000004", "chat_type": "chat", "from": "a", "to": "b"})
    served = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), HourFileServer)
    httpd.hour_file = gzip.compress(served)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        source = ConnectionSettings(
            base_url=f"http://127.0.0.1:{httpd.server_address[1]}", org="o", app="a",
            client_id="c", client_secret=SECRET, backoff_base=0.001, backoff_cap=0.01,
        )  # fmt: skip
        outcome = run_audit(
            RunSettings(
                source=source, policy_path=example_policy(), key_path=keys.private_key,
                out_dir=tmp_path / "archive", state_path=tmp_path / "state.db",
                since_ms=start, until_ms=start + 3 * HOUR_MS, ready_delay_hours=0,
                fail_on="none", attachments="skip", as_of_ms=start + 3 * HOUR_MS,
            )
        )  # fmt: skip
    finally:
        httpd.shutdown()
        httpd.server_close()
    in_bag = pairs_of(archived(outcome.bag_path))

    assert sorted(in_bag) == sorted(pairs_of(records))
    assert outcome.skipped_duplicates == 2 * len(records)
    assert sorted((i, c) for i, c, _run in indexed(tmp_path / "state.db")) == sorted(in_bag)
