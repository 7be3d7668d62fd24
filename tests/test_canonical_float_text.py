"""`canonical.float_text` spells every float as the reference (`rfc8785.dumps`) does."""

from __future__ import annotations

import math
import random
import struct

import pytest
import rfc8785

from auditor.archive.canonical import canonical, canonical_reference, float_text

EDGES = [0.0, -0.0, 1.0, -1.0, 100.0, 0.1, 1e-4, 1e-5, 1e-7, 1e15, 1e16, 1e21, 1e22, 5e-324]
EDGES += [9999999999999998.0, 123456789012345.67, 42.017746, -122.870789, 2.0**53, -(2.0**60)]


def _floats() -> list[float]:
    draw = random.Random(8785)
    found = list(EDGES)
    found += [
        struct.unpack("<d", draw.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(50_000)
    ]
    found += [draw.uniform(-180, 180) for _ in range(50_000)]
    found += [round(draw.uniform(-1e6, 1e6), draw.randint(0, 8)) for _ in range(20_000)]
    return [value for value in found if not (math.isnan(value) or math.isinf(value))]


def test_float_text_is_the_references_spelling() -> None:
    for value in _floats():
        text = float_text(value)
        assert (text if isinstance(text, bytes) else text.encode()) == rfc8785.dumps(value), value


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_float_text_refuses_what_the_reference_refuses(value: float) -> None:
    with pytest.raises(rfc8785.FloatDomainError):
        float_text(value)


def test_a_location_record_is_written_as_the_reference_writes_it() -> None:
    record = {"payload": {"bodies": [{"type": "loc", "lat": 42.017746, "lng": -0.0, "z": 1e22}]}}
    assert canonical(record) == canonical_reference(record)
