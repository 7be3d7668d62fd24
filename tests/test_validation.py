"""Record validation: valid examples pass, every schema rule is reported at its exact pointer."""

import copy
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest

from auditor.findings import Finding
from auditor.jsonl import ParsedLine
from auditor.validation import (
    BASE,
    RecordValidator,
    load_schemas,
    parse_finding,
    reference_registry,
    reference_validator,
)

LOOSE = RecordValidator()
STRICT = RecordValidator("strict")

SECRET = "DRGM8OZrEeO1vafuJSo2IjHBeKlIhDp0GCnFu54xOF3M6KLr"
CHATFILES = "https://a1.easemob.com/easemob-demo/chatdemoui/chatfiles/"

# Bodies as the seed document and Easemob's history docs show them (img, audio, loc, txt from the
# seed; combine from message_historical.md), the others built from the field table of the notes.
BODIES: dict[str, dict[str, Any]] = {
    "txt": {"type": "txt", "msg": "hello from test2"},
    "img": {
        "type": "img",
        "url": CHATFILES + "65e54a4a-fd0b-11e3-b821-ebde7b50cc4b",
        "filename": "test1.jpg",
        "thumb": CHATFILES + "496334fa-f53f-11e3-9eb7-4fbb06ff7876",
        "secret": SECRET,
        "thumb_secret": SECRET,
        "file_length": 52_340,
        "size": {"width": 720, "height": 1280},
    },
    "loc": {"type": "loc", "addr": "西城区西便门桥 ", "lat": 39.9053, "lng": 116.36302},
    "audio": {
        "type": "audio",
        "url": CHATFILES + "0637e55a-f606-11e3-ba23-51f25fd1215b",
        "filename": "test1.amr",
        "length": 10,
        "secret": SECRET,
    },
    "video": {
        "type": "video",
        "url": CHATFILES + "1a2b3c4d-f606-11e3-ba23-51f25fd1215b",
        "filename": "VID_1.mp4",
        "length": 12,
        "file_length": 1_048_576,
        "secret": SECRET,
        "thumb": CHATFILES + "1a2b3c4e-f606-11e3-ba23-51f25fd1215b",
        "thumb_secret": SECRET,
        "size": {"width": 480, "height": 640},
    },
    "file": {
        "type": "file",
        "url": CHATFILES + "2b3c4d5e-f606-11e3-ba23-51f25fd1215b",
        "filename": "合同.docx",
        "secret": SECRET,
        "file_length": 20_480,
    },
    "cmd": {"type": "cmd", "action": "typing"},
    "custom": {
        "type": "custom",
        "customEvent": "gift",
        "customExts": {"giftId": "7", "count": "1"},
        "v2:customExts": {"giftId": "7", "count": "1"},
    },
    "combine": {
        "type": "txt",
        "subType": "sub_combine",
        "msg": "当前版本过低，无法展示对应内容。",
        "combineLevel": 1,
        "file_length": 550,
        "filename": "17289718748990036",
        "secret": "a_OTmoq6Ee-CygH0PRzcUyFniZDmSsX1ur0j-9RtCj3tK6Gr",
        "summary": ":yyuu\n:[图片]\n:[文件]\n",
        "title": "聊天记录",
        "url": "https://a1-hsb.easemob.com/sandbox-dee1/wdtest/chatfiles/6bf39390-8aba-11ef-a8ae-6f545c50ca23",
    },
}


def hour_file_record(*bodies: dict[str, Any]) -> dict[str, Any]:
    """The hour-file record of Easemob's history doc, holding `bodies` (default: one txt)."""
    return {
        "msg_id": "5I02W-XX-8278a",
        "timestamp": 1403099033211,
        "direction": "outgoing",
        "to": "XXXX",
        "from": "XXXX",
        "chat_type": "chat",
        "payload": {
            "bodies": [copy.deepcopy(body) for body in bodies or (BODIES["txt"],)],
            "ext": {"key1": "value1"},
            "from": "XXXX",
            "to": "XXXX",
        },
    }


