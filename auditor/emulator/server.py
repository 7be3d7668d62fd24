"""The Easemob-compatible HTTP server: routes, bearer auth, Usergrid error bodies, faults.

`run_emulator(EmulatorOptions(...))` starts a `ThreadingHTTPServer` on loopback in a thread and
yields an `Emulator` handle: its `base_url`, the `history` it serves, a controllable `clock`,
`expected_records()` (the ground truth a complete pull must equal) and `stats`. What each route
answers follows `shared/reference/easemob-api-notes.md`; where the notes only infer (OSS errors
of an expired URL, the 400 of a bad cursor) the emulator does the plausible thing and says so.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import multiprocessing
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import orjson

from auditor.emulator.dataset import DEFAULT_SEED, DEFAULT_START_MS, SyntheticHistory
from auditor.emulator.faults import RateLimit, RecordFaults, RequestFaults, chance, mix
from auditor.emulator.feed import SHIFTING, Feed, shifted
from auditor.emulator.hostile import HostilePager, parse_spec
from auditor.emulator.legacy import MAX_LIMIT, CursorError, LegacyPager
from auditor.emulator.ql import QlError, parse_ql
from auditor.emulator.responses import (
    GARBAGE,
    GATEWAY_PAGES,
    Response,
    duration,
    jackson_complaint,
    json_response,
    oss_error,
    usergrid_error,
)
from auditor.emulator.tokens import Clock, TokenState, TokenStore
from auditor.partitions import HOUR_MS, Partition, parse_hour_timezone

logger = logging.getLogger(__name__)

MAX_TOKEN_BODY = 5 * 1024

_HOUR_LABEL = re.compile(r"\d{10}")


@dataclass(frozen=True)
class EmulatorOptions:
    """Everything that shapes the emulator: its history, identity, time, and faults (shares 0-1)."""

    seed: int = DEFAULT_SEED
    messages: int = 10_000
    days: int = 1
    start_ms: int = DEFAULT_START_MS
    org: str = "demo-org"
    app: str = "demo-app"
    client_id: str = "demo-client"
    client_secret: str = field(default="demo-secret", repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    hour_timezone: str = "UTC"
    token_ttl: int | None = None
    token_expire_early: float | None = None
    token_requests: int | None = None  # a token dies once this many requests presented it
    url_ttl: int = 1800
    ready_delay_hours: float = 2
    retention_days: float | None = None
    clock_start: float | None = None
    file_host: str = "https://a1.easemob.com"
    fail_rate: float = 0.0
    chatfile_fail_rate: float = 0.0
    rate_limit_rate: float = 0.0
    hour_file_limit: int = 0  # Easemob allows 10 hour-file requests a minute; 0 is no limit
    hour_file_window: float = 60.0
    legacy_503_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.5
    duplicate_rate: float = 0.0
    conflict_rate: float = 0.0
    late_rate: float = 0.0
    mangled_rate: float = 0.0
    resent_rate: float = 0.0  # edits re-sent an hour later under their msg_id (`resent_version`)
    shifting_rate: float = 0.0  # hours whose file differs on every download (`feed.shifted`)
    shifting_looks: int = 0  # downloads of a shifting hour that differ, then whole (0: all)
    truncate_rate: float = 0.0
    garbage_rate: float = 0.0
    short_page_rate: float = 0.0
    max_consecutive_faults: int = 2
    msg_id_order: str = "ordered"  # see dataset.MSG_ID_ORDERS
    # shares of the history's records planted with a schema defect, a keyword term, PII
    defect_rate: float = 0.02
    keyword_rate: float = 0.06
    pii_rate: float = 0.04
    legacy_hostile: str = ""  # a `hostile.parse_spec` text: legacy pages that lie


class EmulatorStats:
    """Counters a test reads: requests by (route, status), faults by kind, downloads by hour,
    and the most requests of each route served at once."""

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.faults: Counter[str] = Counter()
        self.downloads: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()
        self.started = 0

    @property
    def tokens_issued(self) -> int:
        return self._tokens.issued

    def count(self, counter: Counter, key: Any) -> None:
        with self._lock:
            counter[key] += 1

    @contextlib.contextmanager
    def serving(self, route: str) -> Iterator[None]:
        """Counts a request of `route` in flight, so a test sees how many a client overlaps."""
        with self._lock:
            self.started += 1
            self._in_flight[route] += 1
            self.peak_in_flight[route] = max(self.peak_in_flight[route], self._in_flight[route])
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[route] -= 1

    def in_flight(self) -> int:
        """Requests being served now: one still under way after its client died was not waited
        for. `started` counts them all, so a test tells those begun after it changed options."""
        with self._lock:
            return sum(self._in_flight.values())

    def by_route(self, route: str) -> dict[int, int]:
        """Status -> count for one route (`token`, `hour`, `file`, `legacy`, ...)."""
        with self._lock:
            return {status: n for (name, status), n in self.requests.items() if name == route}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {
                    f"{route} {status}": n for (route, status), n in self.requests.items()
                },
                "faults": dict(self.faults),
                "downloads": dict(self.downloads),
                "peak_in_flight": dict(self.peak_in_flight),
                "tokens_issued": self.tokens_issued,
            }


class Emulator:
    """The state behind the server; `run_emulator` starts and stops it."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.clock = Clock(options.clock_start)
        self.history = SyntheticHistory(
            seed=options.seed,
            messages=options.messages,
            days=options.days,
            start_ms=options.start_ms,
            org=options.org,
            app=options.app,
            file_host=options.file_host,
            msg_id_order=options.msg_id_order,
            defect_rate=options.defect_rate,
            keyword_rate=options.keyword_rate,
            pii_rate=options.pii_rate,
        )
        self.timezone = parse_hour_timezone(options.hour_timezone)
        self.tokens = TokenStore(
            self.clock, options.token_ttl, options.token_expire_early, options.token_requests
        )
        record_faults = RecordFaults(
            options.seed,
            options.duplicate_rate,
            options.conflict_rate,
            options.late_rate,
            options.mangled_rate,
            options.resent_rate,
        )
        self.feed = Feed(self.history, record_faults)
        self.pager: LegacyPager | HostilePager = LegacyPager(
            self.feed, options.seed, options.duplicate_rate, options.short_page_rate
        )
        if options.legacy_hostile:
            self.pager = HostilePager(self.pager, parse_spec(options.legacy_hostile))
        self.faults = RequestFaults(
            options.seed,
            {
                "slow": options.slow_rate,
                "fail": options.fail_rate,
                "chatfile_fail": options.chatfile_fail_rate,
                "rate_limit": options.rate_limit_rate,
                "legacy_503": options.legacy_503_rate,
                "garbage": options.garbage_rate,
                "truncate": options.truncate_rate,
            },
            options.max_consecutive_faults,
        )
        self.stats = EmulatorStats(self.tokens)
        self.hour_file_limit = RateLimit(options.hour_file_limit, options.hour_file_window)
        self.application = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"easemob:{options.org}#{options.app}")
        )
        self.base_url = ""
        self._url_key = os.urandom(20)
        self._access_key_id = "LTAI" + hashlib.sha256(self._url_key).hexdigest()[:12]
        self._users = frozenset(self.history.users())
        self._served_hours: set[int] = set()
        self._downloads: dict[int, int] = {}  # downloads of each hour, for `shifting_rate`
        self._served_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        server_class = _Server6 if ":" in self.options.host else _Server
        self._server = server_class((self.options.host, self.options.port), self)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.drop_connections()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def warm(self, workers: int | None = None) -> int:
        """Builds every hour file of the history ahead of time, in `workers` processes.

        Generating records is the slow part of a first download (about 30,000 records/s a
        core); warming keeps it out of a benchmark of the client. Returns the hours built.
        """
        hours = [
            start
            for start in range(self.history.start_ms, self.history.end_ms, HOUR_MS)
            if self.history.index_range(start, start + HOUR_MS) and not self.feed.has(start)
        ]
        workers = max(1, min(workers or os.cpu_count() or 1, len(hours)))
        if workers == 1:
            for start in hours:
                self.feed.store(start, self.feed.build(start))
            return len(hours)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for start, built in zip(
                hours, pool.map(_build_hour, [self.options] * len(hours), hours), strict=True
            ):
                self.feed.store(start, built)
        return len(hours)

    # -- ground truth --------------------------------------------------------------------------

    def expected_records(self, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        """The distinct records of `[since_ms, until_ms)` a complete, deduplicated pull holds."""
        return list(self.feed.expected(since_ms, until_ms))

    def hour_label(self, start_ms: int) -> str:
        """How this server names the hour starting at `start_ms` (UTC ms) in its URLs."""
        return Partition(start_ms).label(self.timezone)

    # -- requests ------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Message, body: bytes) -> Response:
        """Answers one request; never raises."""
        started = time.perf_counter()
        route = "unknown"
        try:
            route, response = self._answer(method, target, headers, body, started)
        except Exception:
            logger.exception("emulator failed on %s %s", method, urlsplit(target).path)
            response = self._error(500, "internal_server_error", "internal error", started)
        self.stats.count(self.stats.requests, (route, response.status))
        return response

    def _answer(
        self, method: str, target: str, headers: Message, body: bytes, started: float
    ) -> tuple[str, Response]:
        parts = urlsplit(target)
        segments = [unquote(segment) for segment in parts.path.split("/") if segment]
        route, methods, args = _route(segments)
        with self.stats.serving(route):
            if route == "unknown":
                return route, self._error(
                    500, "web_application", "javax.ws.rs.WebApplicationException", started
                )
            if route not in ("token", "file"):
                self.tokens.present(headers.get("Authorization"))
            fault_key = f"{method} {parts.path}" + ("" if route == "file" else f"?{parts.query}")
            fault = self.faults.decide(fault_key, _APPLICABLE[route])
            if fault:
                self.stats.count(self.stats.faults, fault)
                if fault == "slow":
                    time.sleep(self.options.slow_seconds)
                elif fault != "truncate":
                    return route, self._fault(fault, started)
            if route == "file":
                if method != "GET":
                    return route, oss_error(
                        405, "MethodNotAllowed", "The method is not allowed.", self.clock.now_ms()
                    )
                return route, self._download(*args, query=parts.query, truncate=fault == "truncate")
            org, app = segments[0], segments[1]
            if (org, app) != (self.options.org, self.options.app):
                return route, self._error(
                    404,
                    "organization_application_not_found",
                    f"Could not find application for {org}/{app} from URI: {'/'.join(segments)}",
                    started,
                )
            if method not in methods:
                return route, self._error(
                    500, "unsupported_service_operation", "Service operation not supported", started
                )
            if route == "token":
                return route, self._token(body, started)
            denied = self._authenticate(headers.get("Authorization"), started)
            if denied is not None:
                return route, denied
            if route == "hour":
                if self.hour_file_limit.refuses():
                    return route, self._fault("rate_limit", started)
                return route, self._hour(args[0], started)
            if route == "legacy":
                return route, self._legacy(parts.query, started)
            if route == "offline":
                return route, self._offline(args[0], parts.path, started)
            return route, self._chatfile(args[0], headers.get("share-secret"), started)

    def _authenticate(self, authorization: str | None, started: float) -> Response | None:
        state = self.tokens.check(authorization)
        if state is TokenState.VALID:
            return None
        if state is TokenState.MISSING:
            return self._error(401, "unauthorized", "Unable to authenticate (OAuth)", started)
        if state is TokenState.EXPIRED:
            return self._error(
                401, "unauthorized", "Unable to authenticate due to expired access token", started
            )
        if state is TokenState.CORRUPT:
            return self._error(
                401,
                "auth_bad_access_token",
                "Unable to authenticate due to corrupt access token",
                started,
            )
        return self._error(401, "auth_bad_access_token", "Unable to authenticate", started)

    # -- routes --------------------------------------------------------------------------------

    def _token(self, body: bytes, started: float) -> Response:
        if len(body) > MAX_TOKEN_BODY:
            return self._error(413, "request_entity_too_large", "Request Entity Too Large", started)
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return self._error(400, "json_parse", jackson_complaint(body), started)
        if not isinstance(request, dict):
            return self._error(400, "json_parse", "token request must be a JSON object", started)
        if request.get("grant_type") != "client_credentials":
            return self._error(
                400, "invalid_grant", "grant_type must be client_credentials", started
            )
        if not _same(request.get("client_id"), self.options.client_id):
            return self._error(400, "invalid_grant", "client_id does not match", started)
        if not _same(request.get("client_secret"), self.options.client_secret):
            return self._error(400, "invalid_grant", "client_secret does not match", started)
        ttl = request.get("ttl")
        if ttl is not None:
            text = str(ttl).strip()
            if isinstance(ttl, bool) or not (text.isascii() and text.isdigit()):
                return self._error(
                    400, "illegal_argument", f"ttl {ttl!r} is not a number of seconds", started
                )
            ttl = int(text)
        token, expires_in = self.tokens.issue(ttl)
        return json_response(
            200, {"access_token": token, "expires_in": expires_in, "application": self.application}
        )

    def _hour(self, label: str, started: float) -> Response:
        start = self._hour_start(label)
        if start is None:
            return self._error(
                400, "illegal_argument", "This chatmessage request is not supported", started
            )
        appkey = f"{self.options.org}#{self.options.app}"
        now = self.clock.now_ms()
        ready_at = start + HOUR_MS + int(self.options.ready_delay_hours * HOUR_MS)
        retained = self.options.retention_days is None or (
            start + HOUR_MS > now - self.options.retention_days * 24 * HOUR_MS
        )
        if now < ready_at or start < self.history.start_ms or not retained:
            return self._error(
                400,
                "illegal_argument",
                f"illegal arguments: appkey: {appkey}, time: {label}, "
                "maybe chat message history is expired or unstored",
                started,
            )
        if not self.history.index_range(start, start + HOUR_MS) or self._empty_first_look(start):
            return self._error(
                404,
                "storage_object_not_found",
                f"Failed to find chat message history download url for appkey: {appkey}, "
                f"time: {label}",
                started,
            )
        org, app = self.options.org, self.options.app
        return json_response(
            200,
            {
                "action": "get",
                "application": self.application,
                "uri": f"{self.base_url}/{org}/{app}/chatmessages/{label}",
                "data": [{"url": self._signed_url(label)}],
                "timestamp": now,
                "duration": duration(started),
                "organization": org,
                "applicationName": app,
            },
        )

    def _legacy(self, query_string: str, started: float) -> Response:
        params = parse_qs(query_string, keep_blank_values=True, errors="replace")
        try:
            query = parse_ql(params.get("ql", [""])[0])
        except QlError as error:
            return self._error(400, "illegal_argument", str(error), started)
        limit_text = params.get("limit", ["10"])[0].strip()
        if not re.fullmatch(r"[+-]?\d{1,9}", limit_text) or int(limit_text) < 1:
            return self._error(
                400, "illegal_argument", f"limit {limit_text!r} is not a positive number", started
            )
        try:
            page = self.pager.page(
                query, min(int(limit_text), MAX_LIMIT), params.get("cursor", [""])[0] or None
            )
        except CursorError as error:
            return self._error(400, "illegal_argument", str(error), started)
        org, app = self.options.org, self.options.app
        answer: dict[str, Any] = {
            "action": "get",
            "params": params,
            "path": "/chatmessages",
            "uri": f"{self.base_url}/{org}/{app}/chatmessages",
            "entities": page.entities,
            "timestamp": self.clock.now_ms(),
            "duration": duration(started),
            "count": len(page.entities) if page.count is None else page.count,
        }
        if page.cursor is not None:
            answer["cursor"] = page.cursor
        return json_response(200, answer)

    def _offline(self, user: str, path: str, started: float) -> Response:
        if user not in self._users:
            return self._error(
                404, "service_resource_not_found", "Service resource not found", started
            )
        count = mix(self.options.seed, int.from_bytes(user.encode()[-8:], "big")) % 20
        return json_response(
            200,
            {
                "action": "get",
                "uri": f"{self.base_url}{path}",
                "entities": [],
                "data": {user: count},
                "timestamp": self.clock.now_ms(),
                "duration": duration(started),
                "count": 0,
            },
        )

    def _chatfile(self, file_uuid: str, share_secret: str | None, started: float) -> Response:
        found = self.history.attachment(file_uuid)
        if found is None:
            return self._error(
                404, "service_resource_not_found", "Service resource not found", started
            )
        data, secret = found
        secret = self._advertised_secret(file_uuid, secret)
        if secret is not None and not _same(share_secret, secret):
            return self._error(
                401, "unauthorized", "share-secret is missing or does not match", started
            )
        return Response(200, data, "application/octet-stream")

    def _advertised_secret(self, file_uuid: str, secret: str) -> str | None:
        """The secret the referencing body shows: Easemob checks one only on restricted uploads.

        The history packs the record index, body position and thumb flag into the uuid; the
        round trip through `attachment_uuid` guards against reading that layout wrongly.
        """
        value = uuid.UUID(file_uuid).int
        index, position, thumb = (value >> 8) & 0xFF_FFFF_FFFF, (value >> 1) & 0x7F, bool(value & 1)
        if self.history.attachment_uuid(index, position, thumb) != file_uuid:
            return secret
        for body in self.history.record(index).get("payload", {}).get("bodies", []):
            if str(body.get("thumb" if thumb else "url", "")).endswith(file_uuid):
                return body.get("thumb_secret" if thumb else "secret")
        return secret

    def _download(self, org: str, app: str, name: str, query: str, truncate: bool) -> Response:
        params = parse_qs(query)
        expires = params.get("Expires", [""])[0]
        signature = params.get("Signature", [""])[0]
        resource = f"/history/{org}/{app}/{name}"
        now = self.clock.now_ms()
        if params.get("OSSAccessKeyId", [""])[0] != self._access_key_id or not (
            expires.isascii() and expires.isdigit()
        ):
            return oss_error(
                403, "AccessDenied", "AccessKeyId or Expires is missing or wrong.", now
            )
        if not _same(signature, self._signature(resource, int(expires))):
            return oss_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                now,
            )
        if now > int(expires) * 1000:
            return oss_error(403, "AccessDenied", "Request has expired.", now)
        label = name.removesuffix(".gz")
        start = self._hour_start(label)
        if (
            start is None
            or not self.history.index_range(start, start + HOUR_MS)
            or self._empty_first_look(start)
        ):
            return oss_error(404, "NoSuchKey", "The specified key does not exist.", now)
        with self._served_lock:
            first = start not in self._served_hours
            self._served_hours.add(start)
            look = self._downloads[start] = self._downloads.get(start, 0) + 1
        data = self.feed.hour_file(start, with_late=not first)
        shifting = self.options.shifting_looks
        if chance(self.options.shifting_rate, self.options.seed, SHIFTING, start) and (
            not shifting or look <= shifting
        ):
            data = shifted(data, look)
        self.stats.count(self.stats.downloads, label)
        if not truncate:
            return Response(200, data, "application/octet-stream")
        cut = max(1, int(len(data) * self.faults.draw((0.1, 0.5, 0.9))))
        if self.faults.draw((True, False)):
            return Response(200, data[:cut], "application/octet-stream")
        return Response(200, data, "application/octet-stream", cut_at=cut)

    # -- helpers -------------------------------------------------------------------------------

    def _empty_first_look(self, start: int) -> bool:
        """Whether this first look at the hour would find its file empty, every record in it
        arriving late: Easemob has no file for an hour without messages and answers 404. The
        look counts, so that a later one finds the late records."""
        if not self.feed.faults.any_late:
            return False
        indices = self.history.index_range(start, start + HOUR_MS)
        with self._served_lock:
            if start in self._served_hours:
                return False
            if all(self.feed.faults.late(index) for index in indices):
                self._served_hours.add(start)
                return True
        return False

    def _hour_start(self, label: str) -> int | None:
        if not _HOUR_LABEL.fullmatch(label):
            return None
        try:
            moment = datetime.strptime(label, "%Y%m%d%H").replace(tzinfo=self.timezone)
        except ValueError:
            return None
        return int(moment.timestamp()) * 1000

    def _signature(self, resource: str, expires: int) -> str:
        text = f"GET\n\n\n{expires}\n{resource}".encode()
        return base64.b64encode(hmac.new(self._url_key, text, "sha1").digest()).decode()

    def _signed_url(self, label: str) -> str:
        resource = f"/history/{self.options.org}/{self.options.app}/{label}.gz"
        expires = int(self.clock.now()) + self.options.url_ttl
        return (
            f"{self.base_url}/_files{quote(resource)}?Expires={expires}"
            f"&OSSAccessKeyId={self._access_key_id}"
            f"&Signature={quote(self._signature(resource, expires), safe='')}"
        )

    def _fault(self, fault: str, started: float) -> Response:
        if fault == "rate_limit":
            return self._error(429, "reach_limit", "This request has reached api limit", started)
        if fault == "legacy_503":
            return self._error(503, "reach_limit", "This request has reached api limit", started)
        if fault == "garbage":
            return Response(200, GARBAGE, "text/html;charset=UTF-8")
        status = self.faults.draw((500, 502, 503))
        if status == 500:
            return self._error(500, "internal_server_error", "java.lang.RuntimeException", started)
        return Response(status, GATEWAY_PAGES[status], "text/html")

    def _error(self, status: int, error: str, description: str, started: float) -> Response:
        return usergrid_error(status, error, description, self.clock.now_ms(), started)


