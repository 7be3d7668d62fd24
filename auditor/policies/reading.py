"""What the policies read from a record, in one pass: the facts scopes match, the strings scanned.

Scopes look at the chat type, sender, receiver, body types and send time (`Facts`). Keyword and
sensitive-data rules read text bodies (`msg`), merged messages (`title`, `summary`; their `msg` is
Easemob's fixed "version too old" notice), location addresses (`addr`), file names (`filename`,
any body type), custom messages (`customExts` as a map or a list of one-key maps, and
`v2:customExts`) and the message's `ext`, recursively, each with its RFC 6901 JSON Pointer. A
string repeated in one record (Easemob mirrors `customExts` into `v2:customExts`) is scanned once,
at its first pointer. Both are read in one walk because the engine needs both for every record.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from auditor.records import Record, body_type, receiver, sender, timestamp_ms

_FILENAME = ("filename",)
_BY_TYPE = {
    "txt": ("msg", "filename"),
    "combine": ("title", "summary", "filename"),
    "loc": ("addr", "filename"),
}
Fields = list[tuple[str, str]]


class Facts(NamedTuple):
    """What scopes look at, read from a record once and shared by every rule and hold."""

    chat_type: Any
    sender: str | None
    receiver: str | None
    types: list[str]
    sent: int | None


def escape(token: str) -> str:
    """One RFC 6901 reference token."""
    return token.replace("~", "~0").replace("/", "~1")


@lru_cache(maxsize=1024)
def _body_pointer(index: int, key: str) -> str:
    return f"/payload/bodies/{index}/{escape(key)}"


@lru_cache(maxsize=4096)
def _child_pointer(parent: str, key: str) -> str:
    return f"{parent}/{escape(key)}"


def read(record: Record) -> tuple[Facts, Fields]:
    """The record's facts and its `(pointer, text)` strings, in record order."""
    payload = record.get("payload")
    types: list[str] = []
    found: Fields = []
    if isinstance(payload, dict):
        seen: list[str] = []
        bodies = payload.get("bodies")
        if isinstance(bodies, list):
            for index, body in enumerate(bodies):
                if not isinstance(body, dict):
                    continue
                kind = body_type(body)
                types.append(kind)
                for key in _BY_TYPE.get(kind, _FILENAME):
                    value = body.get(key)
                    if isinstance(value, str) and value and value not in seen:
                        seen.append(value)
                        found.append((_body_pointer(index, key), value))
                if kind == "custom":
                    for key in ("customExts", "v2:customExts"):
                        if key in body:
                            _strings(body[key], _body_pointer(index, key), seen, found)
        ext = payload.get("ext")
        if ext:
            _strings(ext, "/payload/ext", seen, found)
    facts = _new_facts(
        Facts,
        (
            record.get("chat_type"),
            sender(record),
            receiver(record),
            types,
            timestamp_ms(record),
        ),
    )
    return facts, found


_new_facts = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def facts_of(record: Record) -> Facts:
    return read(record)[0]


def scanned_fields(record: Record) -> Fields:
    return read(record)[1]


def _strings(value: Any, pointer: str, seen: list[str], found: Fields) -> None:
    if isinstance(value, str):
        if value and value not in seen:
            seen.append(value)
            found.append((pointer, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            _strings(item, _child_pointer(pointer, str(key)), seen, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _strings(item, _child_pointer(pointer, str(index)), seen, found)


@lru_cache(maxsize=4096)
def pointer_path(pointer: str) -> str:
    """`/payload/bodies/0/msg` as `payload.bodies[0].msg`, the way a reviewer reads it."""
    parts = []
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if token.isdigit():
            parts.append(f"[{token}]")
        else:
            parts.append(("." if parts else "") + token)
    return "".join(parts)
