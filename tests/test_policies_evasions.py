"""Evasions the text scanners must see through: invisible characters between the letters of a
term, and content put where no text body is (numbers and keys in `ext`, custom events, commands).
"""

import re

import pytest

from auditor.partitions import parse_instant
from auditor.policies.engine import PolicyEngine
from auditor.policies.keywords import KeywordMatcher
from auditor.policies.loading import load_policy
from auditor.policies.model import KeywordList, Term
from auditor.policies.normalize import STEPS


def matcher(*terms, steps=()):
    """A whole-word list of `terms` with the default steps and `steps` after them."""
    return KeywordMatcher(
        [
            KeywordList(
                id="watch",
                severity="high",
                terms=tuple(Term(term, 1) for term in terms),
                allow=(),
                patterns=(),
                normalize=STEPS + tuple(steps),
                whole_words=True,
                line=1,
            )
        ]
    )


def spans(text, *terms):
    return [
        (hit.term, hit.start, hit.end, hit.matched, hit.normalizations)
        for hit in matcher(*terms).scan(text)
    ]


@pytest.mark.parametrize(
    "invisible",
    [
        "\u034f",  # combining grapheme joiner
        "\ufe0f",  # variation selector-16 (emoji presentation)
        "\U000e0100",  # variation selector-17, beyond the Basic Multilingual Plane
        "\U000e0041",  # tag letter A
        "\u115f",  # Hangul choseong filler
        "\u3164",  # Hangul filler
        "\uffa0",  # halfwidth Hangul filler
        "\u180e",  # Mongolian vowel separator
        "\u2800",  # braille pattern blank
        "\u0301",  # combining acute accent, stacked on the letter before it
        "\u0336",  # combining long stroke overlay (strike-through)
    ],
)
def test_an_invisible_character_between_letters_hides_no_term(invisible):
    chinese, english = f"有洗{invisible}钱吗", f"a kick{invisible}back ok"

    assert spans(chinese, "洗钱") == [("洗钱", 1, 4, f"洗{invisible}钱", ("separators",))]
    assert spans(english, "kickback") == [
        ("kickback", 2, 11, f"kick{invisible}back", ("separators",))
    ]


def test_invisible_characters_around_a_term_stay_outside_its_span():
    text = "\u3164\u200bkickback\ufe0f\u0336!"

    assert spans(text, "kickback") == [("kickback", 2, 10, "kickback", ())]


def test_a_hangul_filler_next_to_a_term_does_not_glue_it_to_a_word():
    """The filler is a letter by its category; as a whole-word edge it counts as a space."""
    assert spans("\u3164kickback\uffa0", "kickback") == [("kickback", 1, 9, "kickback", ())]


def test_a_stroke_on_every_letter_hides_no_term():
    struck = "".join(f"{letter}\u0336" for letter in "kickback")

    assert spans(f"they took a {struck} ok", "kickback") == [
        ("kickback", 12, 27, struck[:-1], ("separators",))
    ]


@pytest.mark.parametrize(
    "text",
    [
        "kick, back",
        "kick。back",
        "the kick! Back then",
        "衣服要洗，钱也要存",
        "衣服洗好了😀钱包找到了",
        "我要洗、钱包也要",
        "衣服洗 钱包找到了",
        "我先发 票据稍后",
        "车已经洗-钱塘江边见",
    ],
)
def test_punctuation_or_a_space_between_words_still_parts_them(text):
    """Punctuation, a space or an emoji between two words of Chinese (each side's run of
    characters reaching beyond the match) or between Latin letters is a break, not a term."""
    assert spans(text, "洗钱", "发票", "kickback") == []


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("洗，钱", "洗，钱"),
        ("帮他洗、钱", "洗、钱"),
        ("洗!钱吗", "洗!钱"),
        ("洗【】钱", "洗【】钱"),
        ("洗💰钱", "洗💰钱"),
        ("法😀轮功", "法😀轮"),
        ("内😀幕😀消😀息", "内😀幕😀消😀息"),
        ("洗❤钱", "洗❤钱"),
        ("洗·钱", "洗·钱"),
        ("我有内幕 消息", "内幕 消息"),
        ("kick🔥back", "kick🔥back"),
    ],
)
def test_punctuation_symbols_and_emoji_between_the_characters_of_a_term_hide_it_not(text, matched):
    """A term spelled out with punctuation or an emoji between its pieces is found: the run of
    Chinese characters on one side of each gap begins or ends inside the match."""
    assert [hit[3] for hit in spans(text, "洗钱", "法轮", "内幕消息", "kickback")] == [matched]


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("your раssword", "раssword"),  # Cyrillic р and а
        ("a kickbаck", "kickbаck"),  # Cyrillic а
        ("ΚΙCΚΒΑCΚ", "ΚΙCΚΒΑCΚ"),  # Greek capitals and a Latin C
        ("kickbαck", "kickbαck"),  # Greek alpha
        ("ᴋɪᴄᴋʙᴀᴄᴋ", "ᴋɪᴄᴋʙᴀᴄᴋ"),  # Latin small capitals
    ],
)
def test_cyrillic_and_greek_look_alikes_of_latin_letters_hide_no_term(text, matched):
    assert [hit[3] for hit in spans(text, "password", "kickback")] == [matched]


