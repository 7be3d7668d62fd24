"""The client against a hostile server on loopback: bodies that trickle, never end or explode,
answers that echo secrets, redirects elsewhere, bad URLs, absurd waits, counts and token lives.

Each case starts a small threaded `http.server` that misbehaves in one way and drives the real
client (or the CLI, or a worker's stages) over real HTTP.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import socket
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import orjson
import pytest
import run_support
from click.testing import CliRunner

import auditor.sources.easemob as easemob
import auditor.stages as stages
from auditor.cli import main
from auditor.errors import ConfigError, SourceError
from auditor.partitions import Partition
from auditor.sources.easemob import EasemobClient, RetryPolicy, retry_after_seconds
from auditor.sources.local import LocalFileSource
from auditor.sources.settings import ConnectionSettings, load_settings

SECRET = "Sx-hostile-client-secret-42"
TOKEN = "YWMt-hostile-token-0123456789"
HOUR = Partition(1_793_491_200_000)
BLOCK = b"\0" * 65536  # what endless and large bodies are made of, allocated once


@dataclass
class Server:
    url: str
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.seen]


def send(handler, status=200, body=b"", headers=None):
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def send_json(handler, status, document, headers=None):
    send(
        handler,
        status,
        orjson.dumps(document),
        {"Content-Type": "application/json", **(headers or {})},
    )


def send_token(handler, expires_in=3600):
    send_json(handler, 200, {"access_token": TOKEN, "expires_in": expires_in})


def trickle(handler, seconds=5.0, every=0.2):
    """Headers at once, then a byte every `every` s for at most `seconds` (then it hangs up, so
    that a client without a bound fails the test instead of hanging it)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.flush()
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        handler.wfile.write(b"{")
        handler.wfile.flush()
        time.sleep(every)
    handler.close_connection = True


