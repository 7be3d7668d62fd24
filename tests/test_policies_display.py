"""Keywords and sensitive data as a reader sees them: texts that bidi controls, right-to-left
marks or right-to-left letters display in another order than they are stored (UAX #9).

Each text's displayed order is checked against python-bidi's `get_display` first, so a test says
what the reader sees rather than what the auditor assumes.
"""

import random
import re
import unicodedata

import pytest
from bidi import get_display

from auditor.partitions import parse_instant
from auditor.policies import display
from auditor.policies.display import display_order, may_reorder
from auditor.policies.engine import PolicyEngine
from auditor.policies.loading import load_policy

RLO, LRO, RLE, LRE, PDF = "\u202e", "\u202d", "\u202b", "\u202a", "\u202c"
RLI, LRI, FSI, PDI = "\u2067", "\u2066", "\u2068", "\u2069"
LRM, RLM, ALM = "\u200e", "\u200f", "\u061c"
CONTROLS = set(RLO + LRO + RLE + LRE + PDF + RLI + LRI + FSI + PDI + LRM + RLM + ALM)

POLICY = """
version: 1
retention:
  default: {keep_for: 10y, then: delete}
keywords:
  - id: en
    severity: high
    terms: [kickback, off the books]
    patterns: ['(?i)\\bguaranteed\\s+\\d{1,3}\\s*%']
    allow: [kickback spring]
  - {id: zh, severity: high, terms: [内幕消息, 代号7]}
  - {id: he, severity: high, terms: [שוחד]}
  - {id: exact, severity: low, terms: [kickback], normalize: [case]}
detectors:
  - {detector: mobile, severity: medium, context: {words: [call], within: 20}}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return PolicyEngine(load_policy(path), parse_instant("2026-06-01"))


def shown(text):
    """What a reader sees, left to right: python-bidi's layout without the bidi controls."""
    return "".join(char for char in get_display(text) if char not in CONTROLS)


def keyword_hits(engine, text, list_id="en"):
    hits, _pii = engine.matches(text)
    return [
        (h.term, h.start, h.end, h.matched, h.normalizations, h.displayed)
        for h in hits
        if h.keyword_list.id == list_id
    ]


def record(text):
    payload = {"bodies": [{"type": "txt", "msg": text}], "from": "a", "to": "b"}
    return {"msg_id": "7", "timestamp": 1_793_491_200_000, "chat_type": "chat", "payload": payload}


def test_the_probe_a_right_to_left_override_shows_a_term_the_stored_text_hides(engine):
    text = f"approved: no {RLO}kcabkcik{PDF}"
    assert shown(text) == "approved: no kickback"

    _until, _verdict, findings = engine.evaluate(record(text))

    assert [(f.rule, f.message) for f in findings] == [
        ("en", "matched 'kickback' (normalised: bidi) in payload.bodies[0].msg"),
        ("exact", "matched 'kickback' (normalised: bidi) in payload.bodies[0].msg"),
    ]
    details = findings[0].details
    assert (details["start"], details["end"], details["matched"]) == (14, 22, "kcabkcik")
    assert text[details["start"] : details["end"]] == "kcabkcik"
    assert details["displayed"] == "kickback"
    assert details["normalizations"] == ["bidi"]
    assert details["text"] == text


@pytest.mark.parametrize(
    ("text", "reader_sees", "span"),
    [
        # an override, unterminated: it ends with its paragraph
        (f"no {RLO}kcabkcik", "no kickback", (4, 12)),
        # left-to-right overrides nested in a right-to-left one: their order swaps
        (f"{RLO}{LRO}books{PDF} {LRO}the{PDF} {LRO}off{PDF}{PDF}", "off the books", (2, 19)),
        # an embedding: a number and a word change places
        (f"编号{RLE}7 代号{PDF}", "编号代号 7", (3, 7)),
        # left-to-right embeddings nested in a right-to-left override
        (f"{RLO}{LRE}books{PDF} {LRE}the{PDF} {LRE}off{PDF}{PDF}", "off the books", (2, 19)),
        # a right-to-left isolate with a right-to-left mark between words
        (f"a {RLI}books{RLM} the{RLM} off{PDI} b", "a off the books b", (3, 18)),
        # left-to-right isolates nested in a right-to-left override
        (f"{RLO}{LRI}books{PDI} {LRI}the{PDI} {LRI}off{PDI}{PDF}", "off the books", (2, 19)),
        # a first-strong isolate whose first strong character is a right-to-left mark
        (f"x {FSI}{RLM}books {RLM}the {RLM}off{PDI} y", "x off the books y", (4, 19)),
        # right-to-left marks alone, no embedding, override or isolate
        (f"{RLM}books {RLM}the {RLM}off", "off the books", (1, 16)),
        # an Arabic letter mark alone
        (f"{ALM}books {ALM}the {ALM}off", "off the books", (1, 16)),
    ],
)
def test_each_override_embedding_isolate_and_mark_is_laid_out(engine, text, reader_sees, span):
    assert shown(text) == reader_sees
    start, end = span
    zh = "代号" in reader_sees

    (hit,) = keyword_hits(engine, text, "zh" if zh else "en")

    assert hit[:3] == ("代号7" if zh else "off the books" if "off" in text else "kickback", *span)
    assert hit[3] == text[start:end]
    assert hit[4][0] == "bidi"
    assert hit[5] == ("代号 7" if zh else "off the books" if "off" in text else "kickback")


