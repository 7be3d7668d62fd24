"""The hour-file API: signed URLs to gzip JSON-lines files, their expiry, and every refusal."""

import gzip
from datetime import UTC, datetime

import orjson
import pytest
import requests
from emulator_support import bearer_headers

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS

START = DEFAULT_START_MS


@pytest.fixture(scope="module", params=["UTC", "+8"])
def emu(request):
    with run_emulator(EmulatorOptions(messages=2400, hour_timezone=request.param)) as emulator:
        yield emulator


def ask(emulator, label):
    url = f"{emulator.base_url}/demo-org/demo-app/chatmessages/{label}"
    return requests.get(url, headers=bearer_headers(emulator), timeout=10)


def download(emulator, hour_start):
    answer = ask(emulator, emulator.hour_label(hour_start))
    assert answer.status_code == 200, answer.text
    return requests.get(answer.json()["data"][0]["url"], timeout=10)


def records_of(file_answer):
    return [orjson.loads(line) for line in gzip.decompress(file_answer.content).splitlines()]


def test_hours_are_named_in_the_configured_time_zone(emu):
    expected = "2026110100" if emu.options.hour_timezone == "UTC" else "2026110108"
    assert emu.hour_label(START) == expected


def test_the_answer_carries_one_signed_url_in_a_data_list(emu):
    label = emu.hour_label(START + 3 * HOUR_MS)
    body = ask(emu, label).json()
    assert set(body) == {
        "action",
        "application",
        "uri",
        "data",
        "timestamp",
        "duration",
        "organization",
        "applicationName",
    }
    assert body["uri"] == f"{emu.base_url}/demo-org/demo-app/chatmessages/{label}"
    assert [set(item) for item in body["data"]] == [{"url"}]
    assert f"/{label}.gz?Expires=" in body["data"][0]["url"]
    assert (body["organization"], body["applicationName"]) == ("demo-org", "demo-app")


def test_an_hour_file_holds_exactly_that_hours_records_in_time_order(emu):
    hour = START + 5 * HOUR_MS
    answer = download(emu, hour)
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert "Content-Encoding" not in answer.headers
    assert records_of(answer) == list(emu.history.records_between(hour, hour + HOUR_MS))


def test_a_record_at_exactly_the_hour_is_in_the_later_hour_only(emu):
    history = emu.history
    index = next(
        i
        for i in range(1, len(history))
        if history.timestamp(i) % HOUR_MS == 0 and "msg_id" in history.record(i)
    )
    hour = history.timestamp(index)
    wanted = history.msg_id(index)
    earlier = {record.get("msg_id") for record in records_of(download(emu, hour - HOUR_MS))}
    later = {record.get("msg_id") for record in records_of(download(emu, hour))}
    assert wanted in later
    assert wanted not in earlier


def test_the_url_needs_no_token_but_expires_by_the_emulator_clock(emu):
    answer = ask(emu, emu.hour_label(START + HOUR_MS))
    url = answer.json()["data"][0]["url"]
    fresh = requests.get(url, timeout=10)
    emu.clock.advance(emu.options.url_ttl + 1)
    stale = requests.get(url, timeout=10)
    assert fresh.status_code == 200
    assert stale.status_code == 403
    assert "<Code>AccessDenied</Code>" in stale.text
    assert "Request has expired" in stale.text


def test_a_tampered_signature_is_refused(emu):
    url = ask(emu, emu.hour_label(START + HOUR_MS)).json()["data"][0]["url"]
    answer = requests.get(url.replace("Signature=", "Signature=AA"), timeout=10)
    assert answer.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in answer.text


def test_an_hour_without_records_is_404_storage_object_not_found(emu):
    answer = ask(emu, emu.hour_label(emu.history.end_ms + 2 * HOUR_MS))
    assert answer.status_code == 404
    assert answer.json()["error"] == "storage_object_not_found"


def test_an_hour_whose_every_record_comes_late_is_404_at_first_and_served_on_a_later_look():
    """Easemob has no file for an hour without messages; an empty file is a broken server's."""
    with run_emulator(EmulatorOptions(messages=240, late_rate=1.0)) as emulator:
        first = ask(emulator, emulator.hour_label(START))
        assert first.status_code == 404
        assert first.json()["error"] == "storage_object_not_found"

        later = records_of(download(emulator, START))
        assert {record["msg_id"] for record in later} == {
            record["msg_id"] for record in emulator.expected_records(START, START + HOUR_MS)
        }


def test_an_hour_before_the_history_is_expired_or_unstored(emu):
    answer = ask(emu, emu.hour_label(START - HOUR_MS))
    assert answer.status_code == 400
    assert answer.json()["error"] == "illegal_argument"
    assert answer.json()["error_description"].endswith(
        "maybe chat message history is expired or unstored"
    )


@pytest.mark.parametrize("label", ["202611010", "2026-11-01", "2026110125", "abcdefghij"])
def test_a_malformed_hour_is_not_supported(emu, label):
    answer = ask(emu, label)
    assert answer.status_code == 400
    assert answer.json()["error"] == "illegal_argument"
    assert answer.json()["error_description"] == "This chatmessage request is not supported"


def test_an_hour_is_served_only_once_its_ready_delay_has_passed():
    first_hour_ends = (START + HOUR_MS) / 1000
    options = EmulatorOptions(messages=240, clock_start=first_hour_ends, ready_delay_hours=2)
    with run_emulator(options) as emulator:
        label = emulator.hour_label(START)
        early = ask(emulator, label)
        emulator.clock.advance(2 * 3600)
        ready = ask(emulator, label)
    assert early.status_code == 400
    assert "maybe chat message history is expired or unstored" in early.json()["error_description"]
    assert ready.status_code == 200


def test_hours_older_than_the_retention_are_refused():
    now = datetime(2026, 11, 5, tzinfo=UTC).timestamp()
    options = EmulatorOptions(messages=240, clock_start=now, retention_days=3)
    with run_emulator(options) as emulator:
        answer = ask(emulator, emulator.hour_label(START))
    assert (answer.status_code, answer.json()["error"]) == (400, "illegal_argument")


def test_warming_in_worker_processes_builds_the_same_files_a_download_would():
    options = EmulatorOptions(messages=480, late_rate=0.1, duplicate_rate=0.1)
    with run_emulator(options) as cold, run_emulator(options) as warm:
        built = warm.warm(workers=2)
        files = [
            (emulator.feed.hour_file(START, with_late=False), emulator.feed.hour_file(START, True))
            for emulator in (cold, warm)
        ]
    assert built == 24
    assert files[0] == files[1]
