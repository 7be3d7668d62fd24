"""Schema validation of raw records: the schema files, per-type dispatch, and schema findings.

The schemas live in `schemas/` (draft 2020-12): the envelope, one file per body type, shared
definitions, `record.json` which ties them together by dispatching each body on its type, and the
strict-profile overlay. They are checked once with `jsonschema` when loaded and compiled with
`jsonschema-rs` for the hot path.

Most records are valid, so `RecordValidator.check` first asks one compiled whole-record validator
`is_valid` (a microsecond or two; compiled from jsonschema-rs's canonical form of the schema, which
says the same yes or no in fewer steps); only a record that fails is explained, by validating the
envelope and then each body against the schema of its own type, so that every finding carries the
`$id` of the schema it broke and the exact JSON Pointer of the failing value.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import jsonschema
import jsonschema_rs
import orjson
import referencing
from jsonschema.exceptions import SchemaError

from auditor import records
from auditor.errors import ConfigError
from auditor.findings import Finding
from auditor.jsonl import ParsedLine, read_file
from auditor.metaschema import check_schema
from auditor.resources import schemas_dir
from auditor.sources.local import local_files

PROFILES = ("loose", "strict")
DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE = "https://schemas.easemob-auditor.dev/"
RECORD_ID = BASE + "record.json"
ENVELOPE_ID = BASE + "record/envelope.json"
COMMON_ID = BASE + "record/common.json"
STRICT_ID = BASE + "record/strict.json"
SEVERITY = "medium"
PARSE_RULE = "jsonl"
_MESSAGE_LIMIT = 200
_SCHEMA_GLOBS = ("record*.json", "body-*.json")


@dataclass(frozen=True, slots=True)
class SchemaFile:
    """One loaded schema file: where it came from, its `$id`, its contents and its SHA-256."""

    path: Path
    id: str
    contents: Mapping[str, Any]
    sha256: str


def load_schemas(directory: Path | None = None) -> dict[str, SchemaFile]:
    """The record schemas of `directory` (default: the installed ones), keyed by `$id`.

    Each file must be JSON, a valid draft 2020-12 schema according to `jsonschema`, and carry an
    `$id` under the auditor's base URI; otherwise `ConfigError` names the file and the problem.
    """
    return dict(_load_schemas((directory or schemas_dir()).resolve()))


@functools.lru_cache(maxsize=8)
def _load_schemas(directory: Path) -> tuple[tuple[str, SchemaFile], ...]:
    paths = sorted({path for pattern in _SCHEMA_GLOBS for path in directory.glob(pattern)})
    loaded: dict[str, SchemaFile] = {}
    for path in paths:
        schema = _read_schema(path)
        if schema.id in loaded:
            raise ConfigError(f"{path}: $id {schema.id} is also used by {loaded[schema.id].path}")
        loaded[schema.id] = schema
    for required in (RECORD_ID, ENVELOPE_ID):
        if required not in loaded:
            raise ConfigError(f"{directory}: no schema file has $id {required}; reinstall")
    for schema in loaded.values():
        for reference in _references(schema.contents):
            target = urljoin(schema.id, reference).partition("#")[0]
            if target and target not in loaded:
                raise ConfigError(
                    f"{schema.path}: $ref {reference!r} points to {target}, "
                    "which no schema file defines"
                )
    return tuple(loaded.items())


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for key, value in node.items():
            if key not in ("const", "enum"):
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _read_schema(path: Path) -> SchemaFile:
    data = path.read_bytes()
    try:
        contents = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ConfigError(f"{path}: not JSON ({error})") from None
    if not isinstance(contents, dict):
        raise ConfigError(f"{path}: a schema file must hold a JSON object")
    if contents.get("$schema") != DRAFT:
        raise ConfigError(f"{path}: $schema must be {DRAFT}")
    schema_id = contents.get("$id")
    if not isinstance(schema_id, str) or not schema_id.startswith(BASE):
        raise ConfigError(f"{path}: $id must be a URI under {BASE}")
    try:
        check_schema(contents)
    except SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        raise ConfigError(f"{path}: not a valid JSON Schema at {where}: {error.message}") from None
    return SchemaFile(path, schema_id, contents, hashlib.sha256(data).hexdigest())


def whole_record_schema(profile: str = "loose", schemas: Path | None = None) -> dict[str, Any]:
    """The schema a whole record of `profile` must meet: `record.json`, and in the strict
    profile `strict.json` beside it."""
    _check_profile(profile)
    if profile == "strict":
        return {"$schema": DRAFT, "allOf": [{"$ref": RECORD_ID}, {"$ref": STRICT_ID}]}
    return dict(load_schemas(schemas)[RECORD_ID].contents)


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; use one of: {', '.join(PROFILES)}")


class RecordValidator:
    """Checks records against the schemas of one profile; build once per run, call per record.

    `loose` (the default) accepts what Easemob really sends: numbers as strings, `customExts` as a
    list of one-key maps, `ext` absent, sender and receiver at the top level only, the legacy
    entity fields. `strict` reports each of those as a finding of its own (rule `strict.json`).
    """

    def __init__(self, profile: str = "loose", schemas: Path | None = None) -> None:
        _check_profile(profile)
        self.profile = profile
        self._schemas_dir = schemas
        files = load_schemas(schemas)
        if profile == "strict" and STRICT_ID not in files:
            raise ConfigError(f"{schemas or schemas_dir()}: the strict profile needs {STRICT_ID}")
        self._files = {
            schema_id: schema
            for schema_id, schema in files.items()
            if profile == "strict" or schema_id != STRICT_ID
        }
        try:
            registry = jsonschema_rs.Registry(
                [(schema_id, dict(schema.contents)) for schema_id, schema in self._files.items()]
            )
        except ValueError as error:
            raise ConfigError(f"{schemas or schemas_dir()}: {_first_line(error)}") from None
        contents = [schema.contents for schema in self._files.values()]
        compiled = {
            schema_id: _Compiled.build(schema_id, schema.contents, registry, contents, schema.path)
            for schema_id, schema in self._files.items()
            if schema_id != RECORD_ID
        }
        self._bodies = {
            schema_id.removeprefix(BASE + "body/").removesuffix(".json"): schema
            for schema_id, schema in compiled.items()
            if schema_id.startswith(BASE + "body/")
        }
        self._envelope = compiled[ENVELOPE_ID]
        self._strict = compiled.get(STRICT_ID)
        self._whole = _Compiled.build(
            RECORD_ID,
            whole_record_schema(profile, schemas),
            registry,
            contents,
            self._files[STRICT_ID if profile == "strict" else RECORD_ID].path,
            yes_no=yes_no_schema,
        )
        self._is_valid = self._whole.is_valid
        self._descriptions: dict[str, str] = {}

    def __reduce__(self):
        return (RecordValidator, (self.profile, self._schemas_dir))

    @property
    def body_types(self) -> frozenset[str]:
        """The message types that have a schema of their own."""
        return frozenset(self._bodies)

    def schema_digests(self) -> dict[str, str]:
        """SHA-256 of each schema file this profile uses, keyed by file name (for bag-info)."""
        return {schema.path.name: schema.sha256 for schema in self._files.values()}

    def check(self, record: Any) -> list[Finding]:
        """Every schema finding of `record`: a new list (empty when it is valid) the caller owns."""
        try:
            if self._is_valid(record):
                return []
            return self._explain(record)
        except ValueError as error:  # jsonschema-rs reads at most about 250 levels of nesting
            why = (  # nor text that is not Unicode, which the exact JSON parser lets through
                "it holds a lone surrogate, which is not Unicode"
                if isinstance(error, UnicodeError)
                else "nested too deeply for the validator"
            )
            return [
                Finding(
                    msg_id=records.msg_id(record) if isinstance(record, dict) else None,
                    category="schema",
                    rule=RECORD_ID,
                    severity=SEVERITY,
                    message=f"record: not checked against the schemas ({error}): {why}",
                    pointer="",
                    details={"profile": self.profile},
                )
            ]

    def _explain(self, record: Any) -> list[Finding]:
        record_id = records.msg_id(record) if isinstance(record, dict) else None
        kind = records.message_type(record) if isinstance(record, dict) else "none"
        findings = [
            self._finding(record_id, ENVELOPE_ID, kind, error, "")
            for error in self._envelope.errors(record)
        ]
        for position, body in _bodies(record):
            body_kind = records.body_type(body)
            if not body_kind:
                continue  # the envelope reports a body without a usable type
            prefix = f"/payload/bodies/{position}"
            schema = self._bodies.get(body_kind)
            if schema is None:
                findings.append(self._unknown_type(record_id, body_kind, prefix))
                continue
            findings.extend(
                self._finding(record_id, schema.id, body_kind, error, prefix)
                for error in schema.errors(body)
            )
        if self._strict is not None:
            seen = {_dedupe_key(finding) for finding in findings}
            for error in self._strict.errors(record):
                finding = self._finding(record_id, STRICT_ID, kind, error, "")
                if _dedupe_key(finding) not in seen:
                    findings.append(finding)
        if not findings:
            findings = [
                self._finding(record_id, RECORD_ID, kind, error, "")
                for error in self._whole.errors(record)
            ]
        return findings

    def _unknown_type(self, record_id: str | None, kind: str, prefix: str) -> Finding:
        pointer = prefix + "/type"
        return Finding(
            msg_id=record_id,
            category="schema",
            rule=RECORD_ID,
            severity=SEVERITY,
            message=f"{_location(pointer)}: unknown message type {kind!r}",
            pointer=pointer,
            details={
                "keyword": "anyOf",
                "type": kind,
                "profile": self.profile,
                "schema": RECORD_ID + "#/$defs/body/else/anyOf",
            },
        )

    def _finding(
        self,
        record_id: str | None,
        rule: str,
        kind: str,
        error: jsonschema_rs.ValidationError,
        prefix: str,
    ) -> Finding:
        pointer = prefix + "".join(f"/{_escape(part)}" for part in error.instance_path)
        keyword = error.kind.name
        location = str(error.absolute_keyword_location)
        if keyword in ("not", "falseSchema"):
            text = self._description(location, keyword) or error.message
        else:
            text = error.message
        if len(text) > _MESSAGE_LIMIT:
            text = text[: _MESSAGE_LIMIT - 1] + "…"
        if rule == STRICT_ID:
            text += " (strict profile)"
        return Finding(
            msg_id=record_id,
            category="schema",
            rule=rule,
            severity=SEVERITY,
            message=f"{_location(pointer)}: {text}",
            pointer=pointer,
            details={
                "keyword": keyword,
                "type": kind,
                "profile": self.profile,
                "schema": location,
                **({"property": error.kind.property} if keyword == "required" else {}),
            },
        )

    def _description(self, location: str, keyword: str) -> str:
        """The `description` of the subschema whose `not`/`false` failed: why it is refused."""
        if location not in self._descriptions:
            schema_id, _, fragment = location.partition("#")
            node: Any = self._files[schema_id].contents if schema_id in self._files else None
            parts = [part.replace("~1", "/").replace("~0", "~") for part in fragment.split("/")[1:]]
            if keyword == "not" and parts:
                parts = parts[:-1]
            for part in parts:
                node = node.get(part) if isinstance(node, dict) else None
            found = node.get("description") if isinstance(node, dict) else None
            self._descriptions[location] = found if isinstance(found, str) else ""
        return self._descriptions[location]


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One schema compiled twice: as written, for errors that point into its file, and with its
    references inlined (or in the form `yes_no` gives), for a fast yes/no (`iter_errors` costs a
    few microseconds even when there is nothing to report, so it runs only after `is_valid` said
    no)."""

    id: str
    is_valid: Callable[[Any], bool]
    iter_errors: Callable[[Any], Iterator[jsonschema_rs.ValidationError]]

    @classmethod
    def build(
        cls,
        schema_id: str,
        schema: Mapping[str, Any],
        registry: jsonschema_rs.Registry,
        files: list[Mapping[str, Any]],
        path: Path,
        yes_no: Callable[..., Mapping[str, Any]] | None = None,
    ) -> _Compiled:
        as_written = _compile(schema, registry, path)
        try:
            fast = _compile((yes_no or _inlined)(schema, registry, files), registry, path)
        except ConfigError:  # inlining only saves time; the schema as written is what counts
            fast = as_written
        return cls(schema_id, fast.is_valid, as_written.iter_errors)

    def errors(self, instance: Any) -> Iterable[jsonschema_rs.ValidationError]:
        return () if self.is_valid(instance) else self.iter_errors(instance)


