"""Hours of history (partitions) and the instants that bound a window.

All instants are UTC milliseconds. A partition is `[HH:00, HH+1:00)`; Easemob names the hour in the
cluster's time zone (Beijing time on China clusters, UTC overseas), which only changes its label,
since both zones have whole-hour offsets; `parse_hour_timezone` refuses any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from auditor.errors import ConfigError

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def parse_timezone(text: str) -> timezone:
    """`UTC`, `+8`, `+08:00` or `-05:30` as a fixed offset (for showing times; a zone that names
    hours goes through `parse_hour_timezone`); Easemob's SDK spells Beijing `+8`."""
    value = text.strip().upper()
    if value in ("UTC", "Z", "GMT", "0", "+0", "+00:00"):
        return UTC
    match = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", value)
    if not match:
        raise ConfigError(f"time zone {text!r} is not UTC or an offset like +8 or +08:00")
    sign = 1 if match.group(1) == "+" else -1
    delta = timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))
    if delta > timedelta(hours=14):
        raise ConfigError(f"time zone {text!r} is beyond ±14:00")
    return timezone(sign * delta)


def parse_hour_timezone(text: str) -> timezone:
    """`parse_timezone` for the zone that names hour files, which must be a whole-hour offset.

    A partition is a UTC hour, and its label is that hour in this zone. With an offset of some
    minutes (`+05:30`), local hours no longer line up with UTC hours: a label would name half of
    two partitions, and hour files named so would hold records of two of them. Easemob names
    hours in Beijing time (+8) on China clusters and in UTC overseas.
    """
    zone = parse_timezone(text)
    offset = zone.utcoffset(None)
    if offset is not None and offset.total_seconds() % 3600:
        raise ConfigError(
            f"hour time zone {text!r} is not a whole number of hours from UTC; Easemob names "
            "hour files in whole-hour zones (+8 on China clusters, UTC overseas)"
        )
    return zone


@dataclass(frozen=True, order=True, slots=True)
class Partition:
    """One hour of history, identified by its UTC start instant in milliseconds."""

    start_ms: int

    def __post_init__(self) -> None:
        if self.start_ms % HOUR_MS:
            raise ValueError(f"partition start {self.start_ms} is not on an hour boundary")

    @property
    def end_ms(self) -> int:
        return self.start_ms + HOUR_MS

    def contains(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms < self.end_ms

    def label(self, tz: timezone = UTC) -> str:
        """The hour as Easemob names it in the given zone: `YYYYMMDDHH`, the year in four digits
        (glibc's `%Y` writes the year 1 as `1`)."""
        moment = datetime.fromtimestamp(self.start_ms // 1000, tz)
        return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}{moment.hour:02d}"

    @classmethod
    def from_label(cls, label: str, tz: timezone = UTC) -> Partition:
        try:
            moment = datetime.strptime(label, "%Y%m%d%H").replace(tzinfo=tz)
        except ValueError:
            raise ConfigError(f"hour {label!r} is not of the form YYYYMMDDHH") from None
        return cls(int(moment.timestamp()) * 1000)

    @classmethod
    def containing(cls, timestamp_ms: int) -> Partition:
        return cls(timestamp_ms - timestamp_ms % HOUR_MS)

    def iso(self) -> str:
        return format_instant(self.start_ms)


def partitions_between(since_ms: int, until_ms: int) -> Iterator[Partition]:
    """Every hour that overlaps `[since, until)`, oldest first."""
    start = since_ms - since_ms % HOUR_MS
    while start < until_ms:
        yield Partition(start)
        start += HOUR_MS


EARLIEST_WINDOW_MS = 0
LATEST_WINDOW_MS = 253_402_214_400_000  # 9999-12-31T00:00Z
MAX_WINDOW_DAYS = 3653
MAX_WINDOW_MS = MAX_WINDOW_DAYS * DAY_MS


def check_window(since_ms: int | None, until_ms: int | None) -> None:
    """Refuses a window no audit means, before anything is fetched or listed.

    Instants lie from 1970-01-01 (the epoch; Easemob, founded 2013, holds nothing older) to
    9999-12-31T00:00Z: a window's end is rounded up to the hour and named, and an hour named in a
    zone up to +14:00 must still fall in year 9999 to have a `YYYYMMDDHH` label. A window holds at
    most ten years (87,672 hours): Easemob keeps history 180 days at most, a backfill of local
    exports may span years, and at Easemob's 10 hour files a minute ten years take six days of
    requests, already more than one run should; a longer window is a typo in a year (0026 for
    2026) or a backfill to split into several runs.
    """
    for name, instant in (("--since", since_ms), ("--until", until_ms)):
        if instant is not None and not EARLIEST_WINDOW_MS <= instant <= LATEST_WINDOW_MS:
            raise ConfigError(
                f"{name} must lie between 1970-01-01T00:00Z and 9999-12-31T00:00Z, "
                "where every hour of history has a YYYYMMDDHH name"
            )
    if since_ms is not None and until_ms is not None:
        check_forwards(since_ms, until_ms)
    if since_ms is not None and until_ms is not None and until_ms - since_ms > MAX_WINDOW_MS:
        raise ConfigError(
            f"the window {format_instant(since_ms)} .. {format_instant(until_ms)} holds "
            f"{-(-(until_ms - since_ms) // HOUR_MS):,} hours, more than the "
            f"{MAX_WINDOW_MS // HOUR_MS:,} (ten years) one run may audit: check the years, "
            "or split the window into runs of at most ten years each"
        )


def check_forwards(since_ms: int, until_ms: int) -> None:
    """Refuses a window given backwards (or empty) in the one line `auditor run` and
    `auditor pull` both say, whichever source they read, with the instants as they were meant."""
    if until_ms <= since_ms:
        raise ConfigError(
            f"the window is empty: --until {format_instant(until_ms)} is not after "
            f"--since {format_instant(since_ms)}"
        )


_INSTANT_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
# A date and what follows it but a time after `T` (or a space): Python's fromisoformat takes any
# character there, so `2026-11-01+08:00`, a date with a zone as XML Schema writes one, read as
# 08:00 UTC
_DATE_NOT_THEN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[^Tt]")


def parse_instant(text: str, default_tz: timezone = UTC) -> int:
    """An ISO 8601 date or date-time (zone optional, UTC by default) or epoch ms, as UTC ms."""
    value = text.strip()
    if re.fullmatch(r"\d{12,14}", value):
        return int(value)
    candidate = value.replace(" ", "T")
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    if _DATE_NOT_THEN_TIME.match(candidate):
        raise ConfigError(
            f"{text!r} is not a date or time: a time follows the date after a T or a space, "
            "and a zone follows the time (2026-11-01T00:00+08:00 is the start of that day in "
            "Beijing)"
        )
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        moment = None
        for fmt in _INSTANT_FORMATS:
            try:
                moment = datetime.strptime(candidate, fmt)
                break
            except ValueError:
                continue
        if moment is None:
            raise ConfigError(
                f"{text!r} is not a date or time; use ISO 8601 such as 2026-11-20 or "
                "2026-11-20T08:00+08:00, or epoch milliseconds"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz)
    return int(moment.timestamp() * 1000)


def format_instant(timestamp_ms: int) -> str:
    """UTC ms as ISO 8601 with a `Z`, to the second (to the millisecond when it has one)."""
    seconds, millis = divmod(timestamp_ms, 1000)
    # isoformat, not strftime: glibc's %Y writes the year 1 as "1", which is not ISO 8601
    text = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat()
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
