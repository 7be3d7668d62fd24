"""One archived records line read back as its `{record, salt, seq}` object.

Its own module so that what reads a bag's lines again without verifying the bag (`due --policy`
judging them under today's holds) does not import the verifier and, with it, cryptography.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from auditor.archive import layout
from auditor.archive.canonical import CanonicalizationError, canonical


def parse_record_line(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The `{record, salt, seq}` object of an archived line, or why it is not one.

    orjson parses first (fast); since it reads integers beyond 64 bits as floats, a line that
    does not re-canonicalise is parsed again with the exact `json` module before it is blamed.
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return None, f"not JSON ({error})"
    if not isinstance(value, dict) or set(value) != {"record", "salt", "seq"}:
        return None, 'not an object with exactly the keys "record", "salt" and "seq"'
    seq, salt = value["seq"], value["salt"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return None, f"seq {seq!r} is not a leaf index"
    if not isinstance(salt, str) or not layout.SALT.fullmatch(salt):
        return None, "salt is not 32 lowercase hex characters"
    if _canonical_or_none(value) != line:
        try:
            exact = json.loads(line, parse_constant=_refuse_constant)
        except ValueError:
            exact = None
        if exact is None or _canonical_or_none(exact) != line:
            return value, "not in RFC 8785 canonical form"
        value = exact
    return value, None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _canonical_or_none(value: Any) -> bytes | None:
    try:
        return canonical(value)
    except (CanonicalizationError, ValueError):
        return None
