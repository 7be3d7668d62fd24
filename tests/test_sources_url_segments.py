"""Names put into a REST path (org, app, user, attachment uuid) travel as one segment each, as
a loopback server receives them; `.` and `..`, which clients and servers fold away, are refused."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.errors import ConfigError, InputError
from auditor.sources.easemob import EasemobClient, RetryPolicy

SECRET = "url-segments-secret"


@pytest.fixture
def server():
    """A server that hands out a token and answers each user's count, recording each request
    line's target as sent."""
    targets: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            targets.append(self.path)
            segments = self.path.split("?")[0].split("/")
            if segments[-1] == "token":
                document = {"access_token": "YWMt-token", "expires_in": 3600}
            else:
                document = {"data": {unquote(segments[-2]): 7}}
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", targets
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(url, org="o", app="a"):
    policy = RetryPolicy(max_retries=0, backoff_base=0.001, backoff_cap=0.01)
    return EasemobClient(url, org, app, "id", SECRET, timeout=2.0, retry=policy)


NAMES = ["a/b", "who?x=1", "tag#1", "100%", "two words", "张伟", "a..b", ".hidden", "%2E%2E"]


@pytest.mark.parametrize("name", NAMES)
def test_a_user_name_is_one_percent_encoded_segment(server, name):
    url, targets = server
    assert client(url).offline_msg_count(name) == 7
    assert targets[-1] == f"/o/a/users/{quote(name, safe='')}/offline_msg_count"


@pytest.mark.parametrize("name", [".", ".."])
def test_a_dot_user_is_refused_before_any_request(server, name):
    url, targets = server
    with pytest.raises(ConfigError, match=f"user {name!r} cannot be named in a URL path"):
        client(url).offline_msg_count(name)
    assert targets == []


@pytest.mark.parametrize("where", ["org", "app"])
def test_a_dot_org_or_app_is_refused_before_any_request(server, where):
    url, targets = server
    with pytest.raises(ConfigError, match=f"{where} '..' cannot be named in a URL path"):
        client(url, **{where: ".."}).offline_msg_count("user1")
    assert targets == []


def test_unread_of_dot_dot_exits_2_in_one_line_and_sends_nothing(server):
    url, targets = server
    result = CliRunner().invoke(
        main,
        ["unread", "..", "--base-url", url, "--org", "o", "--app", "a", "--client-id", "id"],
        env={"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None},
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "auditor: error: user '..' cannot be named in a URL path (it is '.' or '..', which servers "
        "read as a step between folders)"
    ]
    assert targets == []


@pytest.mark.parametrize(
    "link",
    [
        "https://a1.easemob.com/o/a/chatfiles/../token",
        "https://a1.easemob.com/o/a/chatfiles/%2e%2E",
        "https://a1.easemob.com/o/a/chatfiles/./x",
    ],
)
def test_an_attachment_url_stepping_out_of_chatfiles_is_refused(server, link):
    url, targets = server
    with pytest.raises(InputError, match="steps out of /chatfiles/"):
        client(url).download_attachment(link)
    assert targets == []