def stream(handler, total, headers=None):
    """`total` bytes of zeros in chunks (chunked encoding), never held whole."""
    handler.send_response(200)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    left = total
    while left > 0:
        piece = BLOCK[: min(left, len(BLOCK))]
        handler.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        left -= len(piece)
    handler.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def serve():
    """`serve(respond) -> Server`: answers every request with `respond(handler, server)`."""
    running = []

    def start(respond) -> Server:
        state = Server("")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                state.seen.append((self.command, parts.path, dict(self.headers), body))
                try:
                    respond(self, state)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = answer

            def log_message(self, *args):
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address):
                pass

        server = Quiet(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        running.append(server)
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        return state

    yield start
    for server in running:
        server.shutdown()
        server.server_close()


def client(server, retries=1, timeout=1.0, **changes):
    policy = RetryPolicy(max_retries=retries, backoff_base=0.001, backoff_cap=0.01, **changes)
    return EasemobClient(server.url, "o", "a", "id", SECRET, timeout=timeout, retry=policy)


def api(respond_to_api, token=send_token):
    """A server whose token endpoint behaves, and whose other routes answer as told."""

    def respond(handler, server):
        if handler.path.endswith("/token"):
            token(handler)
        else:
            respond_to_api(handler, server)

    return respond


# -- 1. bodies that trickle ------------------------------------------------------------------


def test_a_trickled_token_answer_fails_each_attempt_after_about_the_timeout(serve):
    server = serve(lambda handler, _: trickle(handler))
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        client(server).legacy_page("select *", 10)
    assert time.monotonic() - started < 4
    assert str(caught.value).startswith(
        f"POST {server.url}/o/a/token failed after 2 attempts (the body came slower than 1 KiB/s"
    )
    assert server.paths() == ["/o/a/token"] * 2


def test_a_trickled_attachment_fails_and_is_retried_without_keeping_its_bytes(serve):
    server = serve(api(lambda handler, _: trickle(handler)))
    starts = []

    def restart():
        starts.append([])
        return starts[-1].append

    started = time.monotonic()
    with pytest.raises(SourceError, match=r"failed after 2 attempts \(the body came slower"):
        client(server).stream_attachment("https://a1.easemob.com/o/a/chatfiles/f1", "s", restart)
    assert time.monotonic() - started < 4
    assert len(starts) == 2


# -- 2. bodies that never end, or explode ----------------------------------------------------


def test_an_endless_api_answer_is_refused_at_the_cap_and_not_retried(serve):
    server = serve(api(lambda handler, _: stream(handler, 80 * easemob.MIB)))
    with pytest.raises(SourceError) as caught:
        client(server).hour_file_url("2026110100")
    assert str(caught.value) == (
        f"GET {server.url}/o/a/chatmessages/2026110100 sent more than the 64 MiB a real answer "
        "holds; stopped reading it"
    )
    assert server.paths().count("/o/a/chatmessages/2026110100") == 1


def test_a_content_encoding_bomb_is_counted_as_decoded_and_identity_is_asked_for(serve):
    bomb = gzip.compress(b"\0" * (100 * easemob.MIB), compresslevel=9)
    server = serve(api(lambda handler, _: send(handler, 200, bomb, {"Content-Encoding": "gzip"})))
    with pytest.raises(SourceError, match=r"chatmessages sent more than the 64 MiB"):
        client(server).legacy_page("select *", 10)
    assert all(headers.get("Accept-Encoding") == "identity" for _, _, headers, _ in server.seen)


def test_a_declared_oversized_hour_file_is_refused_before_it_is_read(serve, monkeypatch):
    monkeypatch.setattr(easemob, "HOUR_FILE_LIMIT", 1000)

    def respond(handler, server):
        handler.send_response(200)
        handler.send_header("Content-Length", "5000")
        handler.end_headers()
        handler.wfile.write(b"x" * 5000)

    server = serve(respond)
    with pytest.raises(SourceError, match=r"announced 5,000 bytes, more than"):
        client(server).download(f"{server.url}/files/2026110100.gz?Signature=abc")


def attachment_record(*names):
    bodies = [
        {"type": "file", "url": f"https://a1.easemob.com/o/a/chatfiles/{name}", "secret": "sh"}
        for name in names
    ]
    return {
        "msg_id": "1",
        "timestamp": HOUR.start_ms + 1,
        "from": "u1",
        "to": "u2",
        "chat_type": "chat",
        "payload": {"bodies": bodies},
    }


def attachment_processor(tmp_path, monkeypatch, server, record):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "2026110100.jsonl").write_bytes(orjson.dumps(record) + b"\n")
    processor = run_support.stage_processor(
        tmp_path, monkeypatch, LocalFileSource([tmp_path / "in"])
    )
    connection = ConnectionSettings(
        server.url, "o", "a", "c", SECRET, timeout=1.0, max_retries=0, attachment_downloads=2
    )
    processor.client = easemob.EasemobClient(
        server.url, "o", "a", "c", SECRET, timeout=1.0, retry=connection.retry_policy()
    )
    return processor


def references(tmp_path):
    attempt = stages.read_outcome(tmp_path / "spool", HOUR).attempt
    (line,) = (
        stages.spool_paths(tmp_path / "spool", HOUR, attempt)["records"].read_bytes().splitlines()
    )
    return {ref["url"].rsplit("/", 1)[1]: ref for ref in json.loads(line.split(b"\t")[0])[6]}