# The 2016 capture of the old chatmessages API (notes §1): legacy entity fields, top-level
# from/to only, ext empty.
OLD_API_ENTITY = {
    "uuid": "c4a3d20a-386d-11e6-95c7-73ec90722c91",
    "type": "chatmessage",
    "created": 1466595478304,
    "modified": 1466595478304,
    "timestamp": 1466595477697,
    "from": "18088888882",
    "msg_id": "210585157155947508",
    "to": "18615503755",
    "chat_type": "chat",
    "payload": {"bodies": [{"type": "txt", "msg": "不会"}], "ext": {}},
}

# The record layout of the seed document (its body reduced to the txt fields it annotates).
SEED_RECORD = {
    "type": "chatmessage",
    "from": "zw123",
    "msg_id": "5I02W-16-8278a",
    "chat_type": "chat",
    "payload": {"bodies": [{"msg": "hhhhhh", "type": "txt"}], "ext": {"key1": "value1"}},
    "timestamp": 1403099033211,
    "to": "1402541206787",
}

LOOSE_BUT_REAL = {
    "numbers as strings": hour_file_record(
        {**BODIES["loc"], "lat": "39.9053", "lng": "116.36302"},
        {**BODIES["audio"], "length": "10", "file_length": "2048"},
    )
    | {"timestamp": "1403099033211"},
    "customExts as a list of one-key maps": hour_file_record(
        {"type": "custom", "customEvent": "gift", "customExts": [{"giftId": "7"}, {"n": "1"}]}
    ),
    "ext absent": {
        **hour_file_record(),
        "payload": {"bodies": [BODIES["txt"]], "from": "XXXX", "to": "XXXX"},
    },
    "sender and receiver only at the top level": {
        **hour_file_record(),
        "payload": {"bodies": [BODIES["txt"]], "ext": {}},
    },
    "merged message without type (as Easemob's history doc shows it)": hour_file_record(
        {key: value for key, value in BODIES["combine"].items() if key not in ("type", "msg")}
    ),
    "merged message without secret (upload without restricted access)": hour_file_record(
        {key: value for key, value in BODIES["combine"].items() if key != "secret"}
    ),
    "REST-sent image with only type, filename, secret and url": hour_file_record(
        {key: BODIES["img"][key] for key in ("type", "filename", "secret", "url")}
    ),
    "old API entity": OLD_API_ENTITY,
    "seed document record": SEED_RECORD,
}


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_each_types_example_is_valid_in_both_profiles(kind):
    record = hour_file_record(BODIES[kind])
    assert (LOOSE.check(record), STRICT.check(record)) == ([], [])


def test_a_record_with_one_body_of_every_type_is_valid():
    assert LOOSE.check(hour_file_record(*BODIES.values())) == []


@pytest.mark.parametrize("name", sorted(LOOSE_BUT_REAL))
def test_what_easemob_really_sends_is_valid_in_the_loose_profile(name):
    record = LOOSE_BUT_REAL[name]
    assert LOOSE.check(record) == []
    assert reference_validator().is_valid(record)


# -- every rule, broken once ----------------------------------------------------------------


def put(pointer: str, value: Any):
    def change(record):
        *parents, last = pointer.split("/")[1:]
        node = record
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value

    return change


def drop(pointer: str):
    def change(record):
        *parents, last = pointer.split("/")[1:]
        node = record
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[int(last) if isinstance(node, list) else last]

    return change


def both(*changes):
    def change(record):
        for each in changes:
            each(record)

    return change


B0 = "/payload/bodies/0"


@dataclass(frozen=True)
class Broken:
    """A valid record of `kind`, changed once, and the one finding that change must cause."""

    kind: str
    change: Any
    pointer: str
    where: str  # the failing keyword: schema path under BASE, '#', pointer inside that file

    @property
    def rule(self) -> str:
        """The schema a finding is filed under: the envelope or the body's type schema, also
        when the failing keyword sits in a shared definition of common.json."""
        schema = self.where.split("#")[0]
        if schema != "record/common.json":
            return schema
        return f"body/{self.kind}.json" if self.pointer.startswith(B0) else ENV

    def record(self) -> Any:
        record = hour_file_record(BODIES[self.kind])
        self.change(record)
        return record


