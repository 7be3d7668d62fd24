"""Canonical JSON (RFC 8785, JCS) of archived values: a fast path checked against the reference.

The `rfc8785` package is the reference. `orjson` with sorted keys writes the same bytes for every
value that holds no float and no key whose UTF-16 order differs from its code point order, if
its `null`s are all None (orjson writes NaN and Infinity as `null`); `canonical` uses orjson for
those values, orjson with the reference's spelling of each float for values whose only
difference is their floats, and the reference for the rest, so the output is always the
reference's (the tests compare both on a hostile corpus). `canonical_of` does the same from
sorted-keys bytes `settle` already wrote, for values read by orjson or `jsonl.loads`, which
refuse NaN and Infinity: there a `null` is always None. `canonical` is given values built in
Python (findings): when its bytes hold `null` and no float token, `_finite` looks for NaN and
Infinity in `marshal`'s bytes of the value, in C rather than a walk in Python.

One deliberate extension: RFC 8785 only knows integers an IEEE double holds exactly (|n| < 2**53),
and the reference refuses larger ones. A record keeps the value its source sent, so an integer
beyond that range is written as its exact decimal digits, never rounded and never turned into a
string. The result is still RFC 8259 JSON, parsing it gives back the same integer, and
canonicalising that again gives the same bytes.
"""

from __future__ import annotations

import marshal
import re
import secrets
from typing import Any

import orjson
import rfc8785

from auditor.jsonl import allow_deep_nesting

CanonicalizationError = rfc8785.CanonicalizationError

_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# A number token that orjson wrote as a float. Matching inside a string is harmless: it only
# sends the value to the reference.
_FLOAT_TOKEN = re.compile(rb"[:\[,]-?\d+[.eE]")
# Deleting every byte below 0xF0 leaves the UTF-8 lead bytes of code points >= U+10000, whose
# keys may sort differently in UTF-16 (one C pass; faster here than a regex or five `in` tests).
_BELOW_SUPPLEMENTARY = bytes(range(0xF0))
# Both tests above cost about 3.5 us a record, and few records need them. A prefilter that is
# true whenever either of them could be, in two C passes (a translate and one `in`): with
# `-` and digits deleted, `:`, `,`, `[` read as `:`, and `.`, `e`, `E` as `.`, every float
# token (`,-12.5`, `:1e+21`) turns into `:.`; so does every code point >= U+10000, once its
# lead byte (0xF0-0xF4) reads as `:` and the continuation bytes (0x80-0xBF) that always follow
# it as `.`. No other byte reads as `:` or `.`. Text can make `:.` too (`a,e`): that only costs
# the exact tests.
_SUSPECT = bytes.maketrans(
    b":,[.eE" + bytes(range(0x80, 0xC0)) + bytes(range(0xF0, 0x100)),
    b":::..." + b"." * 0x40 + b":" * 0x10,
)
_SUSPECT_DELETE = b"-0123456789"
# marshal (format 4) writes a float as its type byte (`g`, or 0xE7 with its reference flag) and
# the IEEE double, little-endian: NaN and the infinities have all 11 exponent bits set, so the
# last two bytes are 0xF0-0xFF and 0x7F or 0xFF. Other bytes can match too (`-1` as an int):
# that only costs the walk. The `in` tests spare the regex for most values.
_NAN_OR_INFINITY = re.compile(rb"[g\xe7][\x00-\xff]{6}[\xf0-\xff][\x7f\xff]")
# `find`, not `in`, below: `bytes in bytes` first tries its operand as an integer and formats the
# TypeError it then clears, about 800 instructions a test (5% of `canonical_of` on a record).


def _is_canonical(fast: bytes) -> bool:
    """Whether orjson's sorted-keys output is RFC 8785 once its nulls are None (no float, no
    non-BMP text).

    Exactly `not (_FLOAT_TOKEN.search(fast) or <a byte >= 0xF0>)`, the prefilter first.
    """
    if fast.translate(_SUSPECT, _SUSPECT_DELETE).find(b":.") < 0:
        return True
    return not (
        _FLOAT_TOKEN.search(fast)
        or (not fast.isascii() and fast.translate(None, _BELOW_SUPPLEMENTARY))
    )


def _finite(value: Any) -> bool:
    """Whether a value orjson wrote holds no NaN or infinity (False may be wrong: it costs the
    walk). What marshal refuses (an enum, a subclass) is False."""
    try:
        data = marshal.dumps(value, 4)
    except ValueError:
        return False
    return (data.find(b"\x7f") < 0 and data.find(b"\xff") < 0) or not _NAN_OR_INFINITY.search(data)