def test_attachments_are_streamed_to_the_store_and_one_past_the_cap_is_a_finding(
    serve, tmp_path, monkeypatch
):
    monkeypatch.setattr(easemob, "ATTACHMENT_LIMIT", 8 * easemob.MIB)
    sizes = {"small": 5, "large": 6 * easemob.MIB, "endless": 1 << 40}

    def respond(handler, server):
        if handler.path.endswith("/token"):
            send_token(handler)
        elif handler.path.endswith("/small"):
            send(handler, 200, b"hello")
        else:
            stream(handler, sizes[handler.path.rsplit("/", 1)[1]])

    server = serve(respond)
    processor = attachment_processor(
        tmp_path, monkeypatch, server, attachment_record("small", "large", "endless")
    )
    tracemalloc.start()
    try:
        processor.process(HOUR)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        processor.close()

    found = references(tmp_path)
    large = hashlib.sha256(b"\0" * sizes["large"]).hexdigest()
    assert found["small"]["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert found["small"]["size"] == 5
    assert found["large"]["sha256"] == large and found["large"]["size"] == sizes["large"]
    assert found["endless"]["error"] == (
        f"GET {server.url}/o/a/chatfiles/endless sent more than the 8 MiB a real answer holds; "
        "stopped reading it"
    )
    store = tmp_path / "spool" / "attachments"
    assert sorted(path.name for path in store.iterdir()) == sorted(
        [large, found["small"]["sha256"]]
    )
    assert (store / large).stat().st_size == sizes["large"]
    assert peak < 3 * easemob.MIB  # the 6 MiB file (and the 8 MiB cut short) never whole


# -- 3. secrets that a server echoes ---------------------------------------------------------


def test_a_5xx_echoing_the_client_secret_is_redacted(serve, caplog):
    server = serve(lambda handler, _: send_json(handler, 500, {"error": f"bad secret {SECRET}"}))
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as caught:
        client(server).legacy_page("select *", 10)
    assert SECRET not in str(caught.value) and SECRET not in caplog.text
    assert "(HTTP 500 bad secret <redacted>)" in str(caught.value)


@pytest.mark.parametrize(
    "status, body",
    [
        (400, {"error": "illegal_argument", "error_description": f"token Bearer {TOKEN} no"}),
        (418, f"<html>Bearer {TOKEN}</html>"),
    ],
)
def test_an_answer_echoing_the_token_is_redacted(serve, caplog, status, body):
    def respond(handler, server):
        if isinstance(body, str):
            send(handler, status, body.encode())
        else:
            send_json(handler, status, body)

    server = serve(api(respond))
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as caught:
        client(server).hour_file_url("2026110100")
    assert TOKEN not in str(caught.value) and TOKEN not in caplog.text
    assert "Bearer <redacted>" in str(caught.value)


def test_an_attachment_refusal_echoing_the_token_reaches_the_spool_redacted(
    serve, tmp_path, monkeypatch
):
    def respond(handler, server):
        echoed = handler.headers.get("Authorization")
        send_json(handler, 400, {"error": "illegal_argument", "error_description": echoed})

    server = serve(api(respond))
    processor = attachment_processor(tmp_path, monkeypatch, server, attachment_record("f1"))
    try:
        processor.process(HOUR)
    finally:
        processor.close()
    spooled = b"".join(path.read_bytes() for path in (tmp_path / "spool").glob("*.*"))
    assert TOKEN.encode() not in spooled
    assert references(tmp_path)["f1"]["error"].endswith(
        "was refused: HTTP 400 (illegal_argument: Bearer <redacted>)"
    )


@pytest.mark.parametrize("padding", [90, 110, 116, 150, 190, 195])
@pytest.mark.parametrize(
    ("status", "shape", "call"),
    [
        (500, "json", "legacy"),  # a retried answer's `error`, cut at 120 characters
        (400, "json", "hour"),  # a refusal's `error_description`, cut at 200
        (403, "text", "hour"),  # a refusal that is not JSON
    ],
)
def test_an_echo_cut_short_in_a_message_leaves_no_part_of_the_secret(
    serve, caplog, padding, status, shape, call
):
    """Messages were cut before the secrets were taken out, so a secret straddling the cut no
    longer matched, and its first part was shown (probe 18: 77 of a token's 84 characters)."""

    def respond(handler, server):
        said = "x" * padding + f"{SECRET} Bearer {TOKEN} end"
        if shape == "text":
            send(handler, status, said.encode())
        else:
            send_json(handler, status, {"error": said, "error_description": said})

    server = serve(api(respond))
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as caught:
        if call == "legacy":
            client(server).legacy_page("select *", 10)
        else:
            client(server).hour_file_url("2026110100")
    shown = str(caught.value) + caplog.text
    for secret in (SECRET, TOKEN):
        assert not any(secret[:n] in shown for n in range(6, len(secret) + 1)), shown


def test_a_file_server_echoing_the_share_secret_gets_it_redacted(serve, tmp_path, monkeypatch):
    """The share-secret is a file's credential: the finding about a refused download goes into
    the bag's findings and its report, which travel further than the records."""

    def respond(handler, server):
        echoed = handler.headers.get("share-secret")
        send_json(handler, 400, {"error": "illegal_argument", "error_description": echoed})

    server = serve(api(respond))
    record = attachment_record("f1")
    record["payload"]["bodies"][0]["secret"] = "share-SECRET-0123456789abcdef"
    processor = attachment_processor(tmp_path, monkeypatch, server, record)
    try:
        processor.process(HOUR)
    finally:
        processor.close()
    assert references(tmp_path)["f1"]["error"].endswith(
        "was refused: HTTP 400 (illegal_argument: <redacted>)"
    )


def test_credentials_in_logged_urls_are_redacted(serve, caplog):
    def respond(handler, server):
        send(handler, 200, b"data")

    server = serve(respond)
    signed = server.url.replace("//", "//admin:hunter2@") + "/f.gz?X-Token=LEAKME&Signature=SIG"
    # nginx secure_link and other signers name their credentials anything
    unnamed = server.url + "/g.gz?md5=MD5LEAK&expires=1&hmac=HMACLEAK"
    with caplog.at_level(logging.DEBUG):
        assert client(server).download(signed) == b"data"
        assert client(server).download(unnamed) == b"data"
    assert "hunter2" not in caplog.text and "LEAKME" not in caplog.text
    assert "SIG" not in caplog.text
    assert "MD5LEAK" not in caplog.text and "HMACLEAK" not in caplog.text
    assert "/g.gz?md5=<redacted>" in caplog.text


# -- 4. redirects ----------------------------------------------------------------------------


def test_a_redirected_token_request_is_an_error_and_the_secret_stays_home(serve):
    elsewhere = serve(lambda handler, _: send_json(handler, 200, {"access_token": "stolen"}))

    def respond(handler, server):
        send(handler, 307, b"", {"Location": f"{elsewhere.url}/o/a/token"})

    server = serve(respond)
    with pytest.raises(SourceError) as caught:
        client(server).legacy_page("select *", 10)
    assert str(caught.value) == (
        f"POST {server.url}/o/a/token was redirected (HTTP 307) to '{elsewhere.url}/o/a/token'; "
        "the Easemob API does not redirect (check --base-url)"
    )
    assert elsewhere.seen == []


def test_an_attachment_redirected_to_another_host_gets_no_credentials(serve):
    elsewhere = serve(lambda handler, _: send(handler, 200, b"the file"))
    server = serve(
        api(lambda handler, _: send(handler, 302, b"", {"Location": f"{elsewhere.url}/f"}))
    )
    data = client(server).download_attachment("https://a1.easemob.com/o/a/chatfiles/f1", "sh")
    assert data == b"the file"
    ((_, _, headers, _),) = elsewhere.seen
    assert "Authorization" not in headers and "share-secret" not in headers
    asked = [h for _, path, h, _ in server.seen if path == "/o/a/chatfiles/f1"]
    assert asked[0]["share-secret"] == "sh" and asked[0]["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/x", "http://127.0.0.1:99999/x"]
)
def test_a_redirect_of_a_download_to_an_unusable_url_is_a_source_error(serve, location):
    server = serve(lambda handler, _: send(handler, 302, b"", {"Location": location}))
    with pytest.raises(SourceError) as caught:
        client(server).download(f"{server.url}/f.gz?Signature=abc")
    assert str(caught.value) == (
        f"GET {server.url}/f.gz was redirected to {location!r}, which is not an absolute "
        "http(s) URL"
    )


