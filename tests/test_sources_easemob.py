"""The Easemob client against the emulator: token sharing, errors in one line, other calls."""

import socket
import threading

import pytest

from auditor.emulator.server import EmulatorOptions, run_emulator
from auditor.errors import ConfigError, SourceError
from auditor.sources.easemob import EasemobClient, RetryPolicy

FAST = RetryPolicy(max_retries=2, backoff_base=0.001, backoff_cap=0.01)


@pytest.fixture(scope="module")
def emu():
    with run_emulator(EmulatorOptions(messages=300, client_secret="s3cret-Kx9")) as emulator:
        yield emulator


def client_for(emu, **changes):
    settings = {
        "base_url": emu.base_url,
        "org": "demo-org",
        "app": "demo-app",
        "client_id": "demo-client",
        "client_secret": "s3cret-Kx9",
        **changes,
    }
    return EasemobClient(**settings, retry=FAST)


def attachment_body(emu):
    """A body of the history with an attachment, and that attachment's uuid."""
    for index in range(len(emu.history)):
        truth = emu.history.truth(index)
        for body in truth.record["payload"]["bodies"]:
            if isinstance(body.get("url"), str) and body["url"].rsplit("/", 1)[-1] in set(
                truth.attachments
            ):
                return body, body["url"].rsplit("/", 1)[-1]
    raise AssertionError("the history has no attachment")


def test_threads_waiting_for_a_token_share_one_request_for_it(emu):
    client = client_for(emu)
    issued = emu.stats.tokens_issued
    threads = [
        threading.Thread(target=client.offline_msg_count, args=(f"user{n:04d}",)) for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emu.stats.tokens_issued == issued + 1


def test_offline_counts_are_read_per_user(emu):
    count = client_for(emu).offline_msg_count("user0007")
    assert isinstance(count, int) and 0 <= count < 20


def test_an_unknown_user_is_named(emu):
    with pytest.raises(ConfigError, match="no user 'nobody' in demo-org/demo-app at http"):
        client_for(emu).offline_msg_count("nobody")


def test_an_attachment_named_on_easemobs_host_is_fetched_from_the_configured_cluster(emu):
    body, file_uuid = attachment_body(emu)
    assert body["url"].startswith("https://a1.easemob.com/")
    data = client_for(emu).download_attachment(body["url"], body.get("secret"))
    assert data == emu.history.attachment(file_uuid)[0]


def test_a_wrong_share_secret_is_one_line_and_costs_no_new_token(emu):
    body, _ = attachment_body(emu)
    client = client_for(emu)
    client.offline_msg_count("user0001")
    issued = emu.stats.tokens_issued
    with pytest.raises(SourceError, match="refused the share-secret given for the file"):
        client.download_attachment(body["url"], "wrong")
    assert emu.stats.tokens_issued == issued


def test_wrong_credentials_name_org_app_and_url_but_not_the_secret(emu):
    with pytest.raises(ConfigError) as caught:
        client_for(emu, client_secret="not-it").offline_msg_count("user0001")
    assert str(caught.value) == (
        f"wrong client id or secret for demo-org/demo-app at {emu.base_url} "
        "(check --client-id and the client secret, from EASEMOB_CLIENT_SECRET, "
        "EASEMOB_CLIENT_SECRET_FILE, or the config's client_secret_file, or an app's "
        "client_secret_env "
        "under apps:)"
    )


def test_an_unknown_org_or_app_is_named(emu):
    with pytest.raises(ConfigError) as caught:
        client_for(emu, app="no-such-app").offline_msg_count("user0001")
    assert str(caught.value) == (
        f"no application demo-org/no-such-app at {emu.base_url}; check --org and --app"
    )


def test_an_unreachable_server_is_named_after_the_retries():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = EasemobClient(f"http://127.0.0.1:{port}", "o", "a", "id", "secret", retry=FAST)
    with pytest.raises(SourceError) as caught:
        client.hour_file_url("2026110100")
    assert str(caught.value) == (
        f"POST http://127.0.0.1:{port}/o/a/token failed after 3 attempts (Connection refused); "
        f"check that http://127.0.0.1:{port} is reachable and serves o/a"
    )


def test_the_client_shows_no_secret_or_token_in_its_repr(emu):
    client = client_for(emu)
    client.offline_msg_count("user0001")
    shown = repr(client) + repr(client._tokens) + repr(client._tokens._token)
    assert "s3cret-Kx9" not in shown and "YWMt" not in shown
