"""The Easemob REST client: app token, retries and error mapping for every call the auditor makes.

Every request goes through one loop (`_call`): 5xx, 429, timeouts, refused connections and broken
or stalled transfers are retried with exponential backoff and full jitter (honouring `Retry-After`
up to a minute, which Easemob does not send but a proxy might); a 401 renews the token and repeats
the call (again only after a retry spent, so never in a loop); what cannot be retried becomes one
`AuditorError` line naming the org, app and URL. The client secret and every token the client has
held are redacted from every message and log line it produces (`EasemobClient._redact`), whatever
a server echoes back.

A server is not trusted to end its answers: each body is read in pieces, under a size cap (a JSON
answer never nears `API_ANSWER_LIMIT`, an hour file `HOUR_FILE_LIMIT`, an attachment
`ATTACHMENT_LIMIT`) and a low-speed rule (`_read_body`). The token and API calls follow no
redirect (Easemob's REST API sends none, and a 307 would carry the client secret elsewhere); file
downloads follow a few, to http(s) only, and never carry credentials to another origin.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

import orjson
import requests
import urllib3

from auditor.errors import ConfigError, InputError, RetriesExhausted, SourceError
from auditor.jsonl import RepeatedKey, loads
from auditor.sources.interface import PartitionNotReady
from auditor.sources.pacing import Pacer
from auditor.sources.tokens import TokenCache

log = logging.getLogger(__name__)

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
# Caps on what one answer may hold: a token, an hour-file URL, a legacy page of 1,000 records or an
# unread count is a few MB at most, so 64 MiB means a broken or hostile server; hour files are a
# few hundred MB for the busiest apps; attachments are limited by Easemob to far less than 1 GiB.
API_ANSWER_LIMIT = 64 * MIB
HOUR_FILE_LIMIT = 1 * GIB
ATTACHMENT_LIMIT = 1 * GIB
# Of an answer that is refused anyway, only the start is read (for `error`/`error_description`).
REFUSAL_READ = 64 * KIB
# Of a refusal that is not JSON, the start taken as its description (redacted, then cut).
ERROR_BODY_READ = 4 * KIB
# The low-speed rule: a body that brings fewer bytes than this a second, averaged over a window
# of `timeout` seconds (at least one), fails the attempt, like curl's --speed-limit/--speed-time.
LOW_SPEED_BYTES = 1 * KIB
READ_CHUNK = 64 * KIB
# Redirects a file download follows (signed URLs may hop to a CDN); API calls follow none.
MAX_REDIRECTS = 5
# Headers that carry a credential and never go to an origin other than the one asked.
_CREDENTIAL_HEADERS = frozenset({"authorization", "share-secret"})

# Query parameters whose values are credentials in signed or pre-authorised URLs.
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&;][^=&;\s\"'?#]*(?:sig|signature|token|secret|pass|passwd|password|key|credential|"
    r"auth|session)[^=&;\s\"'?#]*=)[^&;\s\"'#]+"
)
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s\"'?#]+@")


def redact_url_text(text: str) -> str:
    """`text` with the userinfo of URLs and credential-looking query values (`Signature=`,
    `X-Token=`, `password=`, ...) replaced by `<redacted>`: for half an hour a signed URL is as
    good as a token for its file."""
    return _USERINFO.sub(r"\1<redacted>@", _SECRET_PARAMETER.sub(r"\1<redacted>", text))


# Any query value: a signed URL's credentials may be named anything (`md5=`, `hmac=`, `e=`).
_QUERY_VALUE = re.compile(r"([?&;][^=&;\s\"'?#]*=)[^&;\s\"'#]+")


class _RedactSignatures(logging.Filter):
    """Hides the userinfo and every query value of the URLs in urllib3's debug lines, which
    name each request: the auditor's own lines leave the query out altogether."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url_text(_QUERY_VALUE.sub(r"\1<redacted>", arg))
                if isinstance(arg, str)
                else arg
                for arg in record.args
            )
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactSignatures())

T = TypeVar("T")

_BROKEN_TRANSFER = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
_BAD_URL = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


class CursorRefused(SourceError):
    """A legacy page asked for with a cursor was refused (400): Usergrid cursors point into a
    query's result and may expire, so the pull goes on by timestamp instead."""