def test_a_word_wholly_in_cyrillic_is_no_disguised_latin_term():
    """`сор` (Russian for litter) reads as `cop` letter by letter, but mixes no Latin letter."""
    assert spans("это сор", "cop") == []
    assert [hit[3] for hit in spans("a сoр here", "cop")] == ["сoр"]


POLICY = """
version: 1
retention:
  default: {keep_for: 10y, then: delete}
keywords:
  - {id: zh, severity: high, terms: [内幕消息, 洗钱]}
  - {id: en, severity: high, terms: [kickback, delete this chat]}
detectors:
  - {detector: mobile, severity: medium}
  - {detector: resident_id, severity: high}
"""


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return PolicyEngine(load_policy(path), parse_instant("2026-06-01"))


def record(*bodies, ext=None):
    payload = {"bodies": list(bodies), "from": "a", "to": "b"}
    if ext is not None:
        payload["ext"] = ext
    return {"msg_id": "7", "timestamp": 1_793_491_200_000, "chat_type": "chat", "payload": payload}


def found(engine, rec):
    _until, _verdict, findings = engine.evaluate(rec)
    return [(f.rule, f.pointer, f.details["matched"], f.message) for f in findings]


def test_numbers_in_ext_are_scanned_as_their_decimal_text(engine):
    ext = {"contact_phone": 13912345678, "id_no": 110105194912310011, "count": 3}

    assert found(engine, record({"type": "txt", "msg": "see ext"}, ext=ext)) == [
        (
            "mobile",
            "/payload/ext/contact_phone",
            "13912345678",
            "mobile '13912345678' (low confidence, so low rather than medium) "
            "in payload.ext.contact_phone",
        ),
        (
            "resident_id",
            "/payload/ext/id_no",
            "110105194912310011",
            "resident_id '110105194912310011' (high confidence) in payload.ext.id_no",
        ),
    ]


def test_a_number_and_the_same_digits_as_text_give_the_same_finding(engine):
    as_number = found(engine, record({"type": "txt", "msg": "x"}, ext={"p": 13912345678}))
    as_text = found(engine, record({"type": "txt", "msg": "x"}, ext={"p": "13912345678"}))

    assert as_number == as_text


def test_a_key_of_ext_or_custom_exts_is_scanned_and_reported_at_its_member(engine):
    rec = record(
        {"type": "custom", "customEvent": "order", "customExts": {"洗钱": "1"}},
        ext={"内幕消息": True},
    )
    _until, _verdict, findings = engine.evaluate(rec)

    assert [(f.pointer, f.message, f.details["in_key"], f.details["text"]) for f in findings] == [
        (
            "/payload/bodies/0/customExts/洗钱",
            "matched '洗钱' in the key of payload.bodies[0].customExts.洗钱",
            True,
            "洗钱",
        ),
        (
            "/payload/ext/内幕消息",
            "matched '内幕消息' in the key of payload.ext.内幕消息",
            True,
            "内幕消息",
        ),
    ]


def test_a_custom_event_and_a_command_action_are_scanned(engine):
    rec = record(
        {"type": "custom", "customEvent": "kickback", "customExts": {}},
        {"type": "cmd", "action": "delete this chat"},
    )

    assert [(rule, pointer, matched) for rule, pointer, matched, _ in found(engine, rec)] == [
        ("en", "/payload/bodies/0/customEvent", "kickback"),
        ("en", "/payload/bodies/1/action", "delete this chat"),
    ]


