"""The Easemob REST client: app token, retries and error mapping for every call the auditor makes.

Every request goes through one loop (`_call`): 5xx, 429, timeouts, refused connections and broken
transfers are retried with exponential backoff and full jitter (honouring `Retry-After`, which
Easemob does not send but a proxy might); a 401 renews the token once and repeats the call; what
cannot be retried becomes one `AuditorError` line naming the org, app and URL. The client secret
and tokens never appear in a log line, an exception or a repr.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import orjson
import requests

from auditor.errors import ConfigError, InputError, SourceError
from auditor.jsonl import loads
from auditor.sources.interface import PartitionNotReady
from auditor.sources.pacing import Pacer
from auditor.sources.tokens import TokenCache

log = logging.getLogger(__name__)


class _RedactSignatures(logging.Filter):
    """Hides the signature of download URLs in urllib3's debug lines: for half an hour a signed
    URL is as good as a token for its file."""

    _PATTERN = re.compile(r"(Signature=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._PATTERN.sub(r"\1<redacted>", arg) if isinstance(arg, str) else arg
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


class UrlExpired(Exception):
    """A signed download URL was refused (403): ask the API for a fresh one."""


class _Retry(Exception):
    """An answer that may be right next time (not JSON, cut short); the message says why."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to repeat a failed call.

    Full jitter (a uniform draw below the exponential bound) keeps many clients that failed
    together from retrying together.
    """

    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 300.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1)))


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds, given as a number or an HTTP date; None when absent or unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _short_reason(error: Exception) -> str:
    """`Connection refused` rather than urllib3's paragraph about connection pools."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip()
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "transfer cut short"
    return type(error).__name__


def _error_of(response: requests.Response) -> tuple[str, str]:
    """Easemob's (Usergrid's) `error` and `error_description`, or the start of a non-JSON body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "", response.text[:120].strip()
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("error_description") or "")


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = loads(response.content)
    except ValueError:
        raise _Retry("the answer was not JSON") from None
    if not isinstance(body, dict):
        raise _Retry("the answer was not a JSON object")
    return body


def _secret_refused(response: requests.Response) -> bool:
    """A 401 about an attachment's share-secret, which a new token would not fix."""
    return response.status_code == 401 and "secret" in _error_of(response)[1].lower()


def _token_refused(response: requests.Response) -> bool:
    return response.status_code == 401 and not _secret_refused(response)