def test_nested_overrides_show_the_pieces_swapped(engine):
    text = f"no {RLO}{LRO}back{PDF}-{LRO}kick{PDF}{PDF}!"
    assert shown(text) == "no kick-back!"

    assert keyword_hits(engine, text) == [
        ("kickback", 5, 16, f"back{PDF}-{LRO}kick", ("bidi", "separators"), "kick-back")
    ]


def test_an_unterminated_override_ends_with_its_paragraph(engine):
    text = f"{RLO}kcabkcik\nkcabkcik {RLO}kcabkcik"
    assert shown(text) == "kickback\nkcabkcik kickback"

    assert [hit[1:3] for hit in keyword_hits(engine, text)] == [(1, 9), (20, 28)]


def test_a_control_that_changes_nothing_adds_no_second_hit(engine):
    """An embedding around a left-to-right word shows it as stored: the stored order already
    found it, so only the reversed copy is new."""
    text = f"{RLE}kickback{PDF} {RLO}kcabkcik{PDF}"
    assert shown(text) == "kickback kickback"

    assert keyword_hits(engine, text) == [
        ("kickback", 1, 9, "kickback", (), None),
        ("kickback", 12, 20, "kcabkcik", ("bidi",), "kickback"),
    ]


def test_one_finding_counts_a_term_seen_stored_and_displayed_once_each(engine):
    text = f"kickback, {RLO}kcabkcik{PDF} ok"

    _until, _verdict, findings = engine.evaluate(record(text))

    (finding,) = [f for f in findings if f.rule == "en"]
    assert finding.details["occurrences"] == 2
    assert finding.details["spans"] == [[0, 8], [11, 19]]


def test_hebrew_and_latin_mixed_with_an_override(engine):
    text = f"שלום {RLO}kcabkcik{PDF} תודה"
    assert "kickback" in shown(text)

    assert keyword_hits(engine, text) == [("kickback", 6, 14, "kcabkcik", ("bidi",), "kickback")]


def test_arabic_digits_in_an_arabic_sentence_show_a_mobile_number(engine):
    """Arabic-Indic digits are numbers of a right-to-left script: groups of them separated by
    spaces display in reverse order, with no control at all."""
    text = "رقم ٥٦٧٨ ١٢٣٤ ١٣٩"
    assert "١٣٩ ١٢٣٤ ٥٦٧٨" in shown(text)

    _keywords, pii = engine.matches(text)

    assert [(h.rule.detector, h.value, h.start, h.end, h.normalizations) for h in pii] == [
        ("mobile", "13912345678", 4, 17, ("bidi", "digits"))
    ]


def test_a_right_to_left_term_is_read_right_to_left(engine):
    """A Hebrew word forced left to right shows its letters in stored order from the left, so a
    reader, reading right to left, reads them backwards; a plainly written one is found once."""
    forced = f"{LRO}דחוש{PDF}"
    plain = "שוחד"

    assert keyword_hits(engine, f"{forced} {plain}", "he") == [
        ("שוחד", 7, 11, "שוחד", (), None),
        ("שוחד", 1, 5, "דחוש", ("bidi",), "שוחד"),
    ]
    assert keyword_hits(engine, f"{RLO}שוחד{PDF}", "he") == [("שוחד", 1, 5, "שוחד", (), None)]


def test_an_allowlisted_phrase_in_displayed_order_is_no_finding(engine):
    text = f"{RLO}gnirps kcabkcik{PDF}, {RLO}kcabkcik{PDF}"
    assert shown(text) == "kickback ,kickback spring"  # the comma between goes with them

    assert [hit[1:3] for hit in keyword_hits(engine, text)] == [(20, 28)]


def test_a_list_without_separators_sees_no_bidi_control_in_the_displayed_text(engine):
    text = f"no {RLO}kcabkcik{PDF}"

    assert keyword_hits(engine, text, "exact") == [
        ("kickback", 4, 12, "kcabkcik", ("bidi",), "kickback")
    ]


