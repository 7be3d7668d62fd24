"""The emulator's app tokens, bearer auth, error bodies and route errors, over real HTTP."""

import re
import uuid

import pytest
import requests
from emulator_support import CREDENTIALS, token_url

from auditor.emulator.server import EmulatorOptions, run_emulator

DAY = 24 * 3600
ERROR_KEYS = {"error", "timestamp", "duration", "exception", "error_description"}


@pytest.fixture(scope="module")
def emu():
    with run_emulator(EmulatorOptions(messages=200)) as emulator:
        yield emulator


def grant(emulator, **extra):
    return requests.post(token_url(emulator), json={**CREDENTIALS, **extra}, timeout=10)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def user_count_url(emulator, org="demo-org", app="demo-app"):
    return f"{emulator.base_url}/{org}/{app}/users/user0001/offline_msg_count"


def test_right_credentials_get_an_easemob_style_token_valid_for_60_days(emu):
    answer = grant(emu)
    body = answer.json()
    assert answer.status_code == 200
    assert set(body) == {"access_token", "expires_in", "application"}
    assert body["access_token"].startswith("YWMt")
    assert body["expires_in"] == 60 * DAY
    assert uuid.UUID(body["application"])


def test_a_token_opens_the_api_until_its_ttl_passes_on_the_emulator_clock(emu):
    token = grant(emu, ttl=60).json()["access_token"]
    before = requests.get(user_count_url(emu), headers=bearer(token), timeout=10)
    emu.clock.advance(61)
    after = requests.get(user_count_url(emu), headers=bearer(token), timeout=10)
    assert before.status_code == 200
    assert after.status_code == 401
    assert after.json()["error"] == "unauthorized"
    assert after.json()["error_description"] == (
        "Unable to authenticate due to expired access token"
    )


def test_ttl_sent_as_a_string_is_honoured(emu):
    assert grant(emu, ttl="1024000").json()["expires_in"] == 1024000


def test_ttl_zero_never_expires(emu):
    body = grant(emu, ttl=0).json()
    emu.clock.advance(400 * DAY)
    answer = requests.get(user_count_url(emu), headers=bearer(body["access_token"]), timeout=10)
    assert body["expires_in"] == 0
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("field", "description"),
    [("client_id", "client_id does not match"), ("client_secret", "client_secret does not match")],
)
def test_wrong_credentials_are_an_invalid_grant(emu, field, description):
    answer = grant(emu, **{field: "wrong"})
    assert answer.status_code == 400
    assert set(answer.json()) == ERROR_KEYS
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["error_description"] == description


def test_a_body_that_is_not_json_is_a_json_parse_error(emu):
    answer = requests.post(
        f"{emu.base_url}/demo-org/demo-app/token",
        data="grant_type=client_credentials",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "json_parse"
    assert answer.json()["error_description"].startswith("Unexpected character ('g' (code 103))")


def test_a_ttl_that_is_not_a_number_is_refused(emu):
    answer = grant(emu, ttl="soon")
    assert (answer.status_code, answer.json()["error"]) == (400, "illegal_argument")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "token"),
        ("GET", "chatmessages/2026110100"),
        ("GET", "chatmessages"),
        ("GET", "users/user0001/offline_msg_count"),
        ("GET", "chatfiles/65e54a4a-fd0b-11e3-0007-000000000000"),
    ],
)
def test_an_unknown_org_or_app_is_404_on_every_route(emu, method, path):
    answer = requests.request(method, f"{emu.base_url}/other-org/demo-app/{path}", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["error"] == "organization_application_not_found"
    assert set(answer.json()) == ERROR_KEYS


@pytest.mark.parametrize(
    ("authorization", "error", "description"),
    [
        (None, "unauthorized", "Unable to authenticate (OAuth)"),
        ("Bearer ", "unauthorized", "Unable to authenticate (OAuth)"),
        (
            "Bearer not-a-token",
            "auth_bad_access_token",
            "Unable to authenticate due to corrupt access token",
        ),
        ("Bearer YWMt" + "A" * 80, "auth_bad_access_token", "Unable to authenticate"),
    ],
)
def test_missing_corrupt_and_foreign_tokens_get_their_own_401(
    emu, authorization, error, description
):
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = requests.get(user_count_url(emu), headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"] == error
    assert answer.json()["error_description"] == description
    assert set(answer.json()) == ERROR_KEYS


def test_a_token_from_another_emulator_is_well_formed_but_unknown(emu):
    with run_emulator(EmulatorOptions(messages=10)) as other:
        foreign = grant(other).json()["access_token"]
    answer = requests.get(user_count_url(emu), headers=bearer(foreign), timeout=10)
    assert (answer.status_code, answer.json()["error_description"]) == (
        401,
        "Unable to authenticate",
    )


def test_an_unknown_route_is_a_500_web_application_error(emu):
    answer = requests.get(f"{emu.base_url}/demo-org/demo-app/nothing/here", timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (500, "web_application")


def test_a_wrong_method_is_a_500_unsupported_service_operation(emu):
    answer = requests.get(f"{emu.base_url}/demo-org/demo-app/token", timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (500, "unsupported_service_operation")


def test_token_ttl_caps_every_lifetime_including_never():
    with run_emulator(EmulatorOptions(messages=10, token_ttl=300)) as emulator:
        lifetimes = [grant(emulator, **extra).json()["expires_in"] for extra in ({}, {"ttl": 0})]
    assert lifetimes == [300, 300]


def test_an_early_expiring_token_dies_long_before_expires_in():
    with run_emulator(EmulatorOptions(messages=10, token_expire_early=30)) as emulator:
        body = grant(emulator).json()
        emulator.clock.advance(31)
        answer = requests.get(
            user_count_url(emulator), headers=bearer(body["access_token"]), timeout=10
        )
    assert body["expires_in"] == 60 * DAY
    assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")


def test_a_token_with_a_life_in_requests_dies_once_that_many_presented_it_failed_or_not():
    """Every other request of a route fails (500-503): the token's third request fails, and
    counts; its fourth is refused as expired."""
    options = EmulatorOptions(
        messages=10, token_requests=2, fail_rate=1.0, max_consecutive_faults=1
    )
    with run_emulator(options) as emulator:
        assert grant(emulator).status_code >= 500
        token = grant(emulator).json()["access_token"]
        answers = [
            requests.get(user_count_url(emulator), headers=bearer(token), timeout=10)
            for _ in range(4)
        ]
    statuses = [answer.status_code for answer in answers]
    assert statuses[1::2] == [200, 401] and min(statuses[0::2]) >= 500
    assert answers[3].json()["error_description"] == (
        "Unable to authenticate due to expired access token"
    )


def test_tokens_issued_are_counted_and_never_echoed_in_stats(emu):
    before = emu.stats.tokens_issued
    token = grant(emu).json()["access_token"]
    snapshot = emu.stats.snapshot()
    assert snapshot["tokens_issued"] == before + 1
    assert not re.search(re.escape(token), repr(snapshot))