class UrlExpired(Exception):
    """A signed download URL was refused (403): ask the API for a fresh one."""


class _Retry(Exception):
    """An answer that may be right next time (not JSON, cut short, stalled): says why."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to repeat a failed call.

    Full jitter (a uniform draw below the exponential bound) keeps many clients that failed
    together from retrying together. A `Retry-After` is honoured up to `retry_after_cap`: a
    minute is what a rate limit asks in practice, and a server asking for more (a day, a date in
    2100) would otherwise hold a run for the length of all its retries.
    """

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 60.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1)))


# A wait a server asks for that is worth a WARNING line at the default verbosity.
LONG_WAIT = 10.0


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds, given as a number or an HTTP date; None when absent, unusable,
    negative or in the past (the caller then backs off as usual rather than retrying at once)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _beyond(digits: str, limit: int) -> bool:
    """Whether the ASCII digits `digits` count more than `limit`, however many they are: `int`
    raises ValueError past 4,300 digits, which a lying server's Content-Length reached."""
    digits = digits.lstrip("0")
    return len(digits) > len(str(limit)) or int(digits or "0") > limit


def _short_reason(error: Exception) -> str:
    """`Connection refused` rather than urllib3's paragraph about connection pools."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip()
    if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(
        error, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError
    ):
        return "transfer cut short"
    if isinstance(error, requests.exceptions.ContentDecodingError | urllib3.exceptions.DecodeError):
        return "the body did not decode as its Content-Encoding says"
    return type(error).__name__


@dataclass(frozen=True, slots=True)
class _Answer:
    """A response whose body was read (whole, or its start for a refusal; empty when it was
    streamed to a sink); `url` is the one that answered, after any redirect."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    authorized: bool


def _error_of(answer: _Answer) -> tuple[str, str]:
    """Easemob's (Usergrid's) `error` and `error_description`, or the start of a non-JSON body,
    uncut: a message cuts them only after `EasemobClient._redact`, since a secret cut in two
    no longer matches and its first part would be shown."""
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return "", answer.body[:ERROR_BODY_READ].decode("utf-8", "replace").strip()
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("error_description") or "")


# Instants a source's clock may plausibly state, in ms: 2000 to the year 9999. One outside them
# was given in other units (seconds, microseconds) or is garbage.
_PLAUSIBLE_MS = range(946_684_800_000, 253_402_300_800_000)


def _answered_ms(answer: _Answer) -> int | None:
    """The source's clock when it answered: the `timestamp` (ms) of a Usergrid body, if plausible.
    The source keeps hour files by its own clock, whatever this machine's says."""
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    stated = body.get("timestamp") if isinstance(body, dict) else None
    return stated if type(stated) is int and stated in _PLAUSIBLE_MS else None


def _json_object(answer: _Answer) -> dict[str, Any]:
    try:
        body = loads(answer.body)
    except RepeatedKey as error:
        raise _Retry(f"the answer was ambiguous JSON: {error}") from None
    except ValueError:
        raise _Retry("the answer was not JSON") from None
    if not isinstance(body, dict):
        raise _Retry("the answer was not a JSON object")
    return body


def _secret_refused(answer: _Answer) -> bool:
    """A 401 about an attachment's share-secret, which a new token would not fix."""
    return answer.status == 401 and "secret" in _error_of(answer)[1].lower()


def _token_refused(answer: _Answer) -> bool:
    return answer.status == 401 and not _secret_refused(answer)


def _without_query(url: str) -> str:
    """A URL without its query (a signature) or userinfo, fit for a log line or a message."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_url_text(url.split("?", 1)[0])
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _segment(value: str, what: str) -> str:
    """`value` as one segment of a URL path, every reserved character percent-encoded; `.` and
    `..` are refused, as clients (urllib3) and servers fold them away even when encoded."""
    if value in (".", ".."):
        raise ConfigError(
            f"{what} {value!r} cannot be named in a URL path (it is '.' or '..', which servers "
            "read as a step between folders)"
        )
    return quote(value, safe="")


def _served_url(url: str, what: str) -> str:
    """`url`, handed out by the server, when it is an absolute http(s) URL; else a SourceError:
    a bad URL from the server is the server's fault, not the configuration's."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 (raises on a port that is not a number below 65536)
    except ValueError:
        usable = False
    if not usable:
        raise SourceError(f"{what} {_without_query(url)!r}, which is not an absolute http(s) URL")
    return url