def _without_query(url: str) -> str:
    """A signed URL without its signature, fit for a log line or a message."""
    return url.split("?", 1)[0]


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
        self._token_ttl = token_ttl
        self._tokens = TokenCache(self._fetch_token)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EasemobClient({self.base_url!r}, org={self.org!r}, app={self.app!r})"

    @property
    def app_url(self) -> str:
        return f"{self.base_url}/{quote(self.org, safe='')}/{quote(self.app, safe='')}"

    # -- the calls ----------------------------------------------------------------------------

    def hour_file_url(self, label: str) -> str | None:
        """The signed download URL of an hour's file, or None when the hour has no messages."""
        url = f"{self.app_url}/chatmessages/{label}"

        def accept(response: requests.Response) -> str | None:
            if response.status_code == 200:
                data = _json_object(response).get("data")
                entry = data[0] if isinstance(data, list) and data else data
                link = entry.get("url") if isinstance(entry, dict) else None
                if not isinstance(link, str) or not link:
                    raise _Retry("the answer held no download URL")
                return link
            error, description = _error_of(response)
            if response.status_code == 404 and error == "storage_object_not_found":
                return None
            if response.status_code == 400 and re.search(r"expired|unstored", description):
                raise PartitionNotReady(label, description or error)
            raise self._refusal(response, f"GET {url}")

        pacer = self.hour_file_pacer
        return self._call("GET", url, accept, auth=True, pace=pacer.wait if pacer else None)

    def download(self, url: str) -> bytes:
        """The bytes behind a signed URL, fetched without the bearer token (like Easemob's SDK)."""

        def accept(response: requests.Response) -> bytes:
            if response.status_code == 200:
                return response.content
            if response.status_code == 403:
                raise UrlExpired(_without_query(url))
            raise self._refusal(response, f"GET {_without_query(url)}")

        return self._call("GET", url, accept, auth=False, plain=True)

    def legacy_page(self, ql: str, limit: int, cursor: str | None = None) -> dict[str, Any]:
        """One page of the legacy `ql` query; requests URL-encodes `ql` and the cursor."""
        url = f"{self.app_url}/chatmessages"
        params = {"ql": ql, "limit": str(limit)}
        if cursor is not None:
            params["cursor"] = cursor

        def accept(response: requests.Response) -> dict[str, Any]:
            if response.status_code == 200:
                page = _json_object(response)
                if not isinstance(page.get("entities"), list):
                    raise _Retry("the page held no list of entities")
                return page
            raise self._refusal(response, f"GET {url}")

        return self._call("GET", url, accept, auth=True, params=params)

    def offline_msg_count(self, user: str) -> int:
        """How many messages wait for `user` while offline."""
        url = f"{self.app_url}/users/{quote(user, safe='')}/offline_msg_count"

        def accept(response: requests.Response) -> int:
            if response.status_code == 200:
                data = _json_object(response).get("data")
                value = data.get(user) if isinstance(data, dict) else None
                if isinstance(value, str) and value.isdigit():
                    value = int(value)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise _Retry("the answer held no count for the user")
                return value
            error, _ = _error_of(response)
            if response.status_code == 404 and error == "service_resource_not_found":
                raise ConfigError(f"no user {user!r} in {self.org}/{self.app} at {self.base_url}")
            raise self._refusal(response, f"GET {url}")

        return self._call("GET", url, accept, auth=True)

    def download_attachment(self, url: str, secret: str | None = None) -> bytes:
        """An attachment named in a record, fetched from the configured cluster.

        Records name files on Easemob's public host (`https://a1.easemob.com/...`); the path from
        `/chatfiles/` on is what identifies the file, so it is fetched from `base_url` instead.
        """
        path = urlsplit(url).path
        at = path.find("/chatfiles/")
        if at < 0:
            raise InputError(f"{url} is not an Easemob attachment URL (no /chatfiles/ in it)")
        target = self.app_url + path[at:]
        headers = {"Accept": "application/octet-stream"}
        if secret:
            headers["share-secret"] = secret

        def accept(response: requests.Response) -> bytes:
            if response.status_code == 200:
                return response.content
            if _secret_refused(response):
                raise SourceError(f"GET {target} refused the share-secret given for the file")
            raise self._refusal(response, f"GET {target}")

        return self._call(
            "GET", target, accept, auth=True, headers=headers, token_refused=_token_refused
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

        def accept(response: requests.Response) -> tuple[str, float]:
            if response.status_code == 200:
                answer = _json_object(response)
                token, expires_in = answer.get("access_token"), answer.get("expires_in", 0)
                if not isinstance(token, str) or not token:
                    raise _Retry("the token answer held no access_token")
                try:
                    seconds = float(expires_in)
                except (TypeError, ValueError):
                    seconds = 0.0
                log.debug("got an app token for %s/%s, valid %d s", self.org, self.app, seconds)
                return token, seconds
            error, _ = _error_of(response)
            if response.status_code in (400, 401) and error in ("invalid_grant", "unauthorized"):
                raise ConfigError(
                    f"wrong client id or secret for {self.org}/{self.app} at {self.base_url}"
                    " (check --client-id and EASEMOB_CLIENT_SECRET)"
                )
            raise self._refusal(response, f"POST {url}")

        return self._call("POST", url, accept, auth=False, json=body)

    def _session(self, plain: bool) -> requests.Session:
        name = "plain" if plain else "api"
        session = getattr(self._local, name, None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "*/*" if plain else "application/json"
            setattr(self._local, name, session)
            with self._sessions_lock:
                self._sessions.append(session)
        return session

    def _call(
        self,
        method: str,
        url: str,
        accept: Callable[[requests.Response], T],
        *,
        auth: bool,
        plain: bool = False,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        token_refused: Callable[[requests.Response], bool] = lambda r: r.status_code == 401,
        pace: Callable[[], object] | None = None,
    ) -> T:
        """Sends the request until `accept` takes the answer or the retries run out; `pace`, if
        given, is called before every attempt (a rate-limited call waits for its slot)."""
        shown = _without_query(url)
        renewed = False
        retries = 0
        while True:
            if pace is not None:
                pace()
            sent = dict(headers or {})
            token = None
            if auth:
                token = self._tokens.current()
                sent["Authorization"] = f"Bearer {token}"
            retry_after = None
            try:
                response = self._session(plain).request(
                    method, url, params=params, json=json, headers=sent, timeout=self.timeout
                )
            except _BAD_URL:
                raise ConfigError(
                    f"{self.base_url} is not a usable URL; check --base-url"
                ) from None
            except _BROKEN_TRANSFER as error:
                reason = _short_reason(error)
            else:
                log.debug("%s %s -> %d", method, shown, response.status_code)
                if token is not None and token_refused(response):
                    if renewed:
                        raise SourceError(
                            f"{self.base_url} refused a token it had just issued for "
                            f"{self.org}/{self.app} ({_error_of(response)[0] or 'HTTP 401'})"
                        )
                    self._tokens.reject(token)
                    renewed = True
                    log.info("token refused by %s; renewing it once", shown)
                    continue
                if response.status_code in (408, 429) or response.status_code >= 500:
                    error, _ = _error_of(response)
                    reason = f"HTTP {response.status_code}" + (f" {error}" if error else "")
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                else:
                    try:
                        return accept(response)
                    except _Retry as problem:
                        reason = str(problem)
            retries += 1
            if retries > self.retry.max_retries:
                attempts = f"{retries} attempt" + "s" * (retries > 1)
                raise SourceError(
                    f"{method} {shown} failed after {attempts} ({reason}); "
                    f"check that {self.base_url} is reachable and serves {self.org}/{self.app}"
                )
            pause = self.retry.delay(retries, retry_after)
            log.info(
                "%s %s: %s; retry %d of %d in %.2f s",
                method,
                shown,
                reason,
                retries,
                self.retry.max_retries,
                pause,
            )
            time.sleep(pause)

    def _refusal(self, response: requests.Response, what: str) -> Exception:
        """The one-line error for an answer that retrying cannot fix."""
        error, description = _error_of(response)
        if response.status_code == 404 and error == "organization_application_not_found":
            return ConfigError(
                f"no application {self.org}/{self.app} at {self.base_url}; check --org and --app"
            )
        detail = ": ".join(part for part in (error, description) if part)
        detail = (
            detail.replace(self._client_secret, "<redacted>") if self._client_secret else detail
        )
        text = f"{_without_query(what)} was refused: HTTP {response.status_code}"
        return SourceError(f"{text} ({detail})" if detail else text)
