"""The app token: fetched once, shared by every thread, renewed before it runs out.

Easemob asks clients not to request tokens often (an account that does is banned) and warns that
a token may stop working before `expires_in`. So the token is cached and renewed at half its life
(as Easemob's Java SDK does: a minute or more early for any token that lives two minutes), a 401
drops it for one renewal, and one lock makes concurrent callers wait for a single request. A token
is kept at least `MIN_TOKEN_LIFE` seconds whatever `expires_in` says: a server answering 0.001
would otherwise have the client ask for a token before every call (a 401 still renews it early).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and when to renew it (monotonic seconds; None: never expires)."""

    value: str = field(repr=False)
    renew_at: float | None

    def __repr__(self) -> str:
        return f"Token(<redacted>, renew_at={self.renew_at})"


# The shortest time a token is used before it is renewed (Easemob bans apps that ask too often).
MIN_TOKEN_LIFE = 60.0


def renewal_time(obtained_at: float, expires_in: float) -> float | None:
    """Half the token's life after it was asked for, and `MIN_TOKEN_LIFE` at the least;
    `expires_in` 0 (or not a number) means it never expires."""
    if not expires_in > 0:
        return None
    return obtained_at + max(expires_in / 2, MIN_TOKEN_LIFE)


class TokenCache:
    """Holds the current token; `fetch` is called with the lock held, by one thread at a time."""

    def __init__(
        self, fetch: Callable[[], tuple[str, float]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None

    def __repr__(self) -> str:
        return f"TokenCache(cached={self._token is not None})"

    def current(self) -> str:
        with self._lock:
            token = self._token
            if token is None or (token.renew_at is not None and self._clock() >= token.renew_at):
                asked_at = self._clock()
                value, expires_in = self._fetch()
                token = Token(value, renewal_time(asked_at, expires_in))
                self._token = token
            return token.value

    def reject(self, value: str) -> None:
        """Forgets `value` after a 401, unless another thread has already replaced it."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None
