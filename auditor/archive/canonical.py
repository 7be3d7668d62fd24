"""Canonical JSON (RFC 8785, JCS) of archived values: a fast path checked against the reference.

The `rfc8785` package is the reference. `orjson` with sorted keys writes the same bytes for every
value that holds no float, no `null` (orjson writes NaN as `null`) and no key whose UTF-16 order
differs from its code point order; `canonical` uses orjson for those values and the reference for
the rest, so the output is always the reference's (the tests compare both on a hostile corpus).

One deliberate extension: RFC 8785 only knows integers an IEEE double holds exactly (|n| < 2**53),
and the reference refuses larger ones. A record keeps the value its source sent, so an integer
beyond that range is written as its exact decimal digits, never rounded and never turned into a
string. The result is still RFC 8259 JSON, parsing it gives back the same integer, and
canonicalising that again gives the same bytes.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson
import rfc8785

CanonicalizationError = rfc8785.CanonicalizationError

_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# A number token that orjson wrote as a float, or a `null` (orjson's spelling of NaN/Infinity).
# Matching inside a string is harmless: it only sends the value to the reference.
_NEEDS_REFERENCE = re.compile(rb"[:\[,](?:-?\d+[.eE]|null[,\]}])")
# Deleting every byte below 0xF0 leaves the UTF-8 lead bytes of code points >= U+10000, whose
# keys may sort differently in UTF-16 (one C pass; faster here than a regex or five `in` tests).
_BELOW_SUPPLEMENTARY = bytes(range(0xF0))


def canonical(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value (big integers exact); raises CanonicalizationError."""
    if not isinstance(value, dict | list):
        return canonical_reference(value)
    try:
        fast = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: beyond 64-bit ints, surrogates, other types
        return canonical_reference(value)
    if _NEEDS_REFERENCE.search(fast) or (
        not fast.isascii() and fast.translate(None, _BELOW_SUPPLEMENTARY)
    ):
        return canonical_reference(value)
    return fast


def canonical_reference(value: Any) -> bytes:
    """The `rfc8785` package's bytes, with integers beyond 2**53 written as their exact digits."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.IntegerDomainError:
        return _with_exact_integers(value)


def _with_exact_integers(value: Any) -> bytes:
    """Lets the reference place big integers as marked strings, then writes their digits there."""
    marker = secrets.token_hex(8)
    text = rfc8785.dumps(_mark_big_integers(value, marker))
    pattern = re.compile(rb'"\\u0000' + marker.encode() + rb":(-?[0-9]+)\\u0000\"")
    return pattern.sub(rb"\1", text)


def _mark_big_integers(value: Any, marker: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -(2**53) < value < 2**53:
            return value
        return f"\x00{marker}:{int(value)}\x00"
    if isinstance(value, dict):
        return {key: _mark_big_integers(item, marker) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mark_big_integers(item, marker) for item in value]
    return value
