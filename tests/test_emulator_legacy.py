"""The legacy `ql` API: paging by opaque cursors, limits, query parsing, the `params` echo."""

import http.client
import json
from urllib.parse import quote, urlsplit

import pytest
import requests
from emulator_support import bearer_headers

from auditor.emulator.dataset import DEFAULT_START_MS
from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.partitions import HOUR_MS

START = DEFAULT_START_MS
ENTITY_FIELDS = ("uuid", "type", "created", "modified")


@pytest.fixture(scope="module")
def emu():
    with run_emulator(EmulatorOptions(messages=2400)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def auth(emu):
    return bearer_headers(emu)


def window_ql(since_ms, until_ms):
    return f"select * where timestamp>{since_ms - 1} and timestamp<{until_ms}"


def page(emu, auth, **params):
    url = f"{emu.base_url}/demo-org/demo-app/chatmessages"
    return requests.get(url, params=params, headers=auth, timeout=10)


def pull(emu, auth, ql, limit=None):
    """Every page of a query; returns the entities and each page's body."""
    entities, bodies, cursor = [], [], None
    while True:
        params = {"ql": ql}
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        body = page(emu, auth, **params).json()
        bodies.append(body)
        entities.extend(body["entities"])
        cursor = body.get("cursor")
        if cursor is None:
            return entities, bodies


def as_records(entities):
    return [{k: v for k, v in entity.items() if k not in ENTITY_FIELDS} for entity in entities]


def test_paging_with_limit_1000_returns_exactly_the_window(emu, auth):
    since, until = START + HOUR_MS, START + 13 * HOUR_MS
    entities, bodies = pull(emu, auth, window_ql(since, until), limit=1000)
    assert as_records(entities) == emu.expected_records(since, until)
    assert [body["count"] for body in bodies] == [1000, 200]


def test_paging_with_the_default_limit_of_10_returns_exactly_the_window(emu, auth):
    since, until = START + 2 * HOUR_MS, START + 4 * HOUR_MS
    entities, bodies = pull(emu, auth, window_ql(since, until))
    assert as_records(entities) == emu.expected_records(since, until)
    assert {body["count"] for body in bodies} == {10}


def test_a_limit_above_1000_is_clamped_to_1000(emu, auth):
    body = page(emu, auth, ql=window_ql(START, START + 24 * HOUR_MS), limit=5000).json()
    assert body["count"] == 1000
    assert "cursor" in body


def test_the_cursor_is_present_while_rows_remain_and_absent_on_the_last_page(emu, auth):
    since, until = START, START + HOUR_MS
    assert len(emu.expected_records(since, until)) == 100
    _, bodies = pull(emu, auth, window_ql(since, until), limit=50)
    assert ["cursor" in body for body in bodies] == [True, False]


def test_an_empty_window_has_no_entities_and_no_cursor(emu, auth):
    body = page(emu, auth, ql=window_ql(START - 2 * HOUR_MS, START - HOUR_MS)).json()
    assert (body["entities"], body["count"], "cursor" in body) == ([], 0, False)


def test_raw_and_form_encoded_operators_mean_the_same_query(emu, auth):
    since, until = START + HOUR_MS, START + HOUR_MS + 600_000
    text = f"select * where timestamp>{since - 1} and timestamp<{until}"
    spellings = (
        text.replace(" ", "+"),
        quote(text, safe="*").replace("%20", "+"),
        quote(text, safe="*"),
    )
    answers = []
    parts = urlsplit(emu.base_url)
    for spelling in spellings:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.putrequest("GET", f"/demo-org/demo-app/chatmessages?ql={spelling}&limit=100")
        connection.putheader("Authorization", auth["Authorization"])
        connection.endheaders()
        answers.append(json.loads(connection.getresponse().read()))
        connection.close()
    assert "<" in spellings[0] and "%3C" in spellings[1]
    assert [answer["params"]["ql"] for answer in answers] == [[text]] * 3
    assert answers[0]["entities"] == answers[1]["entities"] == answers[2]["entities"]
    assert as_records(answers[0]["entities"]) == emu.expected_records(since, until)


def test_order_by_timestamp_desc_returns_the_window_newest_first(emu, auth):
    since, until = START + HOUR_MS, START + 2 * HOUR_MS
    entities, _ = pull(emu, auth, window_ql(since, until) + " order by timestamp desc", limit=30)
    assert as_records(entities) == emu.expected_records(since, until)[::-1]


def test_params_echo_every_query_parameter_as_a_list_of_strings(emu, auth):
    ql = window_ql(START, START + HOUR_MS)
    body = page(emu, auth, ql=ql, limit=7, sql="ignored").json()
    assert body["params"] == {"ql": [ql], "limit": ["7"], "sql": ["ignored"]}
    assert body["count"] == 7
    assert (body["action"], body["path"]) == ("get", "/chatmessages")
    assert body["uri"] == f"{emu.base_url}/demo-org/demo-app/chatmessages"


def test_entities_carry_usergrid_fields_derived_from_the_record(emu, auth):
    first = page(emu, auth, ql=window_ql(START, START + HOUR_MS), limit=20).json()["entities"]
    again = page(emu, auth, ql=window_ql(START, START + HOUR_MS), limit=20).json()["entities"]
    assert first == again
    assert len({entity["uuid"] for entity in first}) == 20
    for index, entity in enumerate(first):
        timestamp = emu.history.timestamp(index)
        assert entity["type"] == "chatmessage"
        assert 200 <= entity["created"] - timestamp <= 600
        assert entity["modified"] == entity["created"]


def test_a_record_whose_timestamp_is_missing_is_still_served_in_its_place(emu, auth):
    history = emu.history
    index = next(i for i in range(len(history)) if history.truth(i).defect == "missing_timestamp")
    moment = history.timestamp(index)
    entities, _ = pull(emu, auth, window_ql(moment - 60_000, moment + 60_000), limit=1000)
    served = as_records(entities)
    assert history.record(index) in served
    assert served == emu.expected_records(moment - 60_000, moment + 60_000)


@pytest.mark.parametrize("limit", ["ten", "", "0", "-5"])
def test_a_limit_that_is_not_a_positive_number_is_refused(emu, auth, limit):
    answer = page(emu, auth, ql=window_ql(START, START + HOUR_MS), limit=limit)
    assert (answer.status_code, answer.json()["error"]) == (400, "illegal_argument")


def test_a_ql_the_api_does_not_understand_is_refused(emu, auth):
    answer = page(emu, auth, ql="select * where timestamp>1 or timestamp<2")
    assert (answer.status_code, answer.json()["error"]) == (400, "illegal_argument")


def test_a_mangled_cursor_or_one_from_another_query_is_refused(emu, auth):
    ql = window_ql(START, START + HOUR_MS)
    cursor = page(emu, auth, ql=ql, limit=10).json()["cursor"]
    other = page(emu, auth, ql=window_ql(START, START + 2 * HOUR_MS), cursor=cursor)
    mangled = page(emu, auth, ql=ql, cursor=cursor[:-3] + "xyz")
    garbage = page(emu, auth, ql=ql, cursor="not base64 at all!")
    for answer in (other, mangled, garbage):
        assert (answer.status_code, answer.json()["error"]) == (400, "illegal_argument")


def test_a_cursor_stays_valid_across_a_restart_with_the_same_seed(emu, auth):
    ql = window_ql(START, START + HOUR_MS)
    first = page(emu, auth, ql=ql, limit=10).json()
    with run_emulator(EmulatorOptions(messages=2400)) as restarted:
        answer = requests.get(
            f"{restarted.base_url}/demo-org/demo-app/chatmessages",
            params={"ql": ql, "limit": 10, "cursor": first["cursor"]},
            headers=bearer_headers(restarted),
            timeout=10,
        )
    assert (
        as_records(answer.json()["entities"]) == emu.expected_records(START, START + HOUR_MS)[10:20]
    )