def test_a_download_redirect_loop_stops_after_a_few_hops(serve):
    server = serve(lambda handler, _: send(handler, 302, b"", {"Location": handler.path}))
    with pytest.raises(SourceError, match=r"f\.gz was redirected more than 5 times"):
        client(server).download(f"{server.url}/f.gz")
    assert len(server.seen) == 6


# -- 5. bad URLs from the server are the server's fault (exit 3), the base URL the user's ----


def invoke(*args):
    env = {"EASEMOB_CLIENT_SECRET": SECRET, "EASEMOB_CLIENT_SECRET_FILE": None}
    env.update({name: None for name in ("EASEMOB_BASE_URL", "EASEMOB_ORG", "EASEMOB_APP")})
    return CliRunner().invoke(main, list(args), env=env)


def pull(server, tmp_path, *extra):
    return invoke(
        "pull", "--since", "2026-11-01T00:00Z", "--until", "2026-11-01T01:00Z",
        "--out", str(tmp_path / "out"), "--base-url", server.url, "--org", "o", "--app", "a",
        "--client-id", "id", "--retries", "0", "--timeout", "1", *extra,
    )  # fmt: skip


def one_error_line(result, code):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    return line.removeprefix("auditor: error: ")


@pytest.mark.parametrize(
    "link", ["/files/2026110100.gz", "file:///etc/passwd", "ftp://127.0.0.1/x.gz"]
)
def test_a_bad_download_url_from_the_server_exits_3_naming_it(serve, tmp_path, link):
    server = serve(api(lambda handler, _: send_json(handler, 200, {"data": [{"url": link}]})))
    line = one_error_line(pull(server, tmp_path), 3)
    assert line == (
        f"{server.url} handed out the URL {link!r}, which is not an absolute http(s) URL"
    )


