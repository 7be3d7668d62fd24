"""The emulator's clock and the app tokens it issues, which expire by that clock.

The clock runs at real speed from a chosen start and can be pushed forward, so a test expires a
token or a download URL without sleeping. Tokens look like Easemob's (`YWMt` + base64); the store
keeps only their SHA-256, so a token never sits in memory dumps or logs beyond the request.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import threading
import time

DEFAULT_TTL = 60 * 24 * 3600
TOKEN_PATTERN = re.compile(r"YWMt[A-Za-z0-9_-]{80}")


class Clock:
    """Emulator time in epoch seconds: real time from `start` (default now), plus `advance`s."""

    def __init__(self, start: float | None = None) -> None:
        self._origin = time.time() if start is None else float(start)
        self._monotonic = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._monotonic) + self._offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


class TokenState(enum.Enum):
    """What the server makes of the bearer token a request carries."""

    VALID = "valid"
    MISSING = "missing"
    EXPIRED = "expired"
    CORRUPT = "corrupt"
    UNKNOWN = "unknown"


class TokenStore:
    """Issues app tokens and judges presented ones by the clock.

    `cap` bounds every lifetime (including "never expires", `ttl=0`); `expire_early` kills a token
    that many seconds after issue whatever `expires_in` promised, as Easemob's docs warn can happen;
    `requests` kills it once that many requests have presented it, answered or failed: its life
    counted in requests rather than seconds, so that a test spends it by a call's retries as the
    waits between them would, without waiting.
    """

    def __init__(
        self,
        clock: Clock,
        cap: int | None = None,
        expire_early: float | None = None,
        requests: int | None = None,
    ) -> None:
        self._clock = clock
        self._cap = cap
        self._expire_early = expire_early
        self._requests = requests
        self._expiry: dict[bytes, float] = {}
        self._presented: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, ttl: int | None) -> tuple[str, int]:
        """A new token and the `expires_in` to report; `ttl` None means the 60-day default."""
        lifetime = DEFAULT_TTL if ttl is None else ttl
        if self._cap is not None and (lifetime == 0 or lifetime > self._cap):
            lifetime = self._cap
        token = "YWMt" + secrets.token_urlsafe(60)
        issued_at = self._clock.now()
        dies_at = issued_at + lifetime if lifetime else float("inf")
        if self._expire_early is not None:
            dies_at = min(dies_at, issued_at + self._expire_early)
        with self._lock:
            self._expiry[_digest(token)] = dies_at
            self.issued += 1
        return token, lifetime

    def present(self, authorization: str | None) -> None:
        """Counts a request that presents a token, before anything else answers it."""
        if self._requests is None or not authorization:
            return
        digest = _digest(authorization.strip().partition(" ")[2].strip())
        with self._lock:
            if digest in self._expiry:
                self._presented[digest] = self._presented.get(digest, 0) + 1

    def check(self, authorization: str | None) -> TokenState:
        """Judges an `Authorization` header value."""
        if not authorization or not authorization.strip():
            return TokenState.MISSING
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return TokenState.MISSING if scheme.lower() == "bearer" else TokenState.CORRUPT
        if not TOKEN_PATTERN.fullmatch(token):
            return TokenState.CORRUPT
        with self._lock:
            dies_at = self._expiry.get(_digest(token))
            presented = self._presented.get(_digest(token), 0)
        if dies_at is None:
            return TokenState.UNKNOWN
        if self._requests is not None and presented > self._requests:
            return TokenState.EXPIRED
        return TokenState.VALID if self._clock.now() < dies_at else TokenState.EXPIRED


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
