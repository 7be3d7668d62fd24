"""The bank_card detector on corpora of cards in the layouts people type and of near-misses typed
alike. Each line holds a text, the card it holds (`card`, null for a near-miss) and its `form`.

tests/corpora/bank_card_layouts.jsonl (made by detect23's gen_corpus5.py, seed 23): cards of any
scheme split by dots, dashes, spaces and fullwidth forms, and dates, versions, prices, phone, QQ
and order numbers typed alike. A line marked `missed` holds a card the detector leaves unreported
by design: 8-8 halves with no card, payment or bank word near and no listed issuer's BIN (two
phone or QQ numbers side by side read alike), and an ungrouped card of no listed BIN after a bare
`ID`/`ref`/`编号`/`uid` whose card word stands farther off (ids in messages about cards read alike).

tests/corpora/bank_card_issuers.jsonl (made by cards24's gen_corpus6.py, seed 24): cards of
China's largest issuers (`card_bins`: BIN, length, Luhn) after a bare label or as 8-8 halves with
no word; 8-8 halves of any scheme beside a bank's name or a transfer verb; and near-misses that
share part of that (a 62 id of no listed BIN, a listed BIN of another length, a failed Luhn digit,
a system's label, a phone, QQ or order word, a dot, dash or area code running into the digits).

Precision must stay 1.000: every near-miss stays quiet.
"""

import json
from pathlib import Path

import pytest

from auditor.policies.detectors import DETECTORS
from auditor.policies.model import DetectorRule
from auditor.policies.pii import PiiScanner

CORPORA = Path(__file__).with_name("corpora")
LINES = {
    name: [json.loads(line) for line in (CORPORA / name).read_text(encoding="utf-8").splitlines()]
    for name in ("bank_card_layouts.jsonl", "bank_card_issuers.jsonl")
}
FORMS = [
    (name, form) for name, lines in LINES.items() for form in sorted({x["form"] for x in lines})
]


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


@pytest.mark.parametrize(("corpus", "form"), FORMS)
def test_every_card_is_found_but_the_misses_by_design_and_no_near_miss(corpus, form):
    for line in LINES[corpus]:
        if line["form"] == form:
            expected = [line["card"]] if line["card"] and not line.get("missed") else []
            assert cards(line["text"]) == expected, line


@pytest.mark.parametrize(
    ("corpus", "cards_", "missed", "near_misses"),
    [("bank_card_layouts.jsonl", 208, 18, 264), ("bank_card_issuers.jsonl", 84, 0, 146)],
)
def test_the_corpus_holds_what_it_says(corpus, cards_, missed, near_misses):
    positives = [line for line in LINES[corpus] if line["card"]]
    assert len(positives) == cards_
    assert sum(1 for line in positives if line.get("missed")) == missed
    assert len(LINES[corpus]) - len(positives) == near_misses
