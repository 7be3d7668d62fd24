"""The schema files themselves: well-formed, documented, consistent, and refused when broken."""

import json
import shutil
import subprocess

import pytest

from auditor.errors import ConfigError
from auditor.resources import schemas_dir
from auditor.validation import (
    BASE,
    COMMON_ID,
    DRAFT,
    ENVELOPE_ID,
    RECORD_ID,
    STRICT_ID,
    RecordValidator,
    load_schemas,
)

SCHEMAS = load_schemas()
BODY_TYPES = {"txt", "img", "loc", "audio", "video", "file", "cmd", "custom", "combine"}


def _properties(node, path=""):
    """Every (path, subschema) declared under a `properties` keyword, at any depth.

    Conditions (`if`) are left out: they test a value, they do not describe one.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, subschema in value.items():
                    yield f"{path}/properties/{name}", subschema
            if key not in ("const", "enum", "if"):
                yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _properties(item, f"{path}/{index}")


def _refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node
        for key, value in node.items():
            if key not in ("const", "enum"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_the_record_schemas_are_the_envelope_the_shared_parts_the_overlay_and_one_per_type():
    expected = {RECORD_ID, ENVELOPE_ID, STRICT_ID, COMMON_ID}
    expected |= {f"{BASE}body/{kind}.json" for kind in BODY_TYPES}
    assert set(SCHEMAS) == expected
    assert RecordValidator().body_types == BODY_TYPES


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_each_schema_file_declares_draft_2020_12_an_id_a_title_and_a_description(schema_id):
    contents = SCHEMAS[schema_id].contents
    assert contents["$schema"] == DRAFT
    assert contents["$id"] == schema_id
    assert contents["title"].strip() and contents["description"].strip()


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_every_property_has_a_title_and_a_description(schema_id):
    undocumented = [
        path
        for path, subschema in _properties(SCHEMAS[schema_id].contents)
        if not (subschema.get("title") and subschema.get("description"))
    ]
    assert undocumented == []


def test_no_schema_relies_on_format_so_every_validator_applies_the_same_rules():
    text = "".join(json.dumps(schema.contents) for schema in SCHEMAS.values())
    assert '"format"' not in text


def test_every_ref_stands_alone_so_inlining_it_loses_nothing():
    """The fast path inlines `$ref`s; keywords beside one would be dropped, so only annotations."""
    crowded = [
        (schema_id, node)
        for schema_id, schema in SCHEMAS.items()
        for node in _refs(schema.contents)
        if set(node) - {"$ref", "title", "description"}
    ]
    assert crowded == []


def test_record_json_dispatches_to_exactly_the_body_schemas_that_exist():
    body = SCHEMAS[RECORD_ID].contents["$defs"]["body"]
    targets = {body["then"]["$ref"]} | {branch["$ref"] for branch in body["else"]["anyOf"]}
    assert targets == {f"body/{kind}.json" for kind in BODY_TYPES}


def test_schema_digests_match_sha256sum_of_the_files():
    digests = RecordValidator("strict").schema_digests()
    names = sorted(digests)
    output = subprocess.run(
        ["sha256sum", *names], cwd=schemas_dir(), capture_output=True, text=True, check=True
    ).stdout
    expected = dict(reversed(line.split("  ", 1)) for line in output.splitlines())
    assert digests == expected
    assert len(digests) == len(SCHEMAS)


def test_the_loose_profile_does_not_use_the_strict_overlay():
    assert "record-strict.json" not in RecordValidator("loose").schema_digests()


@pytest.fixture
def schema_copy(tmp_path):
    target = tmp_path / "schemas"
    shutil.copytree(schemas_dir(), target)
    return target


def test_a_schema_file_that_is_not_json_is_refused_naming_the_file(schema_copy):
    (schema_copy / "body-loc.json").write_text('{"$schema": ', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"body-loc\.json: not JSON"):
        RecordValidator(schemas=schema_copy)


def test_a_schema_that_breaks_the_metaschema_is_refused_naming_the_file_and_place(schema_copy):
    path = schema_copy / "body-img.json"
    contents = json.loads(path.read_text(encoding="utf-8"))
    contents["properties"]["url"]["type"] = "link"
    path.write_text(json.dumps(contents), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"body-img\.json: not a valid JSON Schema at properties/url/type"
    ):
        RecordValidator(schemas=schema_copy)


def test_a_reference_to_a_missing_schema_is_refused_naming_the_file(schema_copy):
    path = schema_copy / "body-cmd.json"
    contents = json.loads(path.read_text(encoding="utf-8"))
    contents["properties"]["action"] = {
        "$ref": "../record/missing.json",
        "title": "Action",
        "description": "Broken on purpose.",
    }
    path.write_text(json.dumps(contents), encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"body-cmd\.json: \$ref '\.\./record/missing\.json' points"
    ):
        RecordValidator(schemas=schema_copy)


def test_a_missing_envelope_is_refused(schema_copy):
    (schema_copy / "record-envelope.json").unlink()
    with pytest.raises(ConfigError, match=r"no schema file has \$id .*record/envelope\.json"):
        RecordValidator(schemas=schema_copy)


def test_an_unknown_profile_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match="unknown profile 'lenient'; use one of: loose, strict"):
        RecordValidator("lenient")


def test_a_keyword_beside_a_ref_in_a_schema_of_ones_own_still_counts(schema_copy):
    """Such a schema is neither inlined nor put in canonical form for the yes/no check (either
    would drop the keyword): the schema as written answers, and refuses the record."""
    path = schema_copy / "record-envelope.json"
    contents = json.loads(path.read_text(encoding="utf-8"))
    contents["properties"]["timestamp"]["minimum"] = 1_000
    path.write_text(json.dumps(contents), encoding="utf-8")
    record = {"msg_id": "1", "timestamp": 5, "chat_type": "chat", "from": "a", "to": "b"}
    record["payload"] = {"bodies": [{"type": "txt", "msg": "hi"}]}
    assert RecordValidator().check(record) == []
    findings = RecordValidator(schemas=schema_copy).check(record)
    assert [(f.pointer, f.details["keyword"]) for f in findings] == [("/timestamp", "minimum")]