ENV = "record/envelope.json"
COMMON = "record/common.json#/$defs/"

LOOSE_RULES = {
    # envelope
    "record not an object": Broken("txt", None, "", ENV + "#/type"),
    "msg_id missing": Broken("txt", drop("/msg_id"), "", ENV + "#/required"),
    "msg_id not a string": Broken(
        "txt", put("/msg_id", 5), "/msg_id", ENV + "#/properties/msg_id/type"
    ),
    "msg_id empty": Broken(
        "txt", put("/msg_id", ""), "/msg_id", ENV + "#/properties/msg_id/minLength"
    ),
    "timestamp not a number": Broken(
        "txt", put("/timestamp", True), "/timestamp", COMMON + "instant/type"
    ),
    "timestamp negative": Broken(
        "txt", put("/timestamp", -1), "/timestamp", COMMON + "instant/minimum"
    ),
    "timestamp beyond the year 9999": Broken(
        "txt", put("/timestamp", 10**30), "/timestamp", COMMON + "instant/maximum"
    ),
    "timestamp string not digits": Broken(
        "txt", put("/timestamp", "2014-06-18"), "/timestamp", COMMON + "instant/pattern"
    ),
    "direction unknown": Broken(
        "txt", put("/direction", "sideways"), "/direction", ENV + "#/properties/direction/enum"
    ),
    "chat_type unknown": Broken(
        "txt", put("/chat_type", "privatechat"), "/chat_type", ENV + "#/properties/chat_type/enum"
    ),
    "from not a string": Broken("txt", put("/from", 42), "/from", COMMON + "userId/type"),
    "payload.to empty": Broken(
        "txt", put("/payload/to", ""), "/payload/to", COMMON + "userId/minLength"
    ),
    "no sender anywhere": Broken(
        "txt", both(drop("/payload/from"), drop("/from")), "", ENV + "#/else/required"
    ),
    "payload not an object": Broken(
        "txt", put("/payload", "hi"), "/payload", ENV + "#/properties/payload/type"
    ),
    "payload without bodies": Broken(
        "txt", drop("/payload/bodies"), "/payload", ENV + "#/properties/payload/required"
    ),
    "bodies not a list": Broken(
        "txt",
        put("/payload/bodies", {}),
        "/payload/bodies",
        ENV + "#/properties/payload/properties/bodies/type",
    ),
    "bodies empty": Broken(
        "txt",
        put("/payload/bodies", []),
        "/payload/bodies",
        ENV + "#/properties/payload/properties/bodies/minItems",
    ),
    "ext not an object": Broken(
        "txt",
        put("/payload/ext", []),
        "/payload/ext",
        ENV + "#/properties/payload/properties/ext/type",
    ),
    "uuid not a string": Broken("txt", put("/uuid", 5), "/uuid", ENV + "#/properties/uuid/type"),
    "uuid malformed": Broken(
        "txt", put("/uuid", "c4a3d20a"), "/uuid", ENV + "#/properties/uuid/pattern"
    ),
    "entity type not chatmessage": Broken(
        "txt", put("/type", "message"), "/type", ENV + "#/properties/type/const"
    ),
    "body not an object": Broken("txt", put(B0, "hello"), B0, ENV + "#/$defs/bodyHead/type"),
    "body type not a string": Broken(
        "txt", put(B0 + "/type", 7), B0 + "/type", ENV + "#/$defs/bodyHead/properties/type/type"
    ),
    "body subType not a string": Broken(
        "txt",
        put(B0 + "/subType", 1),
        B0 + "/subType",
        ENV + "#/$defs/bodyHead/properties/subType/type",
    ),
    "body without type": Broken(
        "txt", drop(B0 + "/type"), B0, ENV + "#/$defs/bodyHead/else/required"
    ),
    "unknown body type": Broken(
        "txt", put(B0, {"type": "sticker"}), B0 + "/type", "record.json#/$defs/body/else/anyOf"
    ),
    # shared value shapes, through the bodies that use them
    "url not a string": Broken("img", put(B0 + "/url", 5), B0 + "/url", COMMON + "url/type"),
    "url not http(s)": Broken(
        "file", put(B0 + "/url", "not a url"), B0 + "/url", COMMON + "url/pattern"
    ),
    "secret not a string": Broken(
        "audio", put(B0 + "/secret", 5), B0 + "/secret", COMMON + "secret/type"
    ),
    "secret empty": Broken(
        "video", put(B0 + "/thumb_secret", ""), B0 + "/thumb_secret", COMMON + "secret/minLength"
    ),
    "filename not a string": Broken(
        "file", put(B0 + "/filename", 5), B0 + "/filename", COMMON + "filename/type"
    ),
    "filename empty": Broken(
        "img", put(B0 + "/filename", ""), B0 + "/filename", COMMON + "filename/minLength"
    ),
    "file_length not a number": Broken(
        "file", put(B0 + "/file_length", True), B0 + "/file_length", COMMON + "fileLength/type"
    ),
    "file_length negative": Broken(
        "video", put(B0 + "/file_length", -1), B0 + "/file_length", COMMON + "fileLength/minimum"
    ),
    "file_length string not digits": Broken(
        "img", put(B0 + "/file_length", "12kb"), B0 + "/file_length", COMMON + "fileLength/pattern"
    ),
    "length not a number": Broken(
        "audio", put(B0 + "/length", None), B0 + "/length", COMMON + "seconds/type"
    ),
    "length negative": Broken(
        "audio", put(B0 + "/length", -3), B0 + "/length", COMMON + "seconds/minimum"
    ),
    "length string not a number": Broken(
        "video", put(B0 + "/length", "ten"), B0 + "/length", COMMON + "seconds/pattern"
    ),
    "lat not a number": Broken(
        "loc", put(B0 + "/lat", [39]), B0 + "/lat", COMMON + "latitude/type"
    ),
    "lat below -90": Broken(
        "loc", put(B0 + "/lat", -90.5), B0 + "/lat", COMMON + "latitude/minimum"
    ),
    "lat above 90": Broken(
        "loc", put(B0 + "/lat", 123.4), B0 + "/lat", COMMON + "latitude/maximum"
    ),
    "lat string out of range": Broken(
        "loc", put(B0 + "/lat", "91.5"), B0 + "/lat", COMMON + "latitude/pattern"
    ),
    "lng not a number": Broken("loc", put(B0 + "/lng", {}), B0 + "/lng", COMMON + "longitude/type"),
    "lng below -180": Broken(
        "loc", put(B0 + "/lng", -181), B0 + "/lng", COMMON + "longitude/minimum"
    ),
    "lng above 180": Broken(
        "loc", put(B0 + "/lng", 180.01), B0 + "/lng", COMMON + "longitude/maximum"
    ),
    "lng string out of range": Broken(
        "loc", put(B0 + "/lng", "-180.5"), B0 + "/lng", COMMON + "longitude/pattern"
    ),
    "size not an object": Broken(
        "img", put(B0 + "/size", "720x1280"), B0 + "/size", COMMON + "size/type"
    ),
    "size without height": Broken(
        "video", drop(B0 + "/size/height"), B0 + "/size", COMMON + "size/required"
    ),
    "width not an integer": Broken(
        "img",
        put(B0 + "/size/width", 72.5),
        B0 + "/size/width",
        COMMON + "size/properties/width/type",
    ),
    "width negative": Broken(
        "img",
        put(B0 + "/size/width", -1),
        B0 + "/size/width",
        COMMON + "size/properties/width/minimum",
    ),
    "height not an integer": Broken(
        "video",
        put(B0 + "/size/height", "640"),
        B0 + "/size/height",
        COMMON + "size/properties/height/type",
    ),
    "height negative": Broken(
        "video",
        put(B0 + "/size/height", -640),
        B0 + "/size/height",
        COMMON + "size/properties/height/minimum",
    ),
    "v2:customExts not an object": Broken(
        "custom", put(B0 + "/v2:customExts", "x"), B0 + "/v2:customExts", COMMON + "stringMap/type"
    ),
    "v2:customExts over 16 entries": Broken(
        "custom",
        put(B0 + "/v2:customExts", {f"k{i}": "v" for i in range(17)}),
        B0 + "/v2:customExts",
        COMMON + "stringMap/maxProperties",
    ),
    "v2:customExts value not a string": Broken(
        "custom",
        put(B0 + "/v2:customExts", {"n": 1}),
        B0 + "/v2:customExts/n",
        COMMON + "stringMap/additionalProperties/type",
    ),
    # per type
    "txt without msg": Broken("txt", drop(B0 + "/msg"), B0, "body/txt.json#/required"),
    "txt msg not a string": Broken(
        "txt", put(B0 + "/msg", 123456), B0 + "/msg", "body/txt.json#/properties/msg/type"
    ),
    "img without url": Broken("img", drop(B0 + "/url"), B0, "body/img.json#/required"),
    "loc without addr": Broken("loc", drop(B0 + "/addr"), B0, "body/loc.json#/required"),
    "loc addr not a string": Broken(
        "loc", put(B0 + "/addr", 5), B0 + "/addr", "body/loc.json#/properties/addr/type"
    ),
    "audio without length": Broken("audio", drop(B0 + "/length"), B0, "body/audio.json#/required"),
    "video without thumb": Broken("video", drop(B0 + "/thumb"), B0, "body/video.json#/required"),
    "file without file_length": Broken(
        "file", drop(B0 + "/file_length"), B0, "body/file.json#/required"
    ),
    "cmd without action": Broken("cmd", drop(B0 + "/action"), B0, "body/cmd.json#/required"),
    "cmd action not a string": Broken(
        "cmd", put(B0 + "/action", 5), B0 + "/action", "body/cmd.json#/properties/action/type"
    ),
    "cmd action empty": Broken(
        "cmd", put(B0 + "/action", ""), B0 + "/action", "body/cmd.json#/properties/action/minLength"
    ),
    "custom without customEvent": Broken(
        "custom", drop(B0 + "/customEvent"), B0, "body/custom.json#/required"
    ),
    "customEvent not a string": Broken(
        "custom",
        put(B0 + "/customEvent", 5),
        B0 + "/customEvent",
        "body/custom.json#/properties/customEvent/type",
    ),
    "customExts neither map nor list": Broken(
        "custom",
        put(B0 + "/customExts", "a=1"),
        B0 + "/customExts",
        "body/custom.json#/properties/customExts/type",
    ),
    "customExts map over 16 entries": Broken(
        "custom",
        put(B0 + "/customExts", {f"k{i}": "v" for i in range(17)}),
        B0 + "/customExts",
        "body/custom.json#/properties/customExts/maxProperties",
    ),
    "customExts map value not a string": Broken(
        "custom",
        put(B0 + "/customExts", {"n": 1}),
        B0 + "/customExts/n",
        "body/custom.json#/properties/customExts/additionalProperties/type",
    ),
    "customExts list over 16 entries": Broken(
        "custom",
        put(B0 + "/customExts", [{f"k{i}": "v"} for i in range(17)]),
        B0 + "/customExts",
        "body/custom.json#/properties/customExts/maxItems",
    ),
    "customExts list item not a map": Broken(
        "custom",
        put(B0 + "/customExts", ["a=1"]),
        B0 + "/customExts/0",
        "body/custom.json#/properties/customExts/items/type",
    ),
    "customExts list item empty": Broken(
        "custom",
        put(B0 + "/customExts", [{}]),
        B0 + "/customExts/0",
        "body/custom.json#/properties/customExts/items/minProperties",
    ),
    "customExts list item with two keys": Broken(
        "custom",
        put(B0 + "/customExts", [{"a": "1", "b": "2"}]),
        B0 + "/customExts/0",
        "body/custom.json#/properties/customExts/items/maxProperties",
    ),
    "customExts list item value not a string": Broken(
        "custom",
        put(B0 + "/customExts", [{"a": 1}]),
        B0 + "/customExts/0/a",
        "body/custom.json#/properties/customExts/items/additionalProperties/type",
    ),
    "combine without title": Broken(
        "combine", drop(B0 + "/title"), B0, "body/combine.json#/required"
    ),
    "combine typed other than txt": Broken(
        "combine",
        put(B0 + "/type", "img"),
        B0 + "/type",
        "body/combine.json#/properties/type/const",
    ),
    "combine msg not a string": Broken(
        "combine", put(B0 + "/msg", 5), B0 + "/msg", "body/combine.json#/properties/msg/type"
    ),
    "combineLevel not an integer": Broken(
        "combine",
        put(B0 + "/combineLevel", "1"),
        B0 + "/combineLevel",
        "body/combine.json#/properties/combineLevel/type",
    ),
    "combineLevel below 1": Broken(
        "combine",
        put(B0 + "/combineLevel", 0),
        B0 + "/combineLevel",
        "body/combine.json#/properties/combineLevel/minimum",
    ),
    "combine title not a string": Broken(
        "combine",
        put(B0 + "/title", ["聊天记录"]),
        B0 + "/title",
        "body/combine.json#/properties/title/type",
    ),
    "combine secret not a string": Broken(
        "combine", put(B0 + "/secret", 5), B0 + "/secret", COMMON + "secret/type"
    ),
    "combine summary not a string": Broken(
        "combine",
        put(B0 + "/summary", None),
        B0 + "/summary",
        "body/combine.json#/properties/summary/type",
    ),
}

