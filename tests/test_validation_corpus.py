"""Validation over the emulator's synthetic history, and jsonschema against jsonschema-rs."""

from collections import Counter

import jsonschema_rs
import pytest
from test_validation import BODIES, LOOSE_BUT_REAL, LOOSE_RULES, STRICT_RULES, broken_record

from auditor import records
from auditor.emulator.dataset import DEFECTS, SyntheticHistory
from auditor.validation import (
    RECORD_ID,
    STRICT_ID,
    RecordValidator,
    load_schemas,
    reference_validator,
    whole_record_schema,
    yes_no_schema,
)

LOOSE = RecordValidator()
STRICT = RecordValidator("strict")


@pytest.fixture(scope="module")
def planted():
    history = SyntheticHistory(messages=10_000)
    return [history.truth(index) for index in range(len(history))]


@pytest.fixture(scope="module")
def corpus():
    """At least 10,000 records of every type, a quarter of them broken, plus every crafted case."""
    history = SyntheticHistory(messages=10_000, seed=11, defect_rate=0.25)
    crafted = [broken_record(case) for case in (*LOOSE_RULES.values(), *STRICT_RULES.values())]
    examples = [{"msg_id": "1", **LOOSE_BUT_REAL[name]} for name in LOOSE_BUT_REAL]
    return [*history, *crafted, *examples]


def test_every_planted_defect_is_reported_at_the_pointer_the_dataset_names(planted):
    broken = [truth for truth in planted if truth.defect]
    missed = [
        (truth.index, truth.defect)
        for truth in broken
        if DEFECTS[truth.defect] not in {f.pointer for f in LOOSE.check(truth.record)}
    ]
    assert missed == []
    assert {truth.defect for truth in broken} == set(DEFECTS)


def test_a_planted_image_without_url_is_a_required_url_finding(planted):
    truth = next(truth for truth in planted if truth.defect == "img_missing_url")
    assert [
        (f.pointer, f.details["keyword"], f.details["property"]) for f in LOOSE.check(truth.record)
    ] == [("/payload/bodies/0", "required", "url")]


def test_a_planted_sticker_is_an_unknown_message_type(planted):
    truth = next(truth for truth in planted if truth.defect == "unknown_body_type")
    assert [f.message for f in LOOSE.check(truth.record)] == [
        "payload.bodies[0].type: unknown message type 'sticker'"
    ]


def test_every_record_without_a_planted_defect_is_valid_in_the_loose_profile(planted):
    flagged = [truth.index for truth in planted if not truth.defect and LOOSE.check(truth.record)]
    assert flagged == []


def _looseness(finding) -> str:
    """Which planted loose encoding a strict finding stands for."""
    if finding.pointer == "/payload" and finding.details.get("property") == "ext":
        return "ext_absent"
    if finding.pointer == "/timestamp":
        return "timestamp_string"
    if finding.pointer.endswith(("/lat", "/lng")):
        return "latlng_string"
    return {"customExts": "customExts_list", "length": "length_string"}.get(
        finding.pointer.rsplit("/", 1)[-1], finding.pointer
    )


def test_the_strict_profile_flags_exactly_the_planted_loose_encodings(planted):
    sound = [truth for truth in planted if not truth.defect]
    mismatched = [
        (truth.index, sorted(truth.loose), found)
        for truth in sound
        if (found := sorted({_looseness(f) for f in STRICT.check(truth.record)}))
        != sorted(set(truth.loose))
    ]
    assert mismatched == []
    assert {name for truth in sound for name in truth.loose} == {
        "ext_absent",
        "timestamp_string",
        "latlng_string",
        "customExts_list",
        "length_string",
    }


def test_the_corpus_holds_every_type_valid_and_broken(corpus):
    kinds = Counter(records.message_type(r) for r in corpus if isinstance(r, dict))
    verdicts = Counter(bool(LOOSE.check(record)) for record in corpus)
    assert len(corpus) >= 10_000
    assert set(BODIES) <= set(kinds)
    assert verdicts[True] > 2_000 and verdicts[False] > 6_000


def test_jsonschema_and_jsonschema_rs_agree_on_every_record_in_the_loose_profile(corpus):
    reference = reference_validator("loose")
    disagree = [
        i
        for i, record in enumerate(corpus)
        if reference.is_valid(record) == bool(LOOSE.check(record))
    ]
    assert disagree == []


def test_jsonschema_and_jsonschema_rs_agree_in_the_strict_profile(corpus):
    reference = reference_validator("strict")
    sample = corpus[:2_000] + corpus[10_000:]
    disagree = [
        i
        for i, record in enumerate(sample)
        if reference.is_valid(record) == bool(STRICT.check(record))
    ]
    assert disagree == []


def test_per_type_dispatch_explains_every_record_the_whole_record_schema_refuses(corpus):
    """Findings fall back to record.json only if the per-type schemas miss a failure."""
    unexplained = [
        finding
        for record in corpus
        for finding in LOOSE.check(record)
        if finding.rule == RECORD_ID and finding.details["keyword"] != "anyOf"
    ]
    assert unexplained == []


def test_a_trailing_newline_fails_a_pattern_here_though_pythons_re_lets_it_pass():
    """The one known difference: Python's `$` also matches before a final newline; ECMA-262's,
    which jsonschema-rs follows, does not. The auditor refuses such a value."""
    record = {"msg_id": "1", "timestamp": 1, "chat_type": "chat", "from": "a", "to": "b"}
    record["payload"] = {"bodies": [{**BODIES["file"], "url": BODIES["file"]["url"] + "\n"}]}
    assert reference_validator().is_valid(record)
    assert [f.details["keyword"] for f in LOOSE.check(record)] == ["pattern"]


@pytest.mark.parametrize("profile", ["loose", "strict"])
def test_the_yes_no_schema_of_a_whole_record_is_its_canonical_form(profile):
    """jsonschema-rs's canonical form (an if/else split into two branches, each type's bounds
    in one place) says the same yes or no in fewer steps: 19 % fewer instructions a record."""
    whole = whole_record_schema(profile)
    registry, files = _registry(profile)
    inlined = jsonschema_rs.dereference(whole, registry=registry)
    fast = yes_no_schema(whole, registry, files)
    assert fast == jsonschema_rs.canonicalize(inlined).to_json_schema()
    assert jsonschema_rs.canonicalize(fast) == jsonschema_rs.canonicalize(inlined)


@pytest.mark.parametrize("profile", ["loose", "strict"])
def test_the_yes_no_schema_refuses_exactly_what_the_schema_as_written_refuses(profile, corpus):
    whole = whole_record_schema(profile)
    registry, files = _registry(profile)
    fast = jsonschema_rs.validator_for(yes_no_schema(whole, registry, files), registry=registry)
    written = jsonschema_rs.validator_for(whole, registry=registry)
    disagree = [
        i
        for i, record in enumerate(corpus)
        if fast.is_valid(record) != (next(written.iter_errors(record), None) is None)
    ]
    assert disagree == []


def _registry(profile: str) -> tuple[jsonschema_rs.Registry, list[dict]]:
    files = {i: s for i, s in load_schemas().items() if profile == "strict" or i != STRICT_ID}
    contents = [dict(schema.contents) for schema in files.values()]
    return jsonschema_rs.Registry(list(zip(files, contents, strict=True))), contents