def test_a_regex_rule_runs_on_the_displayed_order(engine):
    text = f"a {RLO}%51 deetnaraug{PDF} return"
    assert shown(text) == "a guaranteed 15% return"

    assert keyword_hits(engine, text) == [
        ("(?i)\\bguaranteed\\s+\\d{1,3}\\s*%", 3, 17, "%51 deetnaraug", ("bidi",), "guaranteed 15%")
    ]


def test_a_mobile_number_reversed_by_an_override_is_found_with_its_context(engine):
    text = f"call {RLO}8765 4321 931{PDF}"

    _keywords, (hit,) = engine.matches(text)

    assert (hit.value, hit.start, hit.end, hit.confidence) == ("13912345678", 6, 19, "high")
    assert (hit.matched, hit.displayed, hit.normalizations) == (
        "8765 4321 931",
        "139 1234 5678",
        ("bidi",),
    )


def test_offsets_count_code_points_of_the_raw_text(engine):
    """Characters beyond the Basic Multilingual Plane count one each."""
    text = f"😀😀 {RLO}kcabkcik{PDF}"

    (hit,) = keyword_hits(engine, text)

    assert (hit[1], hit[2], text[hit[1] : hit[2]]) == (4, 12, "kcabkcik")


def test_a_lone_surrogate_is_laid_out_as_a_neutral_character():
    """The layout library takes UTF-8 only; the surrogate stays in the displayed text."""
    laid = display_order(f"\ud800 {RLO}kcabkcik{PDF}")

    assert laid.text == "\ud800 kickback"
    assert laid.raw_span(2, 10) == (3, 11)


def test_a_layout_that_cannot_be_checked_falls_back_to_whole_paragraphs(engine, monkeypatch):
    monkeypatch.setattr(display, "_visual_order", lambda text: None)
    text = f"ok\n{RLO}kcabkcik{PDF}\nok"

    (hit,) = keyword_hits(engine, text)

    assert (hit[1], hit[2]) == (3, 14)  # the second paragraph, with its newline


@pytest.mark.parametrize("seed", range(4))
def test_the_displayed_order_is_the_layout_of_the_reference(seed):
    """`display_order` maps each displayed character to the stored one it is, exactly as
    python-bidi lays the text out, over random mixes of every bidi class."""
    pool = (
        "ab z09 .,-+$%()[]<>\t\n\u2029\u00ad\u200b\u0300文字😀"
        "\u05d0\u05d1\u0627\u0628\u0661\u0662\u06f1\U00010900" + "".join(CONTROLS)
    )
    rng = random.Random(seed)
    for _ in range(500):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 40)))
        order = display._visual_order(text)
        assert order is not None
        assert "".join(text[i] for i in order) == get_display(text)
        laid = display_order(text)
        assert laid.text == shown(text)
        assert [text[i] for i in laid.first] == list(laid.text)


def test_only_texts_that_may_display_reordered_are_laid_out():
    """Every character of bidi class R, AL or AN, and every explicit embedding, override,
    isolate and pop, makes a text be laid out; a left-to-right mark, Latin, Chinese and
    European digits do not."""
    reordering = {"R", "AL", "AN", "LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
    missed = [
        hex(code)
        for code in range(0x110000)
        if unicodedata.bidirectional(chr(code)) in reordering and not may_reorder(chr(code))
    ]
    assert missed == []
    assert may_reorder(f"kickback {LRM}内幕消息 ０１２ 😀") is None


def test_a_text_that_cannot_reorder_is_not_laid_out(engine, monkeypatch):
    def refuse(*args):
        raise AssertionError("laid out")

    monkeypatch.setattr(display, "display_order", refuse)
    fresh = PolicyEngine(engine.policy, engine.now_ms)

    assert keyword_hits(fresh, f"a kick{LRM}back 内幕消息") == [
        ("kickback", 2, 11, f"kick{LRM}back", ("separators",), None)
    ]
    assert re.search("bidi", str(fresh.matches("ok 代号７"))) is None


def test_a_policy_without_keyword_lists_still_reads_numbers_as_displayed(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\nretention:\n  default: {keep_for: 10y, then: delete}\n"
        "detectors:\n  - {detector: mobile, severity: medium}\n",
        encoding="utf-8",
    )
    engine = PolicyEngine(load_policy(path), parse_instant("2026-06-01"))

    _keywords, (hit,) = engine.matches(f"call {RLO}8765 4321 931{PDF}")

    assert (hit.value, hit.start, hit.end, hit.normalizations) == ("13912345678", 6, 19, ("bidi",))