def test_a_download_url_nobody_answers_is_blamed_on_the_server_that_gave_it(serve, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    link = f"http://127.0.0.1:{closed}/files/2026110100.gz?Signature=s3cr3t"
    server = serve(api(lambda handler, _: send_json(handler, 200, {"data": [{"url": link}]})))
    line = one_error_line(pull(server, tmp_path), 3)
    assert line.startswith(f"GET http://127.0.0.1:{closed}/files/2026110100.gz failed after ")
    assert line.endswith(f"; the URL came from {server.url}, which may have handed out a wrong one")
    assert "s3cr3t" not in line


def test_an_api_redirect_loop_exits_3_naming_where_it_went(serve, tmp_path):
    server = serve(api(lambda handler, _: send(handler, 302, b"", {"Location": handler.path})))
    line = one_error_line(pull(server, tmp_path), 3)
    assert line == (
        f"GET {server.url}/o/a/chatmessages/2026110100 was redirected (HTTP 302) to "
        "'/o/a/chatmessages/2026110100'; the Easemob API does not redirect (check --base-url)"
    )


def test_an_unusable_base_url_is_still_the_users_error(tmp_path):
    with pytest.raises(ConfigError, match="check --base-url"):
        EasemobClient("htp:/nowhere", "o", "a", "id", SECRET).legacy_page("select *", 1)


def test_a_header_requests_refuses_to_send_is_a_source_error_not_a_crash(serve):
    server = serve(api(lambda handler, _: send(handler, 200, b"x")))
    with pytest.raises(SourceError, match=r"could not be sent \(InvalidHeader\)"):
        client(server).download_attachment("https://h/o/a/chatfiles/f1", "bad\nsecret")


# -- 6. Retry-After ---------------------------------------------------------------------------


def test_retry_after_values_that_are_negative_past_or_unparsable_mean_the_normal_backoff():
    assert retry_after_seconds("-5") is None
    assert retry_after_seconds("Mon, 01 Jan 1990 00:00:00 GMT") is None
    assert retry_after_seconds("nan") is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("2.5") == 2.5
    assert RetryPolicy().delay(1, 1e9) == 60.0


def test_a_long_retry_after_is_capped_and_said_at_the_default_verbosity(serve, caplog, monkeypatch):
    monkeypatch.setattr(easemob, "LONG_WAIT", 0.2)
    answers = iter([(429, {"Retry-After": "1000000000"}), (200, {})])

    def respond(handler, server):
        status, headers = next(answers)
        send_json(handler, status, {"entities": []}, headers)

    server = serve(api(respond))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        client(server, retry_after_cap=0.3).legacy_page("select *", 10)
    assert 0.3 <= time.monotonic() - started < 2
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "the server asks to wait 1000000000 s, waiting 0 s (retry 1 of 1)" in warning.message


# -- 7. unread counts --------------------------------------------------------------------------


@pytest.mark.parametrize("count", ["²", "-5", -5, "3.5", 3.5, "٣"])
def test_an_unread_count_that_is_not_a_whole_number_exits_3_without_a_traceback(serve, count):
    server = serve(api(lambda handler, _: send_json(handler, 200, {"data": {"user1": count}})))
    result = invoke(
        "unread", "user1", "--base-url", server.url, "--org", "o", "--app", "a",
        "--client-id", "id", "--retries", "0", "--timeout", "1",
    )  # fmt: skip
    line = one_error_line(result, 3)
    assert line == (
        f"GET {server.url}/o/a/users/user1/offline_msg_count gave {count!r} as the offline "
        "message count of 'user1', not a whole number of 0 or more"
    )


def test_an_unread_count_of_ascii_digits_is_read(serve):
    server = serve(api(lambda handler, _: send_json(handler, 200, {"data": {"user1": "12"}})))
    assert client(server).offline_msg_count("user1") == 12


# -- 8. token lives ----------------------------------------------------------------------------


@pytest.mark.parametrize("expires_in", ["nan", "inf", "-inf"])
def test_a_non_finite_token_life_is_taken_as_absent(serve, caplog, expires_in):
    server = serve(
        api(
            lambda handler, _: send_json(handler, 200, {"entities": []}),
            token=lambda handler: send_token(handler, expires_in),
        )
    )
    with caplog.at_level(logging.DEBUG, logger="auditor.sources.easemob"):
        client(server).legacy_page("select *", 10)
    assert "got an app token for o/a, valid 0 s" in caplog.messages


def test_a_tiny_token_life_does_not_cost_a_token_per_call(serve):
    server = serve(
        api(
            lambda handler, _: send_json(handler, 200, {"entities": []}),
            token=lambda handler: send_token(handler, 0.001),
        )
    )
    talker = client(server)
    for _ in range(5):
        talker.legacy_page("select *", 10)
        time.sleep(0.01)
    assert server.paths().count("/o/a/token") == 1


@pytest.mark.parametrize("token", ["tok\u00e9n-\u4e2d", "two words", "tab\there"])
def test_a_token_no_header_can_carry_is_a_source_error_not_an_internal_one(serve, token):
    """requests failed to encode it into the header: exit 70, a bug, where the server is at fault
    (probe 18)."""

    def issue(handler, expires_in=3600):
        send_json(handler, 200, {"access_token": token, "expires_in": expires_in})

    server = serve(api(lambda handler, server: send_json(handler, 200, {}), token=issue))
    with pytest.raises(SourceError, match="access_token is not printable ASCII"):
        client(server).hour_file_url("2026110100")


def test_a_base_url_with_a_password_is_refused_without_showing_it():
    """requests would send it as Basic auth in place of the app's token, and the run then
    failed with "refused a token it had just issued" (probe 18)."""
    with pytest.raises(ConfigError) as refused:
        load_settings(
            {"base_url": "https://admin:hunter2@a1.easemob.com", "org": "o", "app": "a"},
            environ={"EASEMOB_CLIENT_ID": "c", "EASEMOB_CLIENT_SECRET": "s"},
        )
    assert "hunter2" not in str(refused.value)
    assert "holds a user name or password" in str(refused.value)
