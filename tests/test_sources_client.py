"""The client's defences against a misbehaving server, shown with scripted answers on loopback.

The emulator plays a well-behaved Easemob with faults; these cases need a server that loops, never
answers JSON, asks to wait, or refuses every token, so a few lines of `http.server` play it.
"""

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from auditor.errors import SourceError
from auditor.partitions import Partition
from auditor.sources.easemob import EasemobClient, RetryPolicy
from auditor.sources.legacy import LegacyQuerySource
from auditor.sources.tokens import TokenCache, renewal_time

HOUR = Partition(1_793_491_200_000)
TOKEN = (200, {}, orjson.dumps({"access_token": "YWMtabc", "expires_in": 3600}))


@contextlib.contextmanager
def scripted(answer):
    """Serves `answer(method, path, query) -> (status, headers, body)`; yields (url, requests)."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            seen.append((self.command, parts.path, parse_qs(parts.query)))
            status, headers, body = answer(self.command, parts.path, parse_qs(parts.query))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = reply

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def client(url, retries=2):
    policy = RetryPolicy(max_retries=retries, backoff_base=0.001, backoff_cap=0.01)
    return EasemobClient(url, "o", "a", "id", "secret", retry=policy)


def page(entities, cursor=None):
    body = {"entities": entities, "count": len(entities)}
    if cursor is not None:
        body["cursor"] = cursor
    return (200, {}, orjson.dumps(body))


def test_a_cursor_seen_before_stops_the_pull_instead_of_looping():
    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else page([{"msg_id": "1"}], "MTox+/=")

    with scripted(answer) as (url, seen), pytest.raises(SourceError) as caught:
        list(LegacyQuerySource(client(url)).served(HOUR))
    assert str(caught.value) == (
        f"{url}/o/a/chatmessages returned cursor 'MTox+/=' again on page 2 of the hour "
        "2026-11-01T00:00:00Z; the server is looping"
    )
    assert seen[-1][2]["cursor"] == ["MTox+/="]


def test_fresh_cursors_over_the_same_page_stop_the_pull_after_three_pages_that_add_nothing():
    """A server that hands out a new cursor with the same page each time paged 1,858 times in
    90 s before this check; only the 100,000-page limit would have ended it."""
    cursors = (f"c{number}" for number in range(1, 1000))

    def answer(method, path, query):
        if path.endswith("/token"):
            return TOKEN
        return page([{"msg_id": "1"}, {"msg_id": "2"}], next(cursors))

    with scripted(answer) as (url, seen), pytest.raises(SourceError) as caught:
        list(LegacyQuerySource(client(url)).served(HOUR))
    assert str(caught.value) == (
        f"{url}/o/a/chatmessages returned 3 pages in a row with no message not served before "
        "on page 4 of the hour 2026-11-01T00:00:00Z; the server is looping"
    )
    assert sum(path.endswith("/chatmessages") for _, path, _ in seen) == 4


def test_empty_pages_and_repeated_messages_among_new_ones_are_not_taken_for_a_loop():
    pages = iter(
        [page([], f"e{number}") for number in range(5)]
        + [page([{"msg_id": "1"}], "a"), page([{"msg_id": "1"}, {"msg_id": "2"}], "b")]
        + [page([{"msg_id": "2"}], "c"), page([{"msg_id": "1"}], "d"), page([{"msg_id": "3"}])]
    )

    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else next(pages)

    with scripted(answer) as (url, _seen):
        records = list(LegacyQuerySource(client(url)).served(HOUR))
    assert [record["msg_id"] for record in records] == ["1", "1", "2", "2", "1", "3"]


def test_a_cursor_that_is_not_text_is_named_as_such():
    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else page([{"msg_id": "1"}], 12345)

    with scripted(answer) as (url, _seen), pytest.raises(SourceError) as caught:
        list(LegacyQuerySource(client(url)).served(HOUR))
    assert str(caught.value) == (
        f"{url}/o/a/chatmessages returned a cursor that is not text ('12345') on page 1 of the "
        "hour 2026-11-01T00:00:00Z"
    )


def test_paging_goes_on_past_short_and_empty_pages_until_the_cursor_is_absent():
    pages = iter([page([], "c1"), page([{"msg_id": "1"}], "c2"), page([{"msg_id": "2"}])])

    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else next(pages)

    with scripted(answer) as (url, seen):
        records = list(LegacyQuerySource(client(url)).served(HOUR))
    assert records == [{"msg_id": "1"}, {"msg_id": "2"}]
    asked = [query for _, path, query in seen if path.endswith("/chatmessages")]
    assert asked[0] == {
        "ql": ["select * where timestamp>1793491199999 and timestamp<1793494800000"],
        "limit": ["1000"],
    }
    assert [query.get("cursor") for query in asked] == [None, ["c1"], ["c2"]]


def test_a_page_that_is_never_json_fails_after_the_retries():
    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else (200, {}, b"<html>busy</html>")

    with scripted(answer) as (url, _), pytest.raises(SourceError) as caught:
        list(LegacyQuerySource(client(url)).served(HOUR))
    assert str(caught.value).startswith(
        f"GET {url}/o/a/chatmessages failed after 3 attempts (the answer was not JSON)"
    )


def test_a_page_whose_entity_names_a_key_twice_fails_rather_than_keep_one_reading():
    page = b'{"entities":[{"msg_id":"1","timestamp":1793491200001,"msg_id":"2"}],"count":1}'

    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else (200, {}, page)

    with scripted(answer) as (url, _), pytest.raises(SourceError) as caught:
        list(LegacyQuerySource(client(url)).served(HOUR))
    assert str(caught.value).startswith(
        f"GET {url}/o/a/chatmessages failed after 3 attempts (the answer was ambiguous JSON: "
        'an object names the key "msg_id" more than once)'
    )


def test_retry_after_is_honoured():
    answers = iter([(503, {"Retry-After": "0.4"}, b"{}"), page([])])

    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else next(answers)

    with scripted(answer) as (url, _):
        started = time.monotonic()
        client(url).legacy_page("select *", 10)
        assert time.monotonic() - started >= 0.4


def test_a_token_refused_right_after_renewal_is_an_error_not_a_loop():
    refusal = (401, {}, orjson.dumps({"error": "unauthorized"}))

    def answer(method, path, query):
        return TOKEN if path.endswith("/token") else refusal

    with scripted(answer) as (url, seen), pytest.raises(SourceError) as caught:
        client(url).legacy_page("select *", 10)
    assert str(caught.value) == f"{url} refused a token it had just issued for o/a (unauthorized)"
    assert [path for _, path, _ in seen].count("/o/a/token") == 2


def test_a_token_is_renewed_at_half_its_life_and_not_before():
    now = [100.0]
    fetched = []

    def fetch():
        fetched.append(now[0])
        return f"YWMt{len(fetched)}", 3600

    cache = TokenCache(fetch, clock=lambda: now[0])
    first = cache.current()
    now[0] += 1799
    assert cache.current() == first
    now[0] += 1
    assert cache.current() == "YWMt2"
    assert fetched == [100.0, 1900.0]
    assert renewal_time(100.0, 0) is None
