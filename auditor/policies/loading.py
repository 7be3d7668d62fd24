"""Reading a policy file: YAML with line numbers, its JSON Schema, then checks a schema can't do.

Every error is one `ConfigError` naming the file, the line and the field, the way a compiler
would: `policies.yaml:14: retention.rules[2].keep_for: '6 mnths' is not a duration (...)`.
YAML 1.1's surprises are switched off: `2026-11-01` stays a string, `no` and `on` stay words,
`007` stays `007` (not octal 7), `3.10` stays `3.10`, and a key given twice is an error rather
than silently overwritten.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

from auditor.errors import AuditorError, ConfigError
from auditor.findings import SEVERITY_RANK
from auditor.metaschema import check_schema
from auditor.operator_files import home_expanded, read_operator_file
from auditor.partitions import parse_instant
from auditor.policies.durations import Duration
from auditor.policies.model import (
    DetectorRule,
    Hold,
    KeywordList,
    PatternRule,
    Policy,
    RetentionRule,
    Term,
)
from auditor.policies.scope import IdPattern, Scope
from auditor.policies.term_files import (
    KEYS,
    TermFile,
    archived_name,
    term_count,
    term_file,
    term_lines,
)
from auditor.resources import schemas_dir
from auditor.yamlsafe import SafeLoader, located_problem

FieldPath = tuple[str | int, ...]
_Parsed = TypeVar("_Parsed", int, list[tuple[str, int]])
# Reads a term file: (path as the policy writes it, where a bag keeps it) -> (bytes, name for
# errors); raises an `AuditorError` naming what is wrong.
TermReader = Callable[[str, str], tuple[bytes, str]]
_DROPPED_TAGS = {
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:value",
    "tag:yaml.org,2002:yaml",
}


class _Loader(SafeLoader):
    """Safe YAML with dates kept as text, only true/false as booleans, and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if not isinstance(node, yaml.MappingNode):  # `!!set [1]`: the base class says so
            return super().construct_mapping(node, deep)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int):
                continue  # the base class refuses what cannot be a key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(  # plain decimals only: `007` and `1_000` stay text, as ids do
    "tag:yaml.org,2002:int", re.compile(r"^-?(?:0|[1-9][0-9]*)$"), list("-0123456789")
)


