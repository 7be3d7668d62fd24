"""How the report writes instants, zones and quoted text, so every format says them the same way."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from auditor.partitions import format_instant

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")


def zone_name(tz: timezone) -> str:
    """`UTC` or `UTC+08:00`: the zone named the way a reader outside the team understands it."""
    offset = tz.utcoffset(None) or timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_time(timestamp_ms: int | None, tz: timezone, seconds: bool = True) -> str:
    """An instant in the report's zone with its offset, e.g. `2026-11-01 08:00:00 +08:00`."""
    if timestamp_ms is None:
        return ""
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC).astimezone(tz)
    except (OverflowError, ValueError):  # the zone shifts it past year 1 or 9999: say it in UTC
        return utc_time(timestamp_ms)
    text = moment.replace(tzinfo=None).isoformat(" ", "seconds" if seconds else "minutes")
    return f"{text} {zone_name(tz)[3:] or '+00:00'}"


def utc_time(timestamp_ms: int | None) -> str:
    return "" if timestamp_ms is None else format_instant(timestamp_ms)


def instant(value: Any, tz: timezone) -> str:
    """A finding's time value (UTC ms or already a string) as the report shows it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return local_time(value, tz)
    return clip(value, 64)


def clip(value: Any, limit: int) -> str:
    """Any value as text of at most `limit` characters, so one odd record cannot bloat the page."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_lang(text: str) -> str | None:
    """`zh` for text holding Chinese characters, so the browser picks a CJK font for it."""
    return "zh" if _CJK.search(text) else None