STRICT_RULES = {
    "timestamp as a string": Broken(
        "txt",
        put("/timestamp", "1403099033211"),
        "/timestamp",
        "record/strict.json#/properties/timestamp/type",
    ),
    "legacy uuid": Broken(
        "txt",
        put("/uuid", OLD_API_ENTITY["uuid"]),
        "/uuid",
        "record/strict.json#/properties/uuid/not",
    ),
    "legacy entity type": Broken(
        "txt", put("/type", "chatmessage"), "/type", "record/strict.json#/properties/type/not"
    ),
    "legacy created": Broken(
        "txt",
        put("/created", 1466595478304),
        "/created",
        "record/strict.json#/properties/created/not",
    ),
    "legacy modified": Broken(
        "txt",
        put("/modified", 1466595478304),
        "/modified",
        "record/strict.json#/properties/modified/not",
    ),
    "ext absent": Broken(
        "txt", drop("/payload/ext"), "/payload", "record/strict.json#/properties/payload/required"
    ),
    "sender only at the top level": Broken(
        "txt", drop("/payload/from"), "/payload", "record/strict.json#/properties/payload/required"
    ),
    "merged message without type": Broken(
        "combine", drop(B0 + "/type"), B0, "record/strict.json#/$defs/body/required"
    ),
    "lat as a string": Broken(
        "loc",
        put(B0 + "/lat", "39.9053"),
        B0 + "/lat",
        "record/strict.json#/$defs/body/properties/lat/type",
    ),
    "lng as a string": Broken(
        "loc",
        put(B0 + "/lng", "116.36302"),
        B0 + "/lng",
        "record/strict.json#/$defs/body/properties/lng/type",
    ),
    "length as a string": Broken(
        "audio",
        put(B0 + "/length", "10"),
        B0 + "/length",
        "record/strict.json#/$defs/body/properties/length/type",
    ),
    "file_length as a string": Broken(
        "file",
        put(B0 + "/file_length", "20480"),
        B0 + "/file_length",
        "record/strict.json#/$defs/body/properties/file_length/type",
    ),
    "customExts as a list": Broken(
        "custom",
        put(B0 + "/customExts", [{"giftId": "7"}]),
        B0 + "/customExts",
        "record/strict.json#/$defs/body/properties/customExts/type",
    ),
}


