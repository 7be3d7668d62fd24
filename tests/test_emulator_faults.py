"""Fault injection: each fault shows up, and none repeats more than `max_consecutive_faults`."""

import gzip
import itertools
import json
import time
import zlib

import orjson
import pytest
import requests
from emulator_support import CREDENTIALS, token_url

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS

START = DEFAULT_START_MS
ENTITY_FIELDS = ("uuid", "type", "created", "modified")


def emulator(**faults):
    return run_emulator(EmulatorOptions(messages=600, **faults))


def token_answer(emu):
    return requests.post(token_url(emu), json=CREDENTIALS, timeout=10)


def auth(emu):
    for _ in range(5):
        answer = token_answer(emu)
        if answer.status_code == 200 and answer.headers["Content-Type"].startswith("application"):
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}
    raise AssertionError("no token after 5 tries")


def streaks(send, failed, requests_count):
    """Sends `requests_count` logical requests, each retried until it succeeds.

    Returns the answers that failed and, per request, how many failures preceded success.
    """
    failures, runs = [], []
    for _ in range(requests_count):
        run = 0
        while True:
            answer = send()
            if not failed(answer):
                break
            failures.append(answer)
            run += 1
            assert run <= 10, "a request kept failing"
        runs.append(run)
    return failures, runs


def not_json(answer):
    try:
        answer.json()
    except ValueError:
        return True
    return False


def test_5xx_answers_come_in_three_kinds_and_at_most_two_in_a_row():
    with emulator(fail_rate=0.6) as emu:
        failures, runs = streaks(lambda: token_answer(emu), lambda a: a.status_code >= 500, 30)
        counted = emu.stats.faults["fail"]
    assert {answer.status_code for answer in failures} == {500, 502, 503}
    assert max(runs) == 2
    assert counted == len(failures)
    assert all(
        answer.json()["error"] == "internal_server_error"
        for answer in failures
        if answer.status_code == 500
    )
    assert all("nginx" in answer.text for answer in failures if answer.status_code != 500)


def test_rate_limits_are_429_reach_limit_without_retry_after():
    with emulator(rate_limit_rate=0.6) as emu:
        headers = auth(emu)
        url = f"{emu.base_url}/demo-org/demo-app/users/user0001/offline_msg_count"
        failures, runs = streaks(
            lambda: requests.get(url, headers=headers, timeout=10),
            lambda a: a.status_code == 429,
            20,
        )
    assert failures and max(runs) <= 2
    assert {answer.json()["error"] for answer in failures} == {"reach_limit"}
    assert {answer.json()["error_description"] for answer in failures} == {
        "This request has reached api limit"
    }
    assert not any("Retry-After" in answer.headers for answer in failures)


def test_legacy_503s_hit_only_the_legacy_api():
    with emulator(legacy_503_rate=0.6) as emu:
        headers = auth(emu)
        legacy = f"{emu.base_url}/demo-org/demo-app/chatmessages"
        unread = f"{emu.base_url}/demo-org/demo-app/users/user0001/offline_msg_count"
        failures, runs = streaks(
            lambda: requests.get(legacy, headers=headers, timeout=10),
            lambda a: a.status_code == 503,
            20,
        )
        others = [requests.get(unread, headers=headers, timeout=10).status_code for _ in range(10)]
    assert failures and max(runs) <= 2
    assert set(others) == {200}


def test_slow_answers_take_slow_seconds_and_are_capped_like_failures():
    with emulator(slow_rate=0.5, slow_seconds=0.15) as emu:

        def timed():
            began = time.perf_counter()
            token_answer(emu)
            return time.perf_counter() - began

        slow, runs = streaks(timed, lambda seconds: seconds >= 0.15, 8)
    assert slow and max(runs) <= 2


def test_garbage_answers_are_200_with_a_body_that_is_not_json():
    with emulator(garbage_rate=0.6) as emu:
        headers = auth(emu)
        hour = f"{emu.base_url}/demo-org/demo-app/chatmessages/{emu.hour_label(START)}"
        legacy = f"{emu.base_url}/demo-org/demo-app/chatmessages"
        failures, runs = [], []
        for url in (hour, legacy):
            found, counts = streaks(
                lambda url=url: requests.get(url, headers=headers, timeout=10), not_json, 10
            )
            failures += found
            runs += counts
    assert len({answer.url.split("?")[0] for answer in failures}) == 2
    assert {answer.status_code for answer in failures} == {200}
    assert all(answer.text.startswith("<html>") for answer in failures)
    assert max(runs) <= 2


def test_truncated_downloads_are_cut_gzip_files_and_a_retry_gets_the_whole_file():
    with emulator(truncate_rate=0.6) as emu:
        headers = auth(emu)
        hour = f"{emu.base_url}/demo-org/demo-app/chatmessages/{emu.hour_label(START)}"
        url = requests.get(hour, headers=headers, timeout=10).json()["data"][0]["url"]
        expected = emu.expected_records(START, START + HOUR_MS)

        def fetch():
            try:
                data = requests.get(url, timeout=10).content
                return [orjson.loads(line) for line in gzip.decompress(data).splitlines()]
            except (requests.RequestException, EOFError, zlib.error, gzip.BadGzipFile) as error:
                return error

        failures, runs = streaks(fetch, lambda result: isinstance(result, Exception), 12)
        whole = fetch()
    assert failures and max(runs) <= 2
    assert whole == expected


