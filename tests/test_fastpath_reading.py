"""The engine's one-walk reader (`glance`) reads what the pointer-building reader (`read`) reads.

`glance` is written for the usual shape of a record, with fallbacks for every other one; the
policies must see the same facts and the same strings in the same order either way, and a
matched string must be found again at the pointer `read` gives it.
"""

from __future__ import annotations

import subprocess
import sys
from collections import UserDict

import orjson
import pytest

from auditor.emulator.dataset import SyntheticHistory
from auditor.policies.reading import KEY, glance, place_of, read


class _Dict(dict):
    """A dict subclass: what a caller's own record type may be."""


class _List(list):
    pass


class _Str(str):
    pass


class _Int(int):
    pass


def _as_read(record: dict) -> tuple[tuple, list[str]]:
    facts, fields = read(record)
    return tuple(facts), [text for _pointer, text, _key in fields]


ODD_RECORDS = [
    {},
    {"payload": None, "from": 7, "to": None, "timestamp": "1793491200000"},
    {"payload": [], "chat_type": ["groupchat"], "timestamp": 1.0},
    {"payload": {"bodies": {"type": "txt"}}, "timestamp": True},
    {"payload": {"bodies": [None, "txt", {"type": 5, "msg": "a"}]}, "timestamp": -1},
    {"payload": {"bodies": [{"type": "txt", "msg": "", "filename": "f"}]}, "timestamp": 10**30},
    {
        "chat_type": "groupchat",
        "from": "top",
        "to": "top-to",
        "timestamp": 1_793_491_200_000,
        "payload": {
            "from": 12,
            "to": "",
            "bodies": [
                {"type": "txt", "subType": "sub_combine", "title": "t", "summary": "s", "msg": "m"},
                {"type": "txt", "msg": "same"},
                {"type": "loc", "addr": "same", "filename": "x.png"},
                {"type": "custom", "customExts": [{"k": "v"}, {"k2": ["same", 3, None]}]},
                {"type": "custom", "v2:customExts": {"a": {"b": {"c": "deep"}}}},
                {"type": "video", "filename": 3},
            ],
            "ext": {"em_apns_ext": {"em_push_title": "新消息", "n": 1.5}, "list": ["a", ["b"]]},
        },
    },
    _Dict(
        chat_type=_Str("chat"),
        timestamp=1_793_491_200_000,
        payload=_Dict(
            bodies=_List([_Dict(type=_Str("txt"), msg=_Str("内幕"))]),
            ext=UserDict({"k": "not walked: not a dict"}),
            to=_Str("user2"),
        ),
    ),
    {"payload": {"bodies": [{"type": "txt", "msg": "a"}], "ext": "a plain string"}},
    {"payload": {"bodies": [], "ext": {"a": {"b": [{"c": "d"}], "e": _Str("f")}}}},
    {"payload": {"bodies": [{"type": "cmd", "action": "typing"}]}, "timestamp": "²"},
    {"payload": {"bodies": [{"type": "custom", "customEvent": "e"}]}, "timestamp": "١٧٩٣٤٩١٢٠٠٠٠٠"},
    {
        "payload": {
            "bodies": [{"type": "custom", "customExts": {"k": 13912345678, "b": True}}],
            "ext": {"n": 5, "neg": -5, "big": 10**25, "f": 1.5, 3: "int key", "": "no key"},
        }
    },
    {"payload": {"bodies": [], "ext": {"a": {"n": 5, "m": {"o": 6}, "5": "five"}, "l": [7, 5]}}},
    {"payload": {"bodies": [], "ext": _Dict({_Str("k"): _Int(13912345678), "j": [_Int(8)]})}},
]


@pytest.mark.parametrize("record", ODD_RECORDS, ids=lambda record: repr(record)[:60])
def test_glance_reads_an_odd_record_as_read_does(record):
    assert glance(record) == _as_read(record)


def test_glance_reads_every_synthetic_record_as_read_does():
    """Every message type, planted schema defect and loose encoding of the synthetic history."""
    history = SyntheticHistory(messages=3_000)
    records = [history.truth(index).record for index in range(len(history))]

    differing = [
        index for index, record in enumerate(records) if glance(record) != _as_read(record)
    ]

    assert differing == []


@pytest.mark.parametrize("record", ODD_RECORDS, ids=lambda record: repr(record)[:60])
def test_each_string_glance_reads_is_found_again_at_the_pointer_read_gives_it(record):
    _facts, fields = read(record)

    assert [(*place_of(record, text), text) for text in glance(record)[1]] == [
        (pointer, key, text) for pointer, text, key in fields
    ]


_KEYS_AS_PARSED = """
import orjson
from auditor.policies.reading import KEY, glance
from auditor.emulator.dataset import SyntheticHistory

names = set(KEY)
parsed = set()
for record in SyntheticHistory(messages=200):
    record = orjson.loads(orjson.dumps(record))
    glance(record)
    dicts = [record, record["payload"], *record["payload"]["bodies"]]
    for each in dicts:
        for key in each:
            if key in names:
                assert key is KEY[key], key
                parsed.add(key)
assert parsed == names, names - parsed
"""


def test_glance_looks_up_the_key_objects_orjson_gives_a_parsed_record():
    """A record's keys found by identity, not compared by their bytes: orjson gives each parse
    the same key objects, and `KEY` holds them from the import on, as in a worker, which
    imports the engine and then parses its hours (a fresh process: another test's parses may
    have displaced a key from orjson's cache)."""
    done = subprocess.run(
        [sys.executable, "-c", _KEYS_AS_PARSED], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_glance_reads_records_whose_keys_orjson_made_anew_as_before():
    """Once other keys displaced them from orjson's cache, a record's keys are new objects: the
    lookups compare them by their bytes and read the same facts and strings."""
    records = [orjson.dumps(record) for record in SyntheticHistory(messages=300)]
    before = [glance(orjson.loads(line)) for line in records]
    for number in range(20_000):
        orjson.loads(b'{"k%d": 0}' % number)
    fresh = orjson.loads(records[0])
    assert not all(key is KEY.get(key, key) for key in fresh)
    assert [glance(orjson.loads(line)) for line in records] == before
    assert before == [_as_read(orjson.loads(line)) for line in records]