def test_a_value_finding_says_nothing_of_keys(engine):
    _until, _verdict, (finding,) = engine.evaluate(record({"type": "txt", "msg": "洗钱"}))

    assert "in_key" not in finding.details
    assert re.fullmatch(r"matched '洗钱' in payload\.bodies\[0\]\.msg", finding.message)


def decoding(*terms, allow=(), normalize=STEPS):
    return KeywordMatcher(
        [
            KeywordList(
                id="watch",
                severity="high",
                terms=tuple(Term(term, 1) for term in terms),
                allow=tuple(Term(phrase, 1) for phrase in allow),
                patterns=(),
                normalize=normalize,
                whole_words=True,
                line=1,
            )
        ]
    )


@pytest.mark.parametrize(
    ("text", "term", "matched"),
    [
        ("有人&#27927;&#38065;吗", "洗钱", "&#27927;&#38065;"),
        ("有人&#x6d17;&#x94b1;吗", "洗钱", "&#x6d17;&#x94b1;"),
        ("有人&#X6D17&#X94B1吗", "洗钱", "&#X6D17&#X94B1"),  # browsers take them without `;`
        ("&#x8D4C;&#x535A;网站", "赌博", "&#x8D4C;&#x535A;"),
        ("链接 /s?q=%E8%B5%8C%E5%8D%9A&p=1", "赌博", "%E8%B5%8C%E5%8D%9A"),
        ("any kick&#98;ack?", "kickback", "kick&#98;ack"),
        ("any kick%62ack?", "kickback", "kick%62ack"),
        ("AT&amp;T rebate", "AT&T", "AT&amp;T"),
        ("洗&#x94b1;", "洗钱", "洗&#x94b1;"),
    ],
)
def test_character_references_and_percent_escapes_hide_no_term(text, term, matched):
    hits = decoding(term).scan(text)

    assert [(hit.term, text[hit.start : hit.end], hit.matched) for hit in hits] == [
        (term, matched, matched)
    ]
    assert "decode" in hits[0].normalizations


@pytest.mark.parametrize(
    "text",
    [
        "&#21453;洗钱培训",  # 反洗钱, allowed, with its first character escaped
        "50% off, 洗 to be continued",
        "%E6%B4%97 is no term alone",
        "AT&T",
    ],
)
def test_decoded_text_keeps_allowlists_and_finds_no_more_than_is_there(text):
    assert decoding("洗钱", allow=["反洗钱"]).scan(text) == []


def test_a_list_without_the_decode_step_reads_escapes_as_typed():
    without = tuple(step for step in STEPS if step != "decode")

    assert decoding("洗钱", normalize=without).scan("&#27927;&#38065;") == []
    assert [hit.matched for hit in decoding("洗钱", normalize=without).scan("洗钱")] == ["洗钱"]


def test_the_engine_reports_a_term_spelt_in_character_references(engine):
    rec = record({"type": "txt", "msg": "有&#20869;&#24149;&#28040;&#24687;吗"})

    assert [(rule, matched) for rule, _pointer, matched, _message in found(engine, rec)] == [
        ("zh", "&#20869;&#24149;&#28040;&#24687;")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "链接 https://s.example.cn/search?q=%E6%B4%97%E9%92%B1&from=app&page=2&t=1722731748079",
        "第3季度 R&D 预算 &#27927;&#38065;",  # short, with digits: the digit-blind memo's
        "sales & marketing, then R&D; " * 4,  # long, no escape at all
    ],
)
def test_a_repeated_text_holding_escapes_is_decoded_once(engine, text, monkeypatch):
    calls = []
    with_decoded = engine._keywords.with_decoded
    monkeypatch.setattr(
        engine._keywords, "with_decoded", lambda *args: calls.append(1) or with_decoded(*args)
    )
    first = engine.matches(text)

    assert [engine.matches(text) for _ in range(3)] == [first] * 3
    assert calls == [1]


def test_escapes_that_differ_only_in_their_digits_are_decoded_apart(engine):
    """The digit-blind memo answers both texts' raw matching; their escapes show different
    characters (洗钱, then 洘钲)."""
    shown = engine.matches("第3批 &#27927;&#38065; 了")[0]
    other = engine.matches("第4批 &#27928;&#38066; 了")[0]

    assert [hit.matched for hit in shown] == ["&#27927;&#38065;"]
    assert other == ()
