"""Lenient accessors for raw Easemob records, shared by every stage.

Records stay exactly as the source sent them; these functions only read them, tolerating what the
real API does: `payload.from/to` preferred over the top-level fields, numbers sent as strings,
missing optional fields, merged messages sent as `txt` bodies with `subType: sub_combine`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

import orjson

Record = dict[str, Any]


def msg_id(record: Record) -> str | None:
    value = record.get("msg_id")
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    return None


# Instants before 1970 or from year 10000 on are not send times, and datetime cannot hold them.
LATEST_MS: Final = 253_402_300_800_000
_LATEST_DIGITS = len(str(LATEST_MS))


def timestamp_ms(record: Record) -> int | None:
    """The send time in UTC ms; accepts an int or a string of ASCII digits in range, else None.

    Only ASCII digits: `str.isdigit` also accepts `²` (which `int` refuses) and other scripts'
    digits (which the schema refuses).
    """
    value = record.get("timestamp")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        # Past `LATEST_MS`'s 15 digits (leading zeros aside) it is out of range, and past 4,300
        # `int` raises ValueError (CPython's limit on converting text): one such record
        # stopped the whole run.
        value = int(value) if len(value.lstrip("0")) <= _LATEST_DIGITS else None
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value < LATEST_MS:
        return value
    return None


def _payload(record: Record) -> dict[str, Any]:
    payload = record.get("payload")
    return payload if isinstance(payload, dict) else {}


def sender(record: Record) -> str | None:
    value = _payload(record).get("from") or record.get("from")
    return str(value) if value is not None else None


def receiver(record: Record) -> str | None:
    value = _payload(record).get("to") or record.get("to")
    return str(value) if value is not None else None


def bodies(record: Record) -> list[dict[str, Any]]:
    found = _payload(record).get("bodies")
    if not isinstance(found, list):
        return []
    return [body for body in found if isinstance(body, dict)]


def body_type(body: dict[str, Any]) -> str:
    """The message type a body is checked as; merged messages travel as txt + `sub_combine`."""
    if body.get("subType") == "sub_combine":
        return "combine"
    kind = body.get("type")
    return kind if isinstance(kind, str) else ""


def message_type(record: Record) -> str:
    """The record's type for counting: its first body's type, `none` without a body."""
    found = bodies(record)
    return body_type(found[0]) or "unknown" if found else "none"


def content_hash(record: Record) -> str:
    """SHA-256 of the record with sorted keys: equal for records equal as JSON values.

    orjson refuses integers beyond 64 bits and lone surrogates; such a record is hashed through
    `json` instead (always the same way for the same record).
    """
    try:
        data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        data = json.dumps(record, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()