def _compile(schema: Mapping[str, Any], registry: jsonschema_rs.Registry, path: Path):
    try:
        return jsonschema_rs.validator_for(dict(schema), registry=registry)
    except ValueError as error:
        raise ConfigError(f"{path}: cannot be compiled: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


_ANNOTATIONS = frozenset({"$ref", "$id", "$schema", "$comment", "title", "description"})


def _inlined(
    schema: Mapping[str, Any], registry: jsonschema_rs.Registry, files: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any]:
    """`schema` with every `$ref` replaced by its target, which jsonschema-rs checks faster.

    `jsonschema_rs.dereference` replaces a `$ref` object wholesale, dropping keywords beside the
    `$ref` (which 2020-12 applies too), so it is used only when those are mere annotations.
    """
    if not all(_refs_stand_alone(node) for node in (schema, *files)):
        return schema
    return jsonschema_rs.dereference(dict(schema), registry=registry)


def yes_no_schema(
    schema: Mapping[str, Any], registry: jsonschema_rs.Registry, files: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any]:
    """`schema` inlined, then in jsonschema-rs's canonical form: the same verdicts with fewer
    keywords to check (an `if`/`else` split into two branches, each type's bounds in one place),
    19 % fewer instructions a whole record than inlined alone (bench/README.md).

    Only the whole-record schema takes this form: it is checked for every record, the others
    only for records it refuses, and working out a canonical form costs about 20 ms. A schema the
    canonical form cannot take stays inlined.
    """
    inlined = _inlined(schema, registry, files)
    canonical = _canonical_text(orjson.dumps(inlined))
    return inlined if canonical is None else orjson.loads(canonical)


@functools.lru_cache(maxsize=8)
def _canonical_text(inlined: bytes) -> bytes | None:
    """Kept per process, so that the workers forked after the coordinator built its validator
    compile the canonical form without working it out again. A `$ref` left in place (a schema
    that could not be inlined) cannot be resolved here, so such a schema stays as it was."""
    try:
        canonical = jsonschema_rs.canonicalize(orjson.loads(inlined), offline=True)
    except (ValueError, jsonschema_rs.ReferencingError):  # a reference, or a form it cannot take
        return None
    schema = canonical.to_json_schema()
    return orjson.dumps(schema) if isinstance(schema, dict) else None


def _refs_stand_alone(node: Any) -> bool:
    if isinstance(node, list):
        return all(_refs_stand_alone(item) for item in node)
    if not isinstance(node, dict):
        return True
    if "$ref" in node and not node.keys() <= _ANNOTATIONS:
        return False
    return all(
        _refs_stand_alone(value) for key, value in node.items() if key not in ("const", "enum")
    )


def _bodies(record: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each body that is an object, with its position in `payload.bodies`."""
    payload = record.get("payload") if isinstance(record, dict) else None
    found = payload.get("bodies") if isinstance(payload, dict) else None
    if isinstance(found, list):
        for position, body in enumerate(found):
            if isinstance(body, dict):
                yield position, body


def _dedupe_key(finding: Finding) -> tuple[str | None, Any]:
    """Strict findings that repeat a loose one: same value, or the same missing property."""
    return finding.pointer, finding.details.get("property")


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


@functools.lru_cache(maxsize=4096)
def _location(pointer: str) -> str:
    """`/payload/bodies/0/lat` -> `payload.bodies[0].lat`, the way a reviewer reads a path."""
    if not pointer:
        return "record"
    text = ""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text


def parse_finding(line: ParsedLine) -> Finding:
    """The finding for a line that could not be read as a JSON object."""
    return Finding(
        msg_id=None,
        category="parse",
        rule=PARSE_RULE,
        severity=SEVERITY,
        message=f"{line.path}:{line.line}: {line.error}",
        pointer=None,
        details={"file": line.path, "line": line.line},
    )


def reference_registry(schemas: Path | None = None) -> referencing.Registry:
    """The schema files as a `referencing` registry, for validating with plain `jsonschema`."""
    return referencing.Registry().with_resources(
        (schema_id, referencing.Resource.from_contents(dict(schema.contents)))
        for schema_id, schema in load_schemas(schemas).items()
    )


def reference_validator(
    profile: str = "loose", schemas: Path | None = None
) -> jsonschema.Draft202012Validator:
    """The whole-record schema of `profile` in plain `jsonschema`: the differential baseline."""
    registry = reference_registry(schemas)
    return jsonschema.Draft202012Validator(whole_record_schema(profile, schemas), registry=registry)


@dataclass(frozen=True, slots=True)
class TypeCount:
    """How many records of one message type were read, and how many of them were valid."""

    records: int = 0
    valid: int = 0

    @property
    def invalid(self) -> int:
        return self.records - self.valid


@dataclass(frozen=True, slots=True)
class ValidationSummary:
    """What `validate_files` saw: records per message type, lines not readable, findings."""

    profile: str
    files: int
    by_type: Mapping[str, TypeCount] = field(default_factory=dict)
    unparsed: int = 0
    findings: int = 0

    @property
    def records(self) -> int:
        return sum(count.records for count in self.by_type.values())

    @property
    def invalid(self) -> int:
        return sum(count.invalid for count in self.by_type.values())

    @property
    def clean(self) -> bool:
        return self.invalid == 0 and self.unparsed == 0


def validate_files(
    inputs: Iterable[str | Path],
    profile: str = "loose",
    on_finding: Callable[[Finding], None] | None = None,
    validator: RecordValidator | None = None,
) -> ValidationSummary:
    """Validates every record of JSONL/gzip files, pulled folders or bags (the records they
    archived); findings go to `on_finding`.

    A line that is not a JSON object becomes a `parse` finding and reading goes on. A file that
    is missing or whose gzip stream is corrupt raises `InputError` naming it. In a folder, the
    `checkpoint.json` and `conflicts.jsonl` that `pull` writes are not records and are skipped.
    """
    from auditor.bag_inputs import input_files, unwrapped  # a run's workers need neither

    validator = validator or RecordValidator(profile)
    paths = input_files(inputs, "validate", local_files)
    emit = on_finding or (lambda finding: None)
    seen: Counter[str] = Counter()
    valid: Counter[str] = Counter()
    unparsed = found = 0
    for path, archived in paths:
        for line in read_file(path):
            if archived:
                line = unwrapped(line)
            if line.record is None:
                unparsed += 1
                found += 1
                emit(parse_finding(line))
                continue
            kind = records.message_type(line.record)
            seen[kind] += 1
            findings = validator.check(line.record)
            if findings:
                found += len(findings)
                for finding in findings:
                    emit(finding)
            else:
                valid[kind] += 1
    return ValidationSummary(
        profile=validator.profile,
        files=len(paths),
        by_type={kind: TypeCount(seen[kind], valid[kind]) for kind in sorted(seen)},
        unparsed=unparsed,
        findings=found,
    )