def canonical(value: Any) -> bytes:
    """The RFC 8785 bytes of a JSON value (big integers exact); raises CanonicalizationError."""
    if not isinstance(value, dict | list):
        return canonical_reference(value)
    try:
        fast = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: beyond 64-bit ints, surrogates, other types
        return canonical_reference(value)
    if _is_canonical(fast) and (fast.find(b"null") < 0 or _finite(value)):
        return fast
    return _with_floats_or_reference(value)


def canonical_of(value: Any, sorted_json: bytes | None) -> bytes:
    """`canonical(value)`, reusing `orjson.dumps(value, option=OPT_SORT_KEYS)` already written.

    For a value read from JSON (dicts, lists, strings, numbers, booleans, null), as `settle`
    keeps it in `PartitionResult.content`: orjson writes those the same with or without
    `canonical`'s passthrough options, and every `null` in them is None, never NaN or Infinity
    (orjson and `jsonl.loads` refuse those literals), so nulls keep the value on the fast path.
    `sorted_json` None (orjson could not write the value) means `canonical(value)`.
    """
    if sorted_json is None or not isinstance(value, dict | list):
        return canonical(value)
    return sorted_json if _is_canonical(sorted_json) else _with_floats_or_reference(value)


def _with_floats_or_reference(value: Any) -> bytes:
    """The reference's bytes of a value orjson can write, about five times faster when it can.

    Where orjson's sorted output is not RFC 8785 it is nearly always for its floats (a location's
    latitude), as orjson and RFC 8785 spell them differently; non-BMP text, or a `null`
    `_finite` could not clear, only looks suspect. orjson then writes the value again with each
    float as the reference spells it (an `orjson.Fragment`); that is the reference's output
    unless a key may sort differently in UTF-16 (code points >= U+10000). That case, NaN or
    infinity (which the reference refuses with its own message), and anything orjson refuses go
    to the reference itself.
    """
    try:
        data = orjson.dumps(_jcs_floats(value), option=_ORJSON_OPTIONS)
    except (TypeError, CanonicalizationError):
        return canonical_reference(value)
    if not data.isascii() and data.translate(None, _BELOW_SUPPLEMENTARY):
        return canonical_reference(value)
    return data


def _jcs_floats(value: Any) -> Any:
    """A copy of a JSON value whose floats are `orjson.Fragment`s of their RFC 8785 spelling.

    Raises `rfc8785.FloatDomainError` (a CanonicalizationError) for NaN and infinity, TypeError
    for anything but dicts, lists, tuples, strings, numbers, booleans and None (an enum, a
    subclass: the reference decides). Only called on values orjson wrote, so nesting is at most
    orjson's limit, far below Python's.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return orjson.Fragment(float_text(value))
    if kind is dict:
        return {key: _jcs_floats(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_jcs_floats(item) for item in value]
    raise TypeError(f"{kind.__name__} is not a plain JSON type")


def float_text(value: float) -> str | bytes:
    """RFC 8785's spelling of a float, exactly as `rfc8785.dumps` gives it, without its cost
    (13,000 instructions a float under callgrind, two a location record) where Python's `repr`
    needs no rewriting: the reference starts from `str(value)` and only drops a trailing `.0`
    when `repr` has no exponent (|value| from 1e-4 up to 1e16), so there the two agree by its
    own construction. Zero (the reference writes -0.0 as `0`), exponents, NaN and infinity go
    to the reference."""
    text = repr(value)
    if not value:
        return rfc8785.dumps(value)
    if "e" in text or "n" in text:  # 1e+16, 1e-05; nan, inf
        return rfc8785.dumps(value)
    return text[:-2] if text.endswith(".0") else text


def canonical_reference(value: Any) -> bytes:
    """The `rfc8785` package's bytes, with integers beyond 2**53 written as their exact digits.

    Raises CanonicalizationError, also for a key holding a lone surrogate, which the package
    lets through as a UnicodeEncodeError (it checks only values).
    """
    allow_deep_nesting()
    try:
        try:
            return rfc8785.dumps(value)
        except rfc8785.IntegerDomainError:
            return _with_exact_integers(value)
    except UnicodeEncodeError:
        raise CanonicalizationError("input contains non-UTF-8 codepoints") from None


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