_APPLICABLE = {
    "token": ("slow", "fail", "rate_limit", "garbage"),
    "hour": ("slow", "fail", "rate_limit", "garbage"),
    "legacy": ("slow", "fail", "rate_limit", "legacy_503", "garbage"),
    "offline": ("slow", "fail", "rate_limit", "garbage"),
    "chatfile": ("slow", "fail", "rate_limit", "chatfile_fail"),
    "file": ("slow", "fail", "truncate"),
}


_worker_feed: tuple[EmulatorOptions, Feed] | None = None


def _build_hour(options: EmulatorOptions, start_ms: int) -> dict[bool, bytes]:
    """One hour's files, built in a worker process that keeps its own `Feed` between calls."""
    global _worker_feed
    if _worker_feed is None or _worker_feed[0] != options:
        _worker_feed = (options, Emulator(options).feed)
    return _worker_feed[1].build(start_ms)


def _route(segments: list[str]) -> tuple[str, frozenset[str], tuple[str, ...]]:
    """Route name, the methods it accepts, and its path arguments."""
    get, post = frozenset({"GET"}), frozenset({"POST"})
    match segments:
        case ["_files", "history", org, app, name] if name.endswith(".gz"):
            return "file", get, (org, app, name)
        case [_, _, "token"]:
            return "token", post, ()
        case [_, _, "chatmessages"]:
            return "legacy", get, ()
        case [_, _, "chatmessages", label]:
            return "hour", get, (label,)
        case [_, _, "users", user, "offline_msg_count"]:
            return "offline", get, (user,)
        case [_, _, "chatfiles", file_uuid]:
            return "chatfile", get, (file_uuid,)
    return "unknown", frozenset(), ()


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        response = self.server.emulator.handle(self.command, self.path, self.headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        if response.cut_at is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        cut = response.cut_at
        self.wfile.write(response.body if cut is None else memoryview(response.body)[:cut])

    def version_string(self) -> str:
        return "nginx"

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is routine (a run stopped, a test done): one debug
        line, not socketserver's traceback on stderr, which lands in whatever captures it."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            logger.debug("%s hung up: %s", client_address[0], error)
        else:
            logger.error("error serving %s", client_address[0], exc_info=True)

    def drop_connections(self) -> None:
        """Closes kept-alive connections, so a stopped emulator answers nothing more."""
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Server6(_Server):
    address_family = socket.AF_INET6


@contextlib.contextmanager
def run_emulator(options: EmulatorOptions | None = None) -> Iterator[Emulator]:
    """Serves the emulator on loopback in a thread for the length of the `with` block."""
    emulator = Emulator(options or EmulatorOptions())
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def serve(
    options: EmulatorOptions,
    stop: threading.Event,
    on_ready: Callable[[Emulator], None] | None = None,
) -> Emulator:
    """Serves until `stop` is set (the CLI sets it on SIGTERM/SIGINT); returns the handle."""
    with run_emulator(options) as emulator:
        if on_ready is not None:
            on_ready(emulator)
        while not stop.wait(0.2):
            pass
    return emulator