def test_duplicates_are_exact_copies_in_hour_files_and_repeated_rows_across_legacy_pages():
    with emulator(duplicate_rate=0.2) as emu:
        headers = auth(emu)
        answer = requests.get(
            f"{emu.base_url}/demo-org/demo-app/chatmessages/{emu.hour_label(START)}",
            headers=headers,
            timeout=10,
        )
        lines = gzip.decompress(requests.get(answer.json()["data"][0]["url"], timeout=10).content)
        pages, cursor = [], None
        while True:
            params = {"ql": f"select * where timestamp<{START + 3 * HOUR_MS}", "limit": 20}
            if cursor:
                params["cursor"] = cursor
            body = requests.get(
                f"{emu.base_url}/demo-org/demo-app/chatmessages",
                params=params,
                headers=headers,
                timeout=10,
            ).json()
            pages.append(body["entities"])
            cursor = body.get("cursor")
            if not cursor:
                break
        hour_truth = emu.expected_records(START, START + HOUR_MS)
        window_truth = emu.expected_records(START, START + 3 * HOUR_MS)
    records = [orjson.loads(line) for line in lines.splitlines()]
    assert len(records) > len(hour_truth)
    assert distinct(records) == hour_truth
    assert any(before[-1] == after[0] for before, after in itertools.pairwise(pages))
    rows = [{k: v for k, v in e.items() if k not in ENTITY_FIELDS} for p in pages for e in p]
    assert distinct(rows) == window_truth


def distinct(records):
    seen, kept = set(), []
    for record in records:
        key = json.dumps(record, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(record)
    return kept


def test_conflicting_versions_share_a_msg_id_and_both_belong_to_the_truth():
    with emulator(conflict_rate=0.1) as emu:
        truth = emu.expected_records(START, START + 24 * HOUR_MS)
    by_id = {}
    for record in truth:
        by_id.setdefault(record.get("msg_id"), []).append(record)
    conflicts = [versions for key, versions in by_id.items() if key and len(versions) > 1]
    assert conflicts
    assert all(len(versions) == 2 and versions[0] != versions[1] for versions in conflicts)
    assert len(truth) == 600 + len(conflicts)


def test_late_records_miss_the_first_download_of_their_hour_and_arrive_in_the_next():
    with emulator(late_rate=0.2) as emu:
        headers = auth(emu)
        api = f"{emu.base_url}/demo-org/demo-app/chatmessages/{emu.hour_label(START)}"

        def download():
            url = requests.get(api, headers=headers, timeout=10).json()["data"][0]["url"]
            data = gzip.decompress(requests.get(url, timeout=10).content)
            return [orjson.loads(line) for line in data.splitlines()]

        first, second = download(), download()
        truth = emu.expected_records(START, START + HOUR_MS)
    assert len(first) < len(truth)
    assert all(record in truth for record in first)
    assert second == truth


def test_short_pages_hold_fewer_rows_than_limit_while_a_cursor_says_more_exist():
    with emulator(short_page_rate=0.5) as emu:
        headers = auth(emu)
        bodies, cursor = [], None
        while True:
            params = {"ql": "select * where timestamp>0", "limit": 50}
            if cursor:
                params["cursor"] = cursor
            body = requests.get(
                f"{emu.base_url}/demo-org/demo-app/chatmessages",
                params=params,
                headers=headers,
                timeout=10,
            ).json()
            bodies.append(body)
            cursor = body.get("cursor")
            if not cursor:
                break
        truth = emu.expected_records(START, START + 24 * HOUR_MS)
    assert any(body["count"] < 50 and "cursor" in body for body in bodies)
    rows = [
        {k: v for k, v in e.items() if k not in ENTITY_FIELDS}
        for b in bodies
        for e in b["entities"]
    ]
    assert rows == truth


@pytest.mark.parametrize("max_consecutive", [0, 2])
def test_with_every_fault_on_no_request_fails_more_than_the_cap_in_a_row(max_consecutive):
    rates = {
        "fail_rate": 0.3,
        "rate_limit_rate": 0.3,
        "garbage_rate": 0.3,
        "slow_rate": 0.3,
        "slow_seconds": 0.01,
    }
    with emulator(max_consecutive_faults=max_consecutive, **rates) as emu:
        headers = auth(emu)
        url = f"{emu.base_url}/demo-org/demo-app/users/user0001/offline_msg_count"
        _, runs = streaks(
            lambda: requests.get(url, headers=headers, timeout=10),
            lambda a: a.status_code != 200 or not_json(a),
            25,
        )
        faults = sum(emu.stats.faults.values())
    assert max(runs) <= max_consecutive
    assert (faults > 0) == (max_consecutive > 0)