# Easemob's client secrets and tokens are dozens of characters long; a shorter one is a test value
# or a typo. Hidden inside words it would garble every message ("demo-<redacted>pp" for "a"), so it
# is hidden only where it stands alone, as a value a server echoes does.
_SHORT_SECRET = 8


def _secrets_pattern(secrets: tuple[str, ...]) -> str:
    """A regular expression matching any of `secrets`, longest first, so that a secret holding
    another is taken whole."""
    alternatives = []
    for secret in sorted(set(secrets), key=len, reverse=True):
        escaped = re.escape(secret)
        if len(secret) < _SHORT_SECRET:
            escaped = rf"(?<![0-9A-Za-z]){escaped}(?![0-9A-Za-z])"
        alternatives.append(escaped)
    return "|".join(alternatives)


def _size(limit: int) -> str:
    return f"{limit // GIB} GiB" if limit >= GIB and limit % GIB == 0 else f"{limit // MIB} MiB"


class EasemobClient:
    """One org/app of an Easemob REST cluster. Safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        org: str,
        app: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        token_ttl: int | None = None,
        hour_file_pacer: Pacer | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.hour_file_pacer = hour_file_pacer
        self.org = org
        self.app = app
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._client_id = client_id
        self._client_secret = client_secret
        # Everything to redact from messages: the client secret and every token held so far.
        # Replaced, never changed in place, so a thread reading it needs no lock.
        self._secrets: tuple[str, ...] = (client_secret,) if client_secret else ()
        self._token_ttl = token_ttl
        self._tokens = TokenCache(self._fetch_token)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EasemobClient({self.base_url!r}, org={self.org!r}, app={self.app!r})"

    @property
    def app_url(self) -> str:
        return f"{self.base_url}/{_segment(self.org, 'org')}/{_segment(self.app, 'app')}"

    # -- the calls ----------------------------------------------------------------------------

    def hour_file_url(self, label: str) -> str | None:
        """The signed download URL of an hour's file, or None when the hour has no messages."""
        url = f"{self.app_url}/chatmessages/{label}"

        def accept(answer: _Answer) -> str | None:
            if answer.status == 200:
                data = _json_object(answer).get("data")
                entry = data[0] if isinstance(data, list) and data else data
                link = entry.get("url") if isinstance(entry, dict) else None
                if not isinstance(link, str) or not link:
                    raise _Retry("the answer held no download URL")
                return link
            error, description = _error_of(answer)
            if answer.status == 404 and error == "storage_object_not_found":
                return None
            if answer.status == 400 and re.search(r"expired|unstored", description):
                detail = self._shown(description or error, 200)
                raise PartitionNotReady(label, detail, _answered_ms(answer))
            raise self._refusal(answer, "GET")

        pacer = self.hour_file_pacer
        return self._call("GET", url, accept, auth=True, pace=pacer.wait if pacer else None)

    def download(self, url: str) -> bytes:
        """The bytes behind a signed URL, fetched without the bearer token (like Easemob's SDK);
        at most `HOUR_FILE_LIMIT` of them."""
        chunks: list[bytes] = []

        def restart() -> Callable[[bytes], object]:
            chunks.clear()
            return chunks.append

        def accept(answer: _Answer) -> None:
            if answer.status == 200:
                return None
            if answer.status == 403:
                raise UrlExpired(_without_query(url))
            raise self._refusal(answer, "GET")

        self._call(
            "GET",
            url,
            accept,
            auth=False,
            plain=True,
            served=True,
            redirects=MAX_REDIRECTS,
            limit=HOUR_FILE_LIMIT,
            sink=restart,
        )
        return b"".join(chunks)

    def legacy_page(self, ql: str, limit: int, cursor: str | None = None) -> dict[str, Any]:
        """One page of the legacy `ql` query; requests URL-encodes `ql` and the cursor."""
        url = f"{self.app_url}/chatmessages"
        params = {"ql": ql, "limit": str(limit)}
        if cursor is not None:
            params["cursor"] = cursor

        def accept(answer: _Answer) -> dict[str, Any]:
            if answer.status == 200:
                page = _json_object(answer)
                entities = page.get("entities")
                if not isinstance(entities, list):
                    raise _Retry("the page held no list of entities")
                count = page.get("count")
                if type(count) is int and count != len(entities):
                    # Usergrid's count is the page's own length: a page that claims more rows
                    # than it holds may have lost some, and its cursor already skips them.
                    raise _Retry(f"the page said count {count} but held {len(entities)} entities")
                return page
            if answer.status == 400 and cursor is not None:
                raise CursorRefused(str(self._refusal(answer, "GET")))
            raise self._refusal(answer, "GET")

        return self._call("GET", url, accept, auth=True, params=params)

    def offline_msg_count(self, user: str) -> int:
        """How many messages wait for `user` while offline: a whole number of 0 or more, given
        as a JSON integer or a string of ASCII digits (Easemob sends the latter)."""
        url = f"{self.app_url}/users/{_segment(user, 'user')}/offline_msg_count"

        def accept(answer: _Answer) -> int:
            if answer.status == 200:
                data = _json_object(answer).get("data")
                if not isinstance(data, dict) or user not in data:
                    raise _Retry("the answer held no count for the user")
                value = data[user]
                if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value):
                    value = int(value)
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    shown = self._shown(repr(value), 40)
                    raise SourceError(
                        f"GET {url} gave {shown} as the offline message count of {user!r}, "
                        "not a whole number of 0 or more"
                    )
                return value
            error, _ = _error_of(answer)
            if answer.status == 404 and error == "service_resource_not_found":
                raise ConfigError(f"no user {user!r} in {self.org}/{self.app} at {self.base_url}")
            raise self._refusal(answer, "GET")

        return self._call("GET", url, accept, auth=True)

    def download_attachment(self, url: str, secret: str | None = None) -> bytes:
        """An attachment's bytes in memory (`stream_attachment` keeps them out of it)."""
        chunks: list[bytes] = []

        def restart() -> Callable[[bytes], object]:
            chunks.clear()
            return chunks.append

        self.stream_attachment(url, secret, restart)
        return b"".join(chunks)

    def stream_attachment(
        self, url: str, secret: str | None, restart: Callable[[], Callable[[bytes], object]]
    ) -> int:
        """Streams an attachment named in a record, fetched from the configured cluster, into the
        writer `restart()` returns (called again for each attempt, to start over); returns its
        size. More than `ATTACHMENT_LIMIT` bytes is a SourceError.

        Records name files on Easemob's public host (`https://a1.easemob.com/...`); the path from
        `/chatfiles/` on is what identifies the file, so it is fetched from `base_url` instead.
        """
        try:
            path = urlsplit(url).path
        except ValueError:
            path = ""
        at = path.find("/chatfiles/")
        if at < 0:
            raise InputError(f"{url} is not an Easemob attachment URL (no /chatfiles/ in it)")
        if any(unquote(step) in (".", "..") for step in path[at:].split("/")):
            raise InputError(f"{url} steps out of /chatfiles/ (a '.' or '..' in its path)")
        target = self.app_url + path[at:]
        headers = {"Accept": "application/octet-stream"}
        if secret:
            headers["share-secret"] = secret
        self._local.share_secret = secret  # `_redact` hides it from what this download says
        size = [0]

        def counting() -> Callable[[bytes], object]:
            write = restart()
            size[0] = 0

            def counted(chunk: bytes) -> object:
                size[0] += len(chunk)
                return write(chunk)

            return counted

        def accept(answer: _Answer) -> int:
            if answer.status == 200:
                return size[0]
            if _secret_refused(answer):
                raise SourceError(
                    f"GET {_without_query(answer.url)} refused the share-secret given for the file"
                )
            raise self._refusal(answer, "GET")

        return self._call(
            "GET",
            target,
            accept,
            auth=True,
            headers=headers,
            token_refused=_token_refused,
            redirects=MAX_REDIRECTS,
            limit=ATTACHMENT_LIMIT,
            sink=counting,
        )

    def close(self) -> None:
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    # -- the machinery ------------------------------------------------------------------------

    def _fetch_token(self) -> tuple[str, float]:
        url = f"{self.app_url}/token"
        body: dict[str, Any] = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self._token_ttl is not None:
            body["ttl"] = self._token_ttl

        def accept(answer: _Answer) -> tuple[str, float]:
            if answer.status == 200:
                found = _json_object(answer)
                token, expires_in = found.get("access_token"), found.get("expires_in", 0)
                if not isinstance(token, str) or not token:
                    raise _Retry("the token answer held no access_token")
                self._secrets = (*self._secrets, token)
                if not (token.isascii() and token.isprintable()) or " " in token:
                    # A header carries it as it is: anything else is no token of Easemob's.
                    raise _Retry("the token answer's access_token is not printable ASCII")
                try:
                    seconds = float(expires_in)
                except (TypeError, ValueError, OverflowError):
                    seconds = 0.0
                if not math.isfinite(seconds):  # "nan", "inf": as if absent
                    seconds = 0.0
                log.debug("got an app token for %s/%s, valid %.0f s", self.org, self.app, seconds)
                return token, seconds
            error, _ = _error_of(answer)
            if answer.status in (400, 401) and error in ("invalid_grant", "unauthorized"):
                raise ConfigError(
                    f"wrong client id or secret for {self.org}/{self.app} at {self.base_url}"
                    " (check --client-id and the client secret, from EASEMOB_CLIENT_SECRET,"
                    " EASEMOB_CLIENT_SECRET_FILE, or the config's client_secret_file, or an"
                    " app's client_secret_env under apps:)"
                )
            raise self._refusal(answer, "POST")

        return self._call("POST", url, accept, auth=False, json=body)

    def _session(self, plain: bool) -> requests.Session:
        name = "plain" if plain else "api"
        session = getattr(self._local, name, None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "*/*" if plain else "application/json"
            # Bodies are read as sent: a compressed answer could hide a bomb (and counting
            # decoded bytes against the caps still guards against a server that compresses
            # anyway).
            session.headers["Accept-Encoding"] = "identity"
            setattr(self._local, name, session)
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _redact(self, text: str) -> str:
        """`text` without the client secret, any token this client has held, or the credentials
        of a URL: the one place every message and log line of the client goes through.

        One pass over all secrets, so the marker put in is never searched again (a secret "a"
        made "<red<redacted>cted>" of it)."""
        secrets = self._secrets
        if share_secret := getattr(self._local, "share_secret", None):
            secrets = (*secrets, share_secret)
        pattern = _secrets_pattern(secrets)
        if pattern:
            text = re.sub(pattern, "<redacted>", text)
        return redact_url_text(text)

    def _shown(self, text: str, most: int = 200) -> str:
        """What a server said, redacted, then cut to `most` characters."""
        text = self._redact(text)
        return text if len(text) <= most else text[:most] + "..."

    def _call(self, method: str, url: str, accept: Callable[[_Answer], T], **options: Any) -> T:
        """`_attempts`, with the secrets taken out of whatever error leaves it."""
        try:
            return self._attempts(method, url, accept, **options)
        except Exception as error:
            error.args = tuple(
                self._redact(arg) if isinstance(arg, str) else arg for arg in error.args
            )
            raise

    def _attempts(
        self,
        method: str,
        url: str,
        accept: Callable[[_Answer], T],
        *,
        auth: bool,
        plain: bool = False,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        token_refused: Callable[[_Answer], bool] = lambda a: a.status == 401,
        pace: Callable[[], object] | None = None,
        served: bool = False,
        redirects: int = 0,
        limit: int = API_ANSWER_LIMIT,
        sink: Callable[[], Callable[[bytes], object]] | None = None,
    ) -> T:
        """Sends the request until `accept` takes the answer or the retries run out; `pace`, if
        given, is called before every attempt (a rate-limited call waits for its slot). A 200's
        body goes to a fresh writer from `sink` when given, else into `_Answer.body`. `served`
        says the server handed out `url` (a bad one is then its fault, not --base-url's)."""
        if served:
            _served_url(url, f"{self.base_url} handed out the URL")
        shown = _without_query(url)
        # A token may die again within one call's retries (Easemob's live minutes, and the
        # waits between retries add up): it is renewed again once a retry was spent since the
        # last renewal, so the renewals stay fewer than the retries. A token refused before any
        # retry since it was issued would be refused for ever: that is an error at once.
        renewed = False
        renewals = retries = 0
        while True:
            if pace is not None:
                pace()
            sent = dict(headers or {})
            token = None
            if auth:
                token = self._tokens.current()
                sent["Authorization"] = f"Bearer {token}"
            retry_after = None
            answered = False  # an answer came, but not one the API gives
            try:
                answer = self._exchange(
                    method,
                    url,
                    params,
                    json,
                    sent,
                    plain=plain,
                    served=served,
                    redirects=redirects,
                    limit=limit,
                    sink=sink,
                )
            except _Retry as problem:
                reason = str(problem)
            else:
                log.debug("%s %s -> %d", method, self._redact(shown), answer.status)
                if token is not None and answer.authorized and token_refused(answer):
                    if renewed:
                        raise SourceError(
                            f"{self.base_url} refused a token it had just issued for "
                            f"{self.org}/{self.app} ({_error_of(answer)[0] or 'HTTP 401'})"
                        )
                    self._tokens.reject(token)
                    renewed = True
                    renewals += 1
                    log.info(
                        "token refused by %s; renewing it%s",
                        self._redact(shown),
                        "" if renewals == 1 else f" again (renewal {renewals} of this call)",
                    )
                    continue
                if answer.status in (408, 429) or answer.status >= 500:
                    error = self._shown(_error_of(answer)[0], 120)
                    reason = f"HTTP {answer.status}" + (f" {error}" if error else "")
                    retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
                else:
                    try:
                        return accept(answer)
                    except _Retry as problem:
                        reason = str(problem)
                        answered = True
            reason = self._redact(reason)
            renewed = False
            retries += 1
            if retries > self.retry.max_retries:
                attempts = f"{retries} attempt" + "s" * (retries > 1)
                if served:
                    advice = (
                        f"the URL came from {self.base_url}, which may have handed out a wrong one"
                    )
                elif answered:
                    advice = (
                        f"{self.base_url} answers, but not as the API does: a fault of the "
                        "server or of a proxy before it (run again later)"
                    )
                else:
                    advice = (
                        f"check that {self.base_url} is reachable and serves {self.org}/{self.app}"
                    )
                raise RetriesExhausted(
                    f"{method} {shown} failed after {attempts} ({reason}); {advice}"
                )
            pause = self.retry.delay(retries, retry_after)
            if retry_after is not None and pause >= LONG_WAIT:
                log.warning(
                    "%s %s: %s; the server asks to wait %.0f s, waiting %.0f s (retry %d of %d)",
                    method,
                    self._redact(shown),
                    reason,
                    retry_after,
                    pause,
                    retries,
                    self.retry.max_retries,
                )
            else:
                log.info(
                    "%s %s: %s; retry %d of %d in %.2f s",
                    method,
                    self._redact(shown),
                    reason,
                    retries,
                    self.retry.max_retries,
                    pause,
                )
            time.sleep(pause)

    def _exchange(
        self,
        method: str,
        url: str,
        params: dict[str, str] | None,
        json: dict[str, Any] | None,
        headers: dict[str, str],
        *,
        plain: bool,
        served: bool,
        redirects: int,
        limit: int,
        sink: Callable[[], Callable[[bytes], object]] | None,
    ) -> _Answer:
        """One attempt: the request, up to `redirects` redirects (each to an http(s) URL, the
        credential headers dropped once the origin differs from `url`'s), and the body read.
        A transfer that breaks or stalls raises `_Retry`; one that cannot work, `AuditorError`."""
        session = self._session(plain)
        current, hops = url, 0
        while True:
            try:
                response = session.request(
                    method,
                    current,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except _BAD_URL:
                if current is url and not served:
                    raise ConfigError(
                        f"{self.base_url} is not a usable URL; check --base-url"
                    ) from None
                raise SourceError(f"{method} {_without_query(current)}: not a usable URL") from None
            except _BROKEN_TRANSFER as error:
                raise _Retry(_short_reason(error)) from None
            except requests.RequestException as error:
                raise SourceError(
                    f"{method} {_without_query(current)} could not be sent ({type(error).__name__})"
                ) from None
            with contextlib.closing(response):
                if response.is_redirect:
                    location = response.headers["Location"]
                    if not redirects:
                        raise SourceError(
                            f"{method} {_without_query(current)} was redirected "
                            f"(HTTP {response.status_code}) to {_without_query(location)!r}; "
                            f"the Easemob API does not redirect (check --base-url)"
                        )
                    hops += 1
                    if hops > redirects:
                        raise SourceError(
                            f"{method} {_without_query(url)} was redirected more than "
                            f"{redirects} times (last to {_without_query(location)!r})"
                        )
                    try:
                        target = urljoin(current, location)
                    except ValueError:
                        target = location
                    target = _served_url(
                        target,
                        f"{method} {_without_query(current)} was redirected to",
                    )
                    if _origin(target) != _origin(url):
                        headers = {
                            name: value
                            for name, value in headers.items()
                            if name.lower() not in _CREDENTIAL_HEADERS
                        }
                    current, params, json, method = target, None, None, "GET"
                    continue
                body = b""
                if response.status_code == 200 and sink is not None:
                    self._read_body(response, method, current, limit, sink())
                else:
                    chunks: list[bytes] = []
                    refused = response.status_code != 200
                    self._read_body(
                        response,
                        method,
                        current,
                        REFUSAL_READ if refused else limit,
                        chunks.append,
                        truncate=refused,
                    )
                    body = b"".join(chunks)
                return _Answer(
                    status=response.status_code,
                    headers=response.headers,
                    body=body,
                    url=current,
                    authorized="Authorization" in headers,
                )

    def _read_body(
        self,
        response: requests.Response,
        method: str,
        url: str,
        limit: int,
        write: Callable[[bytes], object],
        *,
        truncate: bool = False,
    ) -> None:
        """Passes the (decoded) body to `write` in pieces as they arrive, so that a server cannot
        hold an attempt or the memory for ever; `method` and `url` name the request in errors.

        - Size: past `limit` decoded bytes the answer is refused (a SourceError, not retried: the
          server would send the same again), or with `truncate` simply no longer read.
        - Time: `--timeout` bounds each wait on the socket, and a low-speed rule bounds the
          whole: over each window of `timeout` seconds (at least one) at least `LOW_SPEED_BYTES`
          a second must arrive, or the attempt fails and is retried (curl's `--speed-limit 1024
          --speed-time <timeout>`). A body trickled a byte at a time thus fails after about one
          window, while a large file on a slow but working link (1 KiB/s and up) is never cut.
        """
        declared = response.headers.get("Content-Length", "")
        if not truncate and declared.isascii() and declared.isdigit() and _beyond(declared, limit):
            amount = (
                f"{int(declared):,} bytes"
                if len(declared) <= 30
                else f"a length of {len(declared):,} digits"
            )
            raise SourceError(
                f"{method} {_without_query(url)} announced {amount}, more than the "
                f"{_size(limit)} a real answer holds"
            )
        window = max(self.timeout, 1.0)
        started, arrived, total = time.monotonic(), 0, 0
        raw = response.raw
        while True:
            try:
                chunk = raw.read1(READ_CHUNK, decode_content=True)
            except (urllib3.exceptions.HTTPError, requests.RequestException) as error:
                raise _Retry(_short_reason(error)) from None
            if not chunk:
                return
            total += len(chunk)
            if total > limit:
                if truncate:
                    write(chunk[: len(chunk) - (total - limit)])
                    return
                raise SourceError(
                    f"{method} {_without_query(url)} sent more than the {_size(limit)} a real "
                    "answer holds; stopped reading it"
                )
            write(chunk)
            arrived += len(chunk)
            elapsed = time.monotonic() - started
            if elapsed >= window:
                if arrived < LOW_SPEED_BYTES * elapsed:
                    raise _Retry(
                        f"the body came slower than {LOW_SPEED_BYTES // KIB} KiB/s "
                        f"for {elapsed:.0f} s"
                    )
                started, arrived = time.monotonic(), 0

    def _refusal(self, answer: _Answer, method: str) -> Exception:
        """The one-line error for an answer that retrying cannot fix, naming the URL that gave
        it (after a redirect, the one redirected to)."""
        error, description = _error_of(answer)
        if answer.status == 404 and error == "organization_application_not_found":
            return ConfigError(
                f"no application {self.org}/{self.app} at {self.base_url}; check --org and --app"
            )
        detail = ": ".join(part for part in (self._shown(error), self._shown(description)) if part)
        text = f"{method} {_without_query(answer.url)} was refused: HTTP {answer.status}"
        return SourceError(self._redact(f"{text} ({detail})" if detail else text))
