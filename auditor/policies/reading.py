"""What the policies read from a record: the facts scopes match and the strings scanned.

Scopes look at the chat type, sender, receiver, body types and send time (`Facts`). Keyword and
sensitive-data rules read text bodies (`msg`), merged messages (`title`, `summary`; their `msg` is
Easemob's fixed "version too old" notice), location addresses (`addr`), file names (`filename`,
any body type), custom messages (`customEvent`; `customExts` as a map or a list of one-key maps,
and `v2:customExts`), command messages (`action`) and the message's `ext`, each with its RFC 6901
JSON Pointer. `ext` and the custom maps are read recursively, and in them what an app may fill
with content is read too: the keys (a key's pointer is that of its member, with `key` set, since a
pointer can only name a value) and integers, as their decimal text (apps store phone and ID
numbers as JSON numbers). A string repeated in one record (Easemob mirrors `customExts` into
`v2:customExts`) is scanned once, at its first place. The engine's hot path reads both in one
walk without pointers (`glance`): a pointer is only wanted for the few strings that match
something, and building it costs more than finding the string, so `place_of` walks again for
just those.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any, Final, NamedTuple

import orjson

from auditor.records import LATEST_MS, Record, body_type, receiver, sender, timestamp_ms


def _parsed_keys(*names: str) -> dict[str, str]:
    """Each of `names` mapped to the object orjson makes of it when it parses a record.

    orjson gives every parse the same object for a key of up to 64 bytes (its key cache), so a
    dict lookup with that object finds the record's key by identity, where a literal, another
    object, is compared by its bytes (`unicode_eq`, a `memcmp`) at every key found. The cache
    keeps one object a slot: a key that displaces another's is parsed anew as another object,
    and a record parsed otherwise (json, pickle, a test's literal) holds others; lookups then
    compare bytes, as with a literal, and find the same values.
    """
    return {key: key for key in orjson.loads(orjson.dumps(dict.fromkeys(names)))}


KEY: Final = _parsed_keys(
    "payload", "bodies", "ext", "from", "to", "timestamp", "chat_type", "type", "subType",
    "msg", "filename", "title", "summary", "addr", "customEvent", "action", "customExts",
    "v2:customExts",
)  # fmt: skip
"""The record keys `glance` looks up, as orjson parses them (`_parsed_keys`)."""
# `Final`: compiled code reads them as statics, not from the module's dict.
_PAYLOAD: Final = KEY["payload"]
_BODIES: Final = KEY["bodies"]
_EXT: Final = KEY["ext"]
_FROM: Final = KEY["from"]
_TO: Final = KEY["to"]
_TIMESTAMP: Final = KEY["timestamp"]
_CHAT_TYPE: Final = KEY["chat_type"]
_TYPE: Final = KEY["type"]
_SUBTYPE: Final = KEY["subType"]
_CUSTOM_MAPS: Final = (KEY["customExts"], KEY["v2:customExts"])
_FILENAME: Final = (KEY["filename"],)
_BY_TYPE: Final = {
    "txt": (KEY["msg"], KEY["filename"]),
    "combine": (KEY["title"], KEY["summary"], KEY["filename"]),
    "loc": (KEY["addr"], KEY["filename"]),
    "custom": (KEY["customEvent"], KEY["filename"]),
    "cmd": (KEY["action"], KEY["filename"]),
}
# Integers in `ext` and the custom maps are scanned up to this size: longer ones hold no phone,
# ID or card number, and Python refuses to write out an integer of more than 4,300 digits.
NUMBER_LIMIT: Final = 10**20
Place = tuple[str, str, bool]
"""`(pointer, text, key)`: a scanned string, and whether it is the key of the member at
`pointer` rather than the value there."""
Fields = list[Place]


class Facts(NamedTuple):
    """What scopes look at, read from a record once and shared by every rule and hold."""

    chat_type: Any
    sender: str | None
    receiver: str | None
    types: list[str]
    sent: int | None


def _chat_type(record: Record) -> str | None:
    """The chat type scopes compare with; a value that is not a string matches no chat type."""
    chat = record.get(_CHAT_TYPE)
    return chat if type(chat) is str else None


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
    """The record's facts and its `(pointer, text, key)` strings, in record order."""
    facts = _new_facts(
        Facts,
        (
            _chat_type(record),
            sender(record),
            receiver(record),
            _body_types(record),
            timestamp_ms(record),
        ),
    )
    return facts, scanned_fields(record)


def _body_types(record: Record) -> list[str]:
    payload = record.get("payload")
    found = payload.get("bodies") if isinstance(payload, dict) else None
    if not isinstance(found, list):
        return []
    return [body_type(body) for body in found if isinstance(body, dict)]


def _fields(record: Record) -> Iterator[Place]:
    """Every scanned `(pointer, text, key)` of a record in record order, repeated strings
    included."""
    payload = record.get("payload")
    if not isinstance(payload, dict):
        return
    bodies = payload.get("bodies")
    if isinstance(bodies, list):
        for index, body in enumerate(bodies):
            if not isinstance(body, dict):
                continue
            kind = body_type(body)
            for key in _BY_TYPE.get(kind, _FILENAME):
                value = body.get(key)
                if isinstance(value, str) and value:
                    yield _body_pointer(index, key), value, False
            if kind == "custom":
                for key in ("customExts", "v2:customExts"):
                    if key in body:
                        yield from _strings(body[key], _body_pointer(index, key))
    ext = payload.get("ext")
    if ext:
        yield from _strings(ext, "/payload/ext")


def scanned_fields(record: Record) -> Fields:
    """The strings policies scan, each once, at the pointer where it first occurs."""
    seen: set[str] = set()
    found: Fields = []
    for place in _fields(record):
        if place[1] not in seen:
            seen.add(place[1])
            found.append(place)
    return found


def place_of(record: Record, text: str) -> tuple[str, bool]:
    """The pointer `scanned_fields` gives `text` and whether `text` is the key there, found
    without building the others: the engine asks only for the few strings that matched."""
    for pointer, value, key in _fields(record):
        if value == text:
            return pointer, key
    raise KeyError(text)


_new_facts = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def glance(record: Record) -> tuple[tuple, list[str]]:
    """What `read` returns, without the pointers: the same facts (as a plain tuple in the
    order of `Facts`) and the same strings in the same order.

    Written for the usual shape (plain dicts, lists and strings, tested with `type(...) is`)
    with `isinstance` only as the fallback, so it accepts exactly what `read` accepts.
    """
    payload = record.get(_PAYLOAD)
    types: list[str] = []
    texts: list[str] = []
    if type(payload) is dict or isinstance(payload, dict):
        bodies = payload.get(_BODIES)
        if type(bodies) is list or isinstance(bodies, list):
            for body in bodies:
                if type(body) is not dict and not isinstance(body, dict):
                    continue
                if body.get(_SUBTYPE) == "sub_combine":
                    kind: Any = "combine"
                else:
                    kind = body.get(_TYPE)
                    if type(kind) is not str and not isinstance(kind, str):
                        kind = ""
                types.append(kind)
                for key in _BY_TYPE.get(kind, _FILENAME):
                    value = body.get(key)
                    if (
                        value
                        and (type(value) is str or isinstance(value, str))
                        and value not in texts
                    ):
                        texts.append(value)
                if kind == "custom":
                    for key in _CUSTOM_MAPS:
                        if key in body:
                            _texts(body[key], texts)
        ext = payload.get(_EXT)
        if ext:
            _texts(ext, texts)
        who = payload.get(_FROM) or record.get(_FROM)
        to = payload.get(_TO) or record.get(_TO)
    else:
        who = record.get(_FROM)
        to = record.get(_TO)
    sent = record.get(_TIMESTAMP)
    return (
        _chat_type(record),
        who if type(who) is str or who is None else str(who),
        to if type(to) is str or to is None else str(to),
        types,
        sent if type(sent) is int and 0 <= sent < LATEST_MS else timestamp_ms(record),
    ), texts


_LEAVES: Final = frozenset((float, bool, type(None)))  # JSON values that hold no text


def _texts(value: Any, texts: list[str]) -> None:
    """`_strings` without the pointers (a dict's dicts are walked inline: push settings in
    `ext` are a dict of dicts)."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if isinstance(key, str) and key and key not in texts:
                texts.append(key)
            kind = type(item)
            if kind is str:
                if item and item not in texts:
                    texts.append(item)
            elif kind is dict:
                for leaf_key, leaf in item.items():
                    if isinstance(leaf_key, str) and leaf_key and leaf_key not in texts:
                        texts.append(leaf_key)
                    if type(leaf) is str:
                        if leaf and leaf not in texts:
                            texts.append(leaf)
                    elif type(leaf) not in _LEAVES:
                        _texts(leaf, texts)
            elif kind not in _LEAVES:
                _texts(item, texts)
    elif kind is str:
        if value and value not in texts:
            texts.append(value)
    elif kind is list:
        for item in value:
            _texts(item, texts)
    elif kind is int:
        if -NUMBER_LIMIT < value < NUMBER_LIMIT:
            text = str(value)
            if text not in texts:
                texts.append(text)
    elif isinstance(value, str):
        if value and value not in texts:
            texts.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key and key not in texts:
                texts.append(key)
            _texts(item, texts)
    elif isinstance(value, list):
        for item in value:
            _texts(item, texts)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = _number_text(value)
        if number is not None and number not in texts:
            texts.append(number)


def facts_of(record: Record) -> Facts:
    return read(record)[0]


def _number_text(value: int) -> str | None:
    """The decimal text an integer is scanned as (None when it is too long to hold anything)."""
    return str(int(value)) if -NUMBER_LIMIT < value < NUMBER_LIMIT else None


def _strings(value: Any, pointer: str) -> Iterator[Place]:
    if isinstance(value, str):
        if value:
            yield pointer, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            child = _child_pointer(pointer, str(key))
            if isinstance(key, str) and key:
                yield child, key, True
            yield from _strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, _child_pointer(pointer, str(index)))
    elif isinstance(value, int) and not isinstance(value, bool):
        text = _number_text(value)
        if text is not None:
            yield pointer, text, False


@lru_cache(maxsize=4096)
def pointer_path(pointer: str) -> str:
    """`/payload/bodies/0/msg` as `payload.bodies[0].msg`, the way a reviewer reads it."""
    parts = []
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if token.isascii() and token.isdigit():
            parts.append(f"[{token}]")
        else:
            parts.append(("." if parts else "") + token)
    return "".join(parts)
