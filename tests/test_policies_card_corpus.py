"""The bank_card detector on a corpus of cards in the layouts people type and of near-misses
typed alike (tests/corpora/bank_card_layouts.jsonl, made by detect23's gen_corpus5.py, seed 23).

Each line holds a text, the card it holds (`card`, null for a near-miss) and its `form`. A line
marked `missed` holds a card the detector leaves unreported by design: 8-8 halves with no card or
payment word near (two phone or QQ numbers side by side read alike), and an ungrouped card after a
bare `ID`/`ref`/`编号`/`uid` whose card word stands farther off (ids in messages about cards read
alike). Precision must stay 1.000: every near-miss stays quiet.
"""

import json
from pathlib import Path

import pytest

from auditor.policies.detectors import DETECTORS
from auditor.policies.model import DetectorRule
from auditor.policies.pii import PiiScanner

CORPUS = Path(__file__).with_name("corpora") / "bank_card_layouts.jsonl"
LINES = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


SCAN = PiiScanner(
    [
        DetectorRule(
            id="card",
            detector="bank_card",
            severity="high",
            context_words=DETECTORS["bank_card"].context_words,
            context_within=20,
            allow=(),
            line=1,
        )
    ]
).scan


def cards(text):
    """What the scan reports, its prefilter included (two spaces between groups passed none)."""
    return [hit.value for hit in SCAN(text)]


@pytest.mark.parametrize("form", sorted({line["form"] for line in LINES if line["card"]}))
def test_every_card_of_a_layout_is_found_but_the_misses_by_design(form):
    for line in LINES:
        if line["form"] == form and line["card"]:
            assert cards(line["text"]) == ([] if line.get("missed") else [line["card"]]), line


@pytest.mark.parametrize("form", sorted({line["form"] for line in LINES if not line["card"]}))
def test_no_near_miss_is_reported(form):
    for line in LINES:
        if line["form"] == form and not line["card"]:
            assert cards(line["text"]) == [], line


def test_the_corpus_holds_what_it_says():
    positives = [line for line in LINES if line["card"]]
    assert len(positives) == 208
    assert sum(1 for line in positives if line.get("missed")) == 22
    assert len(LINES) - len(positives) == 264
