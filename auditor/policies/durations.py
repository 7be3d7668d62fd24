"""Retention periods such as `30d`, `6mo` or `7y`, added to UTC instants in calendar terms.

Months and years follow the calendar (six months from 31 August is 28 February), as a lawyer
reads "keep for six months"; hours, days and weeks are fixed lengths. The calendar arithmetic
is cached per UTC day, because the engine adds the same periods to every record of a run.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from auditor.partitions import DAY_MS, HOUR_MS
from auditor.records import LATEST_MS

PATTERN = r"^\s*[1-9][0-9]{0,5}\s*(h|d|w|mo|y)\s*$"
_PATTERN = re.compile(PATTERN)
_FIXED_MS = {"h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
# The last instant of the year 9999, the calendar's (and every date the reports show) last: a
# period that reaches past it, such as `keep_for: 8000y` written to mean "for ever", ends there
# (it raised "year 10026 is out of range" in the middle of a run).
LAST_INSTANT_MS = LATEST_MS - 1
_UNIT_WORDS = {"h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


@dataclass(frozen=True, slots=True)
class Duration:
    """A retention period as written in the policy file: a positive amount of one unit."""

    amount: int
    unit: str

    @classmethod
    def parse(cls, text: str) -> Duration:
        """`30d`, `6mo`, `7y`, `2w` or `12h`; raises ValueError for anything else."""
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a duration (use e.g. 30d, 6mo or 7y)")
        unit = match.group(1)
        return cls(int(text.strip()[: -len(unit)].strip()), unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def words(self) -> str:
        """`6 months`, `1 year`: for messages a reviewer reads."""
        word = _UNIT_WORDS[self.unit]
        return f"{self.amount} {word}{'s' if self.amount != 1 else ''}"

    def add_to(self, instant_ms: int) -> int:
        """The instant this long after `instant_ms` (UTC ms), or `LAST_INSTANT_MS` for a period
        that reaches past it."""
        fixed = _FIXED_MS.get(self.unit)
        if fixed is not None:
            return min(instant_ms + self.amount * fixed, LAST_INSTANT_MS)
        months = self.amount * (12 if self.unit == "y" else 1)
        day_start = instant_ms - instant_ms % DAY_MS
        try:
            return min(_add_months(day_start, months) + (instant_ms - day_start), LAST_INSTANT_MS)
        except (ValueError, OverflowError):  # past the year 9999
            return LAST_INSTANT_MS


@lru_cache(maxsize=65_536)
def _add_months(day_start_ms: int, months: int) -> int:
    moment = datetime.fromtimestamp(day_start_ms / 1000, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp() * 1000)


def can_end_sooner(first: Duration, second: Duration) -> bool:
    """Whether `first`, counted from some day, ends before `second` counted from the same day.

    Calendar months vary (six months is 181 to 184 days), so the comparison tries every start
    day of a four-year cycle rather than assuming an average month.
    """
    start = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a leap year starts the cycle
    return any(
        first.add_to(day) < second.add_to(day)
        for day in range(start, start + 1461 * DAY_MS, DAY_MS)
    )
