"""The meta-schema check: jsonschema-rs first, the pure-Python check for what it leaves out."""

from __future__ import annotations

import copy
import json

import jsonschema
import jsonschema_rs
import pytest
from jsonschema.exceptions import SchemaError

from auditor.metaschema import check_schema
from auditor.resources import schemas_dir

IMG = json.loads((schemas_dir() / "body-img.json").read_text(encoding="utf-8"))


def shipped() -> list[dict]:
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(schemas_dir().rglob("*.json"))
    ]


def test_every_shipped_schema_passes_both_libraries():
    schemas = shipped()
    assert len(schemas) >= 14
    for schema in schemas:
        check_schema(schema)
        jsonschema.Draft202012Validator.check_schema(schema)


def _mutated(path: tuple[str, ...], value) -> dict:
    schema = copy.deepcopy(IMG)
    node = schema
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return schema


MUTATIONS = [
    (("properties", "url", "type"), "link"),
    (("properties", "url", "pattern"), "["),  # jsonschema-rs does not check format: regex
    (("properties", "url", "pattern"), "\\p{Han}"),  # Rust's regex syntax, not Python's
    (("properties", "url", "pattern"), "a{2,1}"),
    (("properties", "url", "pattern"), "^https?://"),
    (("patternProperties",), {"[": {}}),
    (("patternProperties",), {"^x-": {"type": "string"}}),
    (("properties", "url", "minLength"), -1),
    (("properties", "url", "format"), 5),
    (("$anchor",), "1bad"),
    (("examples",), [{"pattern": "["}]),  # data that only looks like a pattern
]


@pytest.mark.parametrize(("path", "value"), MUTATIONS)
def test_a_schema_is_refused_as_the_pure_python_check_refuses_it_with_its_place(path, value):
    schema = _mutated(path, value)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        python_error = None
    except SchemaError as error:
        python_error = error
    # jsonschema-rs never refuses what the pure-Python check accepts (it is only asked first)
    assert jsonschema_rs.meta.is_valid(schema) or python_error is not None

    if python_error is None:
        check_schema(schema)
        return
    with pytest.raises(SchemaError) as caught:
        check_schema(schema)
    assert list(caught.value.absolute_path) == list(python_error.absolute_path)
    assert caught.value.message == python_error.message
