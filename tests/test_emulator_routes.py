"""Offline message counts and attachment downloads (`chatfiles`) with their share secrets."""

import socket
import struct
import time

import pytest
import requests
from emulator_support import bearer_headers

from auditor.emulator.server import EmulatorOptions, run_emulator


@pytest.fixture(scope="module")
def emu():
    with run_emulator(EmulatorOptions(messages=500)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def auth(emu):
    return bearer_headers(emu)


def unread(emu, auth, user):
    url = f"{emu.base_url}/demo-org/demo-app/users/{user}/offline_msg_count"
    return requests.get(url, headers=auth, timeout=10)


def attachment(emu, auth, file_uuid, secret=None):
    headers = dict(auth) if secret is None else {**auth, "share-secret": secret}
    url = f"{emu.base_url}/demo-org/demo-app/chatfiles/{file_uuid}"
    return requests.get(url, headers=headers, timeout=10)


def find_attachment(history, with_secret):
    """The uuid of a file whose message body shows a `secret` (or, if not `with_secret`, none)."""
    for record in history:
        for body in record.get("payload", {}).get("bodies", []):
            if (
                "url" in body
                and str(body["url"]).startswith("https://")
                and (("secret" in body) == with_secret)
            ):
                return body["url"].rsplit("/", 1)[1]
    raise AssertionError("no such attachment in the history")


def test_offline_count_of_a_known_user_has_easemobs_shape(emu, auth):
    answer = unread(emu, auth, "user0042")
    body = answer.json()
    assert answer.status_code == 200
    assert set(body) == {"action", "uri", "entities", "data", "timestamp", "duration", "count"}
    assert (body["action"], body["entities"], body["count"]) == ("get", [], 0)
    assert list(body["data"]) == ["user0042"]
    assert body["data"]["user0042"] == unread(emu, auth, "user0042").json()["data"]["user0042"]
    assert body["uri"] == f"{emu.base_url}/demo-org/demo-app/users/user0042/offline_msg_count"


def test_offline_counts_differ_between_users(emu, auth):
    counts = {unread(emu, auth, f"user{n:04d}").json()["data"][f"user{n:04d}"] for n in range(20)}
    assert len(counts) > 1


def test_offline_count_of_an_unknown_user_is_404_service_resource_not_found(emu, auth):
    answer = unread(emu, auth, "nobody")
    assert (answer.status_code, answer.json()["error"]) == (404, "service_resource_not_found")


def test_an_attachment_with_a_secret_needs_the_right_share_secret(emu, auth):
    file_uuid = find_attachment(emu.history, with_secret=True)
    data, secret = emu.history.attachment(file_uuid)
    missing = attachment(emu, auth, file_uuid)
    wrong = attachment(emu, auth, file_uuid, secret="0" * 48)
    right = attachment(emu, auth, file_uuid, secret=secret)
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.json()["error"] == "unauthorized"
    assert right.status_code == 200
    assert right.headers["Content-Type"] == "application/octet-stream"
    assert right.content == data


def test_an_attachment_without_a_secret_downloads_with_the_token_alone(emu, auth):
    file_uuid = find_attachment(emu.history, with_secret=False)
    answer = attachment(emu, auth, file_uuid)
    assert (answer.status_code, answer.content) == (200, emu.history.attachment(file_uuid)[0])


def test_an_attachment_still_needs_a_bearer_token(emu):
    file_uuid = find_attachment(emu.history, with_secret=False)
    answer = attachment(emu, {}, file_uuid)
    assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    "file_uuid", ["65e54a4a-fd0b-11e3-0007-00000000ff00", "not-a-uuid", "0" * 32]
)
def test_an_unknown_attachment_is_404_service_resource_not_found(emu, auth, file_uuid):
    answer = attachment(emu, auth, file_uuid)
    assert (answer.status_code, answer.json()["error"]) == (404, "service_resource_not_found")


def test_a_client_that_hangs_up_mid_answer_leaves_no_traceback_on_stderr(capfd):
    """socketserver printed the reset as a traceback on the process's stderr: a test that
    captured stderr around a run against an in-process emulator then saw it as the run's."""
    with run_emulator(EmulatorOptions(messages=10, slow_rate=1.0, slow_seconds=0.3)) as emulator:
        for _ in range(3):
            port = int(emulator.base_url.rsplit(":", 1)[1])
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(b"POST /demo-org/demo-app/token HTTP/1.1\r\nHost: x\r\n")
            client.sendall(b"Content-Length: 2\r\n\r\n{}")
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        time.sleep(0.6)
        served = emulator.stats.by_route("token")

    assert sum(served.values()) == 3
    assert capfd.readouterr().err == ""
