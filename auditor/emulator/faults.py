"""Fault injection for the emulator: per-request failures and per-record data faults.

Request faults (5xx, 429, legacy 503, slow answers, non-JSON bodies, truncated files) are drawn
from a seeded RNG, but no request key fails more than `max_consecutive` times in a row, so a
client that retries enough always gets through. Record faults (duplicates, conflicting versions,
late arrivals) are pure functions of `(seed, index)`, so the ground truth can be recomputed.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import orjson

REQUEST_FAULTS = (
    "slow",
    "fail",
    "rate_limit",
    "legacy_503",
    "garbage",
    "truncate",
    "chatfile_fail",
)
_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): cheap, stable across runs and platforms."""
    state = 0x9E37_79B9_7F4A_7C15
    for part in parts:
        state = (state ^ (part & _MASK)) * 0xBF58_476D_1CE4_E5B9 & _MASK
        state = (state ^ (state >> 27)) * 0x94D0_49BB_1331_11EB & _MASK
        state ^= state >> 31
    return state


def chance(rate: float, *parts: int) -> bool:
    """True for a `rate` share of the possible `parts`, decided by `mix`."""
    return rate > 0 and mix(*parts) < rate * (1 << 64)


class RequestFaults:
    """Decides which fault, if any, a request gets."""

    def __init__(self, seed: int, rates: dict[str, float], max_consecutive: int) -> None:
        unknown = set(rates) - set(REQUEST_FAULTS)
        if unknown:
            raise ValueError(f"unknown request faults: {sorted(unknown)}")
        self._rates = rates
        self._max = max_consecutive
        self._random = random.Random(mix(seed, 0xFA17))
        self._streaks: dict[str, int] = {}
        self._lock = threading.Lock()

    def decide(self, key: str, applicable: Iterable[str]) -> str | None:
        """The fault for this request of `key`, drawn among the `applicable` kinds, or None."""
        with self._lock:
            streak = self._streaks.get(key, 0)
            fault = None
            if streak < self._max:
                for kind in applicable:
                    rate = self._rates.get(kind, 0.0)
                    if rate > 0 and self._random.random() < rate:
                        fault = kind
                        break
            self._streaks[key] = streak + 1 if fault else 0
            return fault

    def draw(self, choices: tuple[Any, ...]) -> Any:
        """One of `choices`, from the same seeded RNG (which 5xx, where to cut a file)."""
        with self._lock:
            return self._random.choice(choices)


class RecordFaults:
    """Which records the served history duplicates, contradicts, delivers late, or follows with a
    mangled line (persistently: a server that lies, not a transfer that broke)."""

    DUPLICATE, CONFLICT, LATE, MANGLED, RESENT = 0xD0B, 0xC0F, 0x1A7E, 0x3A9, 0x5E7

    def __init__(
        self,
        seed: int,
        duplicate: float,
        conflict: float,
        late: float,
        mangled: float = 0.0,
        resent: float = 0.0,
    ) -> None:
        self._seed = seed
        self._duplicate = duplicate
        self._conflict = conflict
        self._late = late
        self._mangled = mangled
        self._resent = resent

    def mangled(self, index: int) -> bool:
        return chance(self._mangled, self._seed, self.MANGLED, index)

    def duplicated(self, index: int) -> bool:
        return chance(self._duplicate, self._seed, self.DUPLICATE, index)

    def conflicting(self, index: int) -> bool:
        return chance(self._conflict, self._seed, self.CONFLICT, index)

    def late(self, index: int) -> bool:
        return chance(self._late, self._seed, self.LATE, index)

    def resent(self, index: int) -> bool:
        return chance(self._resent, self._seed, self.RESENT, index)

    @property
    def any_late(self) -> bool:
        return self._late > 0

    @property
    def any_resent(self) -> bool:
        return self._resent > 0


def conflicting_version(record: dict[str, Any]) -> dict[str, Any]:
    """A copy of `record` with the same `msg_id` and a different first body (or `ext`)."""
    version = orjson.loads(orjson.dumps(record))
    payload = version.get("payload")
    bodies = payload.get("bodies") if isinstance(payload, dict) else None
    first = bodies[0] if isinstance(bodies, list) and bodies else None
    if isinstance(first, dict) and isinstance(first.get("msg"), str):
        first["msg"] += "（已编辑）"
    elif isinstance(payload, dict):
        ext = payload.get("ext")
        payload["ext"] = {**(ext if isinstance(ext, dict) else {}), "em_edited": True}
    else:
        version["payload"] = {"bodies": [], "ext": {"em_edited": True}}
    return version


def resent_version(record: dict[str, Any]) -> dict[str, Any] | None:
    """`record` edited and sent again an hour later under its `msg_id` (None for a record
    without a msg_id or an integer timestamp): a version that the next hour's file serves in
    its own hour, so that only a run comparing its hours can see the two contents."""
    sent = record.get("timestamp")
    if "msg_id" not in record or type(sent) is not int:
        return None
    version = conflicting_version(record)
    version["timestamp"] = sent + RESEND_DELAY_MS
    return version


RESEND_DELAY_MS = 3_600_000


class RateLimit:
    """Easemob's per-AppKey limit on a route, as a sliding window of real time: at most `limit`
    requests in any `window` seconds, the rest refused (429 `reach_limit`). `limit` 0 is none."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def refuses(self) -> bool:
        """Whether a request now is over the limit (a refused one does not count)."""
        if self.limit <= 0:
            return False
        with self._lock:
            now = time.monotonic()
            while self._recent and self._recent[0] <= now - self.window:
                self._recent.popleft()
            if len(self._recent) >= self.limit:
                return True
            self._recent.append(now)
            return False