class _Source:
    """The parsed file and where each value sits in it."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines: dict[FieldPath, int] = {}
        self.key_lines: dict[FieldPath, int] = {}
        try:
            node = self._parse(text)
        except yaml.YAMLError as error:
            line, problem = located_problem(error, text)
            raise ConfigError(f"{name}:{line or 1}: not valid YAML: {problem}") from None
        if node is not None:
            self._index(node, ())

    def _parse(self, text: str) -> yaml.Node | None:
        """The document's root node, its value kept as `data`. The loader is made inside the
        caller's `try`: PyYAML refuses a NUL or other unprintable character as it is made."""
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            self.data = loader.construct_document(node) if node is not None else None
            return node
        finally:
            loader.dispose()

    def _index(self, node: yaml.Node, path: FieldPath) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*path, key_node.value)
                self.key_lines.setdefault(child, key_node.start_mark.line + 1)
                self._index(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._index(item, (*path, index))

    def line(self, path: FieldPath, key: bool = False) -> int:
        if key and path in self.key_lines:
            return self.key_lines[path]
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def error(self, path: FieldPath, message: str, key: bool = False) -> ConfigError:
        where = dotted(path)
        prefix = f"{self.name}:{self.line(path, key)}: "
        return ConfigError(prefix + (f"{where}: {message}" if where else message))


def located(policy: Policy) -> _Source:
    """The policy file's values and the line of each (`.data`, `.line(path)`), parsed again
    from the bytes it was loaded from: for `auditor policy check` to name a value's own line."""
    return _Source(policy.path, policy.raw.decode("utf-8-sig"))


def dotted(path: FieldPath) -> str:
    """`("retention", "rules", 2, "keep_for")` as `retention.rules[2].keep_for`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@cache
def policy_schema() -> dict[str, Any]:
    path = schemas_dir() / "policy.schema.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as error:
        raise ConfigError(f"{path}: the policy schema is broken: {error}") from None
    return schema


def _schema_error(source: _Source, error: jsonschema.ValidationError) -> ConfigError:
    path: FieldPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("x-error")
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed), key=str)[0]
        return source.error(
            (*path, extra),
            f"unknown field {extra!r} (expected one of: {', '.join(allowed)})",
            key=True,
        )
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return source.error(path, f"missing required field {missing[0]!r}")
    if error.validator == "anyOf" and custom is None:
        options = [" or ".join(each.get("required", [])) for each in error.validator_value]
        return source.error(path, f"needs at least one of: {', '.join(options)}")
    if custom is not None:
        if path and path[-1] == "keep_for" and _ZERO_PERIOD.match(str(error.instance)):
            return source.error(
                path,
                f"{_show(error.instance)} is no period: keep_for is at least 1 of its unit "
                "(1h at the shortest)",
            )
        return source.error(path, f"{_show(error.instance)} {custom}")
    if error.validator == "enum":
        choices = ", ".join(str(choice) for choice in error.validator_value)
        return source.error(path, f"{_show(error.instance)} is not one of: {choices}")
    if error.validator == "type":
        wanted = error.validator_value
        words = [
            _TYPE_WORDS.get(each, each)
            for each in (wanted if isinstance(wanted, list) else [wanted])
        ]
        return source.error(path, f"{_show(error.instance)} is not {' or '.join(words)}")
    if error.validator in ("minLength", "minItems") and error.validator_value == 1:
        return source.error(path, f"{_show(error.instance)} is empty")
    return source.error(path, error.message)


_ZERO_PERIOD = re.compile(r"^\s*0+\s*(?:h|d|w|mo|y)\s*$")
# JSON Schema's types in the words of the YAML an author writes (`dict is not of type array`
# was Python's and JSON's at once).
_TYPE_WORDS = {
    "array": "a list",
    "object": "a mapping (key: value)",
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
}


def _show(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    return repr(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _values(value: Any) -> list[str]:
    return [_text(item) for item in (value if isinstance(value, list) else [value])]


class _Builder:
    """Turns the validated data into model values, raising located errors for what is wrong."""

    def __init__(self, source: _Source, read_terms: TermReader, matchers: bool = True) -> None:
        self.source = source
        self.ids: dict[str, FieldPath] = {}
        self.read_terms = read_terms
        self.term_files: list[TermFile] = []
        self.matchers = matchers

    def claim(self, identifier: str, path: FieldPath) -> str:
        if identifier in self.ids:
            first = self.source.line(self.ids[identifier])
            raise self.source.error(
                path, f"id {identifier!r} is already used on line {first}; ids must be unique"
            )
        self.ids[identifier] = path
        return identifier

    def instant(self, value: str, path: FieldPath) -> int:
        try:
            return parse_instant(value)
        except ConfigError:
            raise self.source.error(
                path, f"{value!r} is not a date (use ISO 8601 such as 2026-11-01)"
            ) from None

    def scope(self, data: dict[str, Any], path: FieldPath) -> Scope:
        def ids(key: str) -> IdPattern | None:
            return IdPattern.of(_values(data[key])) if key in data else None

        def names(key: str) -> frozenset[str] | None:
            return frozenset(_values(data[key])) if key in data else None

        sent = data.get("sent") or {}
        since = self.instant(sent["since"], (*path, "sent", "since")) if "since" in sent else None
        until = self.instant(sent["until"], (*path, "sent", "until")) if "until" in sent else None
        return Scope(
            chat_types=names("chat_type"),
            senders=ids("sender"),
            receivers=ids("receiver"),
            groups=ids("group"),
            message_types=names("message_type"),
            sent_since_ms=since,
            sent_until_ms=until,
            participants=ids("participant"),
        )

    def rule(self, data: dict[str, Any], path: FieldPath, kind: str, order: int) -> RetentionRule:
        fallback = {"floor": "statutory-floor", "default": "default"}.get(kind, "")
        identifier = self.claim(data.get("id", fallback), (*path, "id"))
        return RetentionRule(
            id=identifier,
            kind=kind,
            keep_for=Duration.parse(data["keep_for"]),
            then=data.get("then", "keep"),
            scope=self.scope(data.get("scope", {}), (*path, "scope")),
            order=order,
            line=self.source.line(path),
            severity=data.get("severity", "medium"),
            description=data.get("description", ""),
        )

    def hold(self, data: dict[str, Any], path: FieldPath) -> Hold:
        starts = self.instant(data["starts"], (*path, "starts"))
        ends = data.get("ends")
        ends_ms = self.instant(ends, (*path, "ends")) if ends is not None else None
        if ends_ms is not None and ends_ms <= starts:
            raise self.source.error((*path, "ends"), f"{ends!r} is not after starts")
        return Hold(
            id=self.claim(data["id"], (*path, "id")),
            reason=data["reason"],
            scope=self.scope(data["scope"], (*path, "scope")),
            starts_ms=starts,
            ends_ms=ends_ms,
            line=self.source.line(path),
            severity=data.get("severity", "info"),
        )

    def keyword_list(self, data: dict[str, Any], path: FieldPath) -> KeywordList:
        # imported by what builds matchers only: `due` loads a policy without them, daily
        from auditor.policies import pinyin
        from auditor.policies.normalize import STEP_ORDER, STEPS, normalizer

        identifier = self.claim(data["id"], (*path, "id"))
        steps = tuple(step for step in STEP_ORDER if step in data.get("normalize", STEPS))
        if "pinyin" in steps and not pinyin.installed():
            raise self.source.error(
                (*path, "normalize"),
                f"the pinyin step needs the {pinyin.REQUIREMENT} package, which is not "
                f"installed (pip install '{pinyin.REQUIREMENT}')",
            )
        normal = normalizer(steps)

        def refused(text: str) -> str | None:
            if not text:
                return "empty term"
            if not normal.normalize(text):
                return (
                    f"term {text!r} is empty once normalised (spaces, separators and "
                    "zero-width characters are removed)"
                )
            return None

        def terms(key: str) -> tuple[Term, ...]:
            found = []
            for index, value in enumerate(data.get(key, [])):
                where = (*path, key, index)
                text = _text(value)
                if (problem := refused(text)) is not None:
                    raise self.source.error(where, problem)
                found.append(Term(text, self.source.line(where)))
            return (*found, *self.file_terms(data, path, f"{key}_file", identifier, refused))

        patterns = []
        for index, source in enumerate(data.get("patterns", [])):
            where = (*path, "patterns", index)
            try:
                if _group_depth(source) > MAX_GROUP_DEPTH:
                    raise RecursionError  # refused the same whatever Python's recursion limit
                regex = re.compile(source)
                nested, ambiguous, polynomial = _backtracking(source)
            except re.error as error:
                raise self.source.error(
                    where, f"invalid regular expression {source!r}: {error}"
                ) from None
            except (OverflowError, RecursionError):  # Python's regex compiler gives up
                raise self.source.error(
                    where,
                    f"invalid regular expression {source!r}: a repeat count too large or groups "
                    "nested too deeply to compile",
                ) from None
            if regex.search(""):
                raise self.source.error(where, f"pattern {source!r} matches the empty string")
            if nested:
                raise self.source.error(
                    where,
                    f"pattern {source!r} has {nested}, which can take exponential time on a "
                    "message it almost matches; use one repetition, or a possessive one (a++)",
                )
            if ambiguous:
                raise self.source.error(
                    where,
                    f"pattern {source!r} has {ambiguous}, which can take exponential time on a "
                    "message it almost matches; make its alternatives exclusive, or use a "
                    "possessive repetition (a*+)",
                )
            if polynomial:
                raise self.source.error(
                    where,
                    f"pattern {source!r} has {polynomial}, so its time grows with the square of "
                    "the message's length or faster; start it with a guard such as (?<!\\d) or "
                    "(?<![A-Za-z]) (\\b takes Chinese characters for letters), or anchor it, so "
                    "that a run is tried once; bound a gap between two words (.{0,50}, not .*); "
                    "and merge neighbouring repetitions that read the same characters",
                )
            patterns.append(PatternRule(source, regex, self.source.line(where)))
        return KeywordList(
            id=identifier,
            severity=data["severity"],
            terms=terms("terms"),
            allow=terms("allow"),
            patterns=tuple(patterns),
            normalize=steps,
            whole_words=data.get("whole_words", True),
            line=self.source.line(path),
            description=data.get("description", ""),
        )

    def keyword_list_read(self, data: dict[str, Any], path: FieldPath) -> str:
        """A keyword list as a policy loaded without matchers knows it: its id, and its term
        files read (what the run applied is their bytes too) and counted, not a term of them
        normalised or kept."""
        identifier = self.claim(data["id"], (*path, "id"))
        for key in KEYS:
            if key in data:
                self.read_term_file(data, path, key, identifier, term_count)
        return identifier

    def file_terms(
        self,
        data: dict[str, Any],
        path: FieldPath,
        key: str,
        identifier: str,
        refused: Callable[[str], str | None],
    ) -> tuple[Term, ...]:
        """The terms of the list's `terms_file` or `allow_file`, each checked as an inline term
        is; an error names the term file's line, and the field that named the file."""
        if key not in data:
            return ()
        lines, name = self.read_term_file(data, path, key, identifier, term_lines)
        found = []
        for text, line in lines:
            if (problem := refused(text)) is not None:
                raise ConfigError(
                    f"{name}:{line}: {problem} (the {dotted((*path, key))} of {self.source.name})"
                )
            found.append(Term(text, line, name))
        return tuple(found)

    def read_term_file(
        self,
        data: dict[str, Any],
        path: FieldPath,
        key: str,
        identifier: str,
        parse: Callable[[bytes, str], _Parsed],
    ) -> tuple[_Parsed, str]:
        """`parse` of the bytes of the list's term file `key` (`term_lines`, or `term_count`),
        and its name for errors; the file is kept in `term_files`. An error names the field."""
        declared = data[key]
        position = int(path[-1])  # the list's place in `keywords:`
        try:
            raw, name = self.read_terms(declared, archived_name(position, identifier, key))
            parsed = parse(raw, name)
        except (AuditorError, ValueError) as error:
            raise self.source.error((*path, key), str(error)) from None
        terms = parsed if isinstance(parsed, int) else len(parsed)
        self.term_files.append(term_file(position, identifier, key, declared, raw, terms))
        return parsed, name

    def detector(self, data: dict[str, Any], path: FieldPath) -> DetectorRule:
        from auditor.policies.detectors import DETECTORS

        name = data["detector"]
        if name not in DETECTORS:
            raise self.source.error(
                (*path, "detector"),
                f"unknown detector {name!r} (known: {', '.join(sorted(DETECTORS))})",
            )
        context = data.get("context", {})
        words = context.get("words", DETECTORS[name].context_words)
        return DetectorRule(
            id=self.claim(data.get("id", name), (*path, "id")),
            detector=name,
            severity=data["severity"],
            context_words=tuple(words),
            context_within=context.get("within", 20),
            allow=tuple(data.get("allow", [])),
            line=self.source.line(path),
            low_confidence_severity=self.low_confidence_severity(data, path),
        )

    def detector_id(self, data: dict[str, Any], path: FieldPath) -> str:
        """A detector rule's id, all a policy loaded without matchers takes of it."""
        return self.claim(data.get("id", data["detector"]), (*path, "id"))

    def low_confidence_severity(self, data: dict[str, Any], path: FieldPath) -> str | None:
        """The rule's severity for unconfirmed detections; refused above its `severity`."""
        lowered = data.get("low_confidence_severity")
        if lowered is not None and SEVERITY_RANK[lowered] > SEVERITY_RANK[data["severity"]]:
            raise self.source.error(
                (*path, "low_confidence_severity"),
                f"{lowered!r} is above the rule's severity {data['severity']!r}",
            )
        return lowered

    def policy(self, name: str, raw: bytes) -> Policy:
        data = self.source.data
        retention = data.get("retention", {})
        floor = default = None
        floor_basis = ""
        if "statutory_floor" in retention:
            where: FieldPath = ("retention", "statutory_floor")
            floor = self.rule(retention["statutory_floor"], where, "floor", -1)
            floor_basis = retention["statutory_floor"].get("basis", "")
        if "default" in retention:
            default = self.rule(retention["default"], ("retention", "default"), "default", 0)
        rules = tuple(
            self.rule(each, ("retention", "rules", index), "rule", index + 1)
            for index, each in enumerate(retention.get("rules", []))
        )
        if self.matchers:
            keyword_lists = self._each("keywords", self.keyword_list)
            holds = self._each("holds", self.hold)
            detectors = self._each("detectors", self.detector)
        else:  # in the same order, so that an id given twice is named where a run names it
            self._each("keywords", self.keyword_list_read)
            holds = self._each("holds", self.hold)
            self._each("detectors", self.detector_id)
            keyword_lists, detectors = (), ()
        return Policy(
            path=name,
            sha256=hashlib.sha256(raw).hexdigest(),
            name=data.get("name", ""),
            floor=floor,
            default=default,
            rules=rules,
            holds=holds,
            keyword_lists=keyword_lists,
            detectors=detectors,
            floor_basis=floor_basis,
            description=data.get("description", ""),
            raw=raw,
            term_files=tuple(self.term_files),
            matchers=self.matchers,
        )

    def _each(self, key: str, build: Callable[[dict[str, Any], FieldPath], Any]) -> tuple:
        return tuple(
            build(each, (key, index)) for index, each in enumerate(self.source.data.get(key, []))
        )


@cache
def _backtracking(source: str) -> tuple[str | None, str | None, str | None]:
    """What makes `source` slow (nested, ambiguous, polynomial repetition), or None for each.
    Kept per pattern for the life of the process: the analysis costs milliseconds a pattern,
    and workers forked after the coordinator read the policy (and read it again, to refuse a
    file changed meanwhile) inherit the answers instead of paying for them again."""
    from auditor.policies.backtracking import (
        ambiguous_repetition,
        nested_repetition,
        polynomial_backtracking,
    )

    regex = re.compile(source)
    return (
        nested_repetition(regex),
        ambiguous_repetition(regex),
        polynomial_backtracking(regex),
    )


def load_policy(path: str | Path, matchers: bool = True) -> Policy:
    """Reads and validates a policy file and the term files it names; raises `ConfigError`
    "FILE:LINE: field: problem", or `InputError` "FILE: ..." when it is missing, not a regular
    file or past its cap. A bag's copy (`BAG/data/policy.yaml`, as in `auditor scan --policies
    BAG/data/policy.yaml BAG`) reads the bag's copies of its term files, not files beside it.

    `matchers=False` is for what applies retention rules and holds only (`auditor due`): the
    file is read and checked as a run reads it but for what only matching needs, its keyword
    lists' terms (normalised each, seconds for a vendor's list), patterns and pinyin step and
    its detectors; their term files are still read, since what a run applied is their bytes
    too. The policy then has no keyword list or detector, and `matchers` False, which
    `PolicyEngine` refuses."""
    from auditor.policies.in_bag import bag_copy_reader  # it imports this module

    read_terms = bag_copy_reader(Path(path))
    raw = read_operator_file(path, "policy file")
    return policy_of_bytes(str(path), raw, read_terms, matchers)


def live_term_reader(policy_path: str) -> TermReader:
    """Reads term files where the policy names them: a relative path from the policy file's
    folder, `~` the home folder."""
    folder = home_expanded(policy_path).parent

    def read(declared: str, _archived: str) -> tuple[bytes, str]:
        path = folder / home_expanded(declared)
        return read_operator_file(path, "term file"), str(path)

    return read


def policy_of_bytes(
    name: str, raw: bytes, read_terms: TermReader | None = None, matchers: bool = True
) -> Policy:
    """`load_policy` of bytes already read, `name` naming them in errors; `read_terms` reads
    the term files it names (by default from the folder of `name`; a bag's copy of the policy
    reads the bag's copies, `auditor.policies.in_bag`)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{name}: not UTF-8 text (byte {error.start})") from None
    source = _Source(name, text)
    if not isinstance(source.data, dict):
        what = "empty" if source.data is None else f"a {type(source.data).__name__}"
        raise ConfigError(f"{name}:1: the policy file is {what}, not a mapping with `version: 1`")
    validator = jsonschema.Draft202012Validator(policy_schema())
    errors = sorted(
        validator.iter_errors(source.data),
        key=lambda e: (source.line(tuple(e.absolute_path)), -len(e.absolute_path)),
    )
    if errors:
        raise _schema_error(source, errors[0])
    return _Builder(source, read_terms or live_term_reader(name), matchers).policy(name, raw)


# Groups nested deeper than this are refused before Python's compiler sees them: whether it
# gives up (RecursionError) depends on the recursion limit, which reading deep JSON raises.
MAX_GROUP_DEPTH = 100


def _group_depth(source: str) -> int:
    """How deeply the groups of regex `source` nest (escapes and character classes skipped)."""
    depth = deepest = 0
    escaped = in_class = False
    for char in source:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    return deepest