def broken_record(case: Broken) -> Any:
    if case.change is None:
        return ["not", "an", "object"]
    return case.record()


def _outcome(findings: list[Finding]) -> list[tuple[str | None, str, str, str]]:
    return [
        (f.pointer, f.details["keyword"], f.details["schema"].removeprefix(BASE), f.rule)
        for f in findings
    ]


def _expected(case: Broken) -> list[tuple[str, str, str, str]]:
    return [(case.pointer, case.where.rsplit("/", 1)[1], case.where, BASE + case.rule)]


@pytest.mark.parametrize("name", sorted(LOOSE_RULES))
def test_breaking_a_rule_gives_one_finding_at_its_exact_pointer(name):
    case = LOOSE_RULES[name]
    assert _outcome(LOOSE.check(broken_record(case))) == _expected(case)


@pytest.mark.parametrize("name", sorted(STRICT_RULES))
def test_the_strict_profile_flags_each_loose_encoding_on_its_own(name):
    case = STRICT_RULES[name]
    record = broken_record(case)
    assert LOOSE.check(record) == []
    assert _outcome(STRICT.check(record)) == _expected(case)


# Rules that per-type dispatch can never break, because it only sends a body to the schema its
# type names: the `const` that pins each body schema's type and its `type: object`. They keep each
# body schema right on its own and let record.json tell the types apart.
ONLY_ON_ITS_OWN = {
    **{f"body/{kind}.json#/type": {"type": "txt", "msg": "x"} for kind in BODIES},
    **{
        f"body/{kind}.json#/properties/type/const": BODIES["cmd"]
        for kind in BODIES
        if kind not in ("combine", "cmd")
    },
    "body/cmd.json#/properties/type/const": BODIES["txt"],
    "body/combine.json#/properties/subType/const": {**BODIES["combine"], "subType": "sub_x"},
}


