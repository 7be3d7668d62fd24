"""Checking a JSON Schema document (a record schema, the policy schema) against its meta-schema.

The pure-Python `jsonschema.Draft202012Validator.check_schema` took 0.12 s for the 15 schema
files the auditor ships, once in every process that loads them (every run and most commands).
jsonschema-rs checks them in about a millisecond, but it does not check that a `pattern` is a
regular expression (the meta-schema's `format: regex`), which the pure-Python check does with
Python's `re`, and the differential baseline (`validation.reference_validator`) needs. So a
schema passes when jsonschema-rs accepts it and Python compiles its patterns; anything else gets
the pure-Python check, whose error names the place in the schema and says what is wrong there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import jsonschema_rs


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raises `jsonschema.exceptions.SchemaError` when `schema` breaks its meta-schema, as the
    pure-Python check reads it. (Where only jsonschema-rs would refuse a schema, and no such case
    is known, compiling it fails with jsonschema-rs's own error.)"""
    if jsonschema_rs.meta.is_valid(schema) and _patterns_compile(schema):
        return
    jsonschema.Draft202012Validator.check_schema(schema)


def _patterns_compile(schema: Any) -> bool:
    """Whether Python compiles every string under a `pattern` key and every `patternProperties`
    key (a string that only looks like one, in an example, costs the full check)."""
    try:
        for pattern in _patterns(schema):
            re.compile(pattern)
    except re.error:
        return False
    return True


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "patternProperties" and isinstance(value, Mapping):
                yield from (name for name in value if isinstance(name, str))
            yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)