@pytest.mark.parametrize("where", sorted(ONLY_ON_ITS_OWN))
def test_a_body_schema_on_its_own_refuses_a_body_of_another_type(where):
    schema_id = BASE + where.split("#")[0]
    instance = "not an object" if where.endswith("#/type") else ONLY_ON_ITS_OWN[where]
    validator = jsonschema.Draft202012Validator(
        dict(load_schemas()[schema_id].contents), registry=reference_registry()
    )
    failed = [
        schema_id + "#/" + "/".join(str(part) for part in error.absolute_schema_path)
        for error in validator.iter_errors(instance)
    ]
    assert BASE + where in failed


ASSERTIONS = {
    "type",
    "enum",
    "const",
    "required",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "not",
    "anyOf",
}


def _rules(node, path=""):
    """JSON Pointers of every assertion in a schema, conditions (`if`) left out."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "if":
                continue
            if key in ASSERTIONS and not path.endswith("/properties"):
                yield f"{path}/{key}"
            if key not in ("const", "enum"):
                yield from _rules(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _rules(item, f"{path}/{index}")


def test_every_rule_of_every_schema_has_a_case_that_breaks_it():
    rules = {
        schema_id.removeprefix(BASE) + "#" + pointer
        for schema_id, schema in load_schemas().items()
        for pointer in _rules(schema.contents)
    }
    covered = {case.where for case in (*LOOSE_RULES.values(), *STRICT_RULES.values())}
    assert rules - covered - set(ONLY_ON_ITS_OWN) == set()
    assert covered - rules == set()


# -- what a finding says ----------------------------------------------------------------------


def test_a_finding_names_the_record_the_schema_the_value_and_the_failed_keyword():
    record = hour_file_record({**BODIES["loc"], "lat": 123.4})
    assert LOOSE.check(record) == [
        Finding(
            msg_id="5I02W-XX-8278a",
            category="schema",
            rule=BASE + "body/loc.json",
            severity="medium",
            message="payload.bodies[0].lat: 123.4 is greater than the maximum of 90",
            pointer="/payload/bodies/0/lat",
            details={
                "keyword": "maximum",
                "type": "loc",
                "profile": "loose",
                "schema": BASE + "record/common.json#/$defs/latitude/maximum",
            },
        )
    ]


def test_an_unknown_message_type_is_a_finding_of_its_own():
    record = hour_file_record({"type": "sticker", "sticker_id": 4})
    [finding] = LOOSE.check(record)
    assert (finding.message, finding.pointer, finding.details["type"]) == (
        "payload.bodies[0].type: unknown message type 'sticker'",
        "/payload/bodies/0/type",
        "sticker",
    )


def test_a_missing_field_is_reported_at_the_object_that_lacks_it_with_its_name():
    record = hour_file_record()
    del record["timestamp"]
    [finding] = LOOSE.check(record)
    assert (finding.message, finding.pointer, finding.details["property"]) == (
        'record: "timestamp" is a required property',
        "",
        "timestamp",
    )


def test_all_errors_of_a_record_are_reported_not_just_the_first():
    record = hour_file_record(BODIES["txt"], {**BODIES["img"], "url": "ftp://x", "filename": ""})
    record["chat_type"] = "privatechat"
    del record["msg_id"]
    assert sorted((f.pointer, f.details["keyword"]) for f in LOOSE.check(record)) == [
        ("", "required"),
        ("/chat_type", "enum"),
        ("/payload/bodies/1/filename", "minLength"),
        ("/payload/bodies/1/url", "pattern"),
    ]


def test_each_body_is_checked_against_its_own_type():
    record = hour_file_record(BODIES["loc"], {**BODIES["audio"], "length": -1}, BODIES["cmd"])
    [finding] = LOOSE.check(record)
    assert (finding.pointer, finding.rule, finding.details["type"]) == (
        "/payload/bodies/1/length",
        BASE + "body/audio.json",
        "audio",
    )


def test_a_merged_message_is_checked_as_combine_although_it_travels_as_txt():
    record = hour_file_record({**BODIES["combine"], "combineLevel": 0})
    [finding] = LOOSE.check(record)
    assert (finding.rule, finding.details["type"]) == (BASE + "body/combine.json", "combine")


def test_strict_findings_say_so_and_name_the_profile():
    record = hour_file_record({**BODIES["loc"], "lat": "39.9053"})
    [finding] = STRICT.check(record)
    assert finding.message == (
        'payload.bodies[0].lat: "39.9053" is not of type "number" (strict profile)'
    )
    assert finding.details["profile"] == "strict"


def test_a_legacy_field_in_the_strict_profile_says_why_it_is_refused():
    [finding] = STRICT.check(hour_file_record() | {"uuid": OLD_API_ENTITY["uuid"]})
    assert finding.message == (
        "uuid: A legacy entity field of the old chatmessages query API; hour files do not carry "
        "it. (strict profile)"
    )


def test_the_strict_profile_does_not_repeat_what_the_loose_rules_already_found():
    record = hour_file_record({**BODIES["loc"], "lat": {"deg": 39}})
    assert [(f.pointer, f.rule) for f in STRICT.check(record)] == [
        ("/payload/bodies/0/lat", BASE + "body/loc.json")
    ]


def test_the_old_api_entity_is_flagged_field_by_field_in_the_strict_profile():
    outcome = sorted((f.pointer, f.details.get("property")) for f in STRICT.check(OLD_API_ENTITY))
    assert outcome == [
        ("/created", None),
        ("/modified", None),
        ("/payload", "from"),
        ("/payload", "to"),
        ("/type", None),
        ("/uuid", None),
    ]


def test_a_line_that_is_not_json_becomes_a_parse_finding_with_file_and_line():
    line = ParsedLine("2026110108.jsonl", 17, None, "not JSON: unexpected end of data")
    assert parse_finding(line) == Finding(
        msg_id=None,
        category="parse",
        rule="jsonl",
        severity="medium",
        message="2026110108.jsonl:17: not JSON: unexpected end of data",
        pointer=None,
        details={"file": "2026110108.jsonl", "line": 17},
    )


def test_a_validator_survives_pickling_for_worker_processes():
    import pickle

    clone = pickle.loads(pickle.dumps(STRICT))
    record = hour_file_record({**BODIES["loc"], "lat": "39.9053"})
    assert (clone.profile, clone.check(record)) == ("strict", STRICT.check(record))
