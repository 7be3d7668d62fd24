"""Keyword lists: every normalisation, raw spans in the original text, allowlists, word edges."""

import random
import re
import unicodedata

import pytest

from auditor.policies.keywords import KeywordHit, KeywordMatcher, _Covers
from auditor.policies.model import KeywordList, PatternRule, Term
from auditor.policies.normalize import (
    CONFUSABLES,
    STEPS,
    Normalizer,
    later_steps_by_character,
    normalizer,
    raw_index,
)


def keywords(*terms, normalize=STEPS, allow=(), patterns=(), whole_words=True, id="watch"):
    return KeywordList(
        id=id,
        severity="high",
        terms=tuple(Term(term, 1) for term in terms),
        allow=tuple(Term(phrase, 1) for phrase in allow),
        patterns=tuple(PatternRule(p, re.compile(p), 1) for p in patterns),
        normalize=tuple(normalize),
        whole_words=whole_words,
        line=1,
    )


def spans(matcher: KeywordMatcher, text: str):
    return [(h.term, h.start, h.end, h.matched, h.normalizations) for h in matcher.scan(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天有内幕消息吗", ("内幕消息", 3, 7, "内幕消息", ())),
        ("今天有內幕消息吗", ("内幕消息", 3, 7, "內幕消息", ("traditional",))),
        ("有内*幕消息", ("内幕消息", 1, 6, "内*幕消息", ("separators",))),
        ("有内 幕 消 息。", ("内幕消息", 1, 8, "内 幕 消 息", ("separators",))),
        ("有内\u200b幕消息", ("内幕消息", 1, 6, "内\u200b幕消息", ("separators",))),
        ("有內＊幕消息", ("内幕消息", 1, 6, "內＊幕消息", ("traditional", "separators"))),
        ("㎏內幕消息", ("内幕消息", 1, 5, "內幕消息", ("traditional",))),
        ("看ｋｉｃｋｂａｃｋ吧", ("kickback", 1, 9, "ｋｉｃｋｂａｃｋ", ("nfkc",))),
        ("a KICKBACK!", ("kickback", 2, 10, "KICKBACK", ("case",))),
        ("k-i-c-k-b-a-c-k", ("kickback", 0, 15, "k-i-c-k-b-a-c-k", ("separators",))),
        ("Ｋ.I.C.K back", ("kickback", 0, 12, "Ｋ.I.C.K back", ("nfkc", "case", "separators"))),
        ("代号⑦行动", ("代号7", 0, 3, "代号⑦", ("nfkc",))),
        ("代号❼行动", ("代号7", 0, 3, "代号❼", ("digits",))),
        ("代号٧行动", ("代号7", 0, 3, "代号٧", ("digits",))),
    ],
)
def test_each_normalisation_finds_the_raw_span_and_says_it_was_needed(text, expected):
    matcher = KeywordMatcher([keywords("内幕消息", "kickback", "代号7")])
    assert spans(matcher, text) == [expected]


@pytest.mark.parametrize(
    ("step", "evasive"),
    [
        ("traditional", "內幕消息"),
        ("separators", "内*幕消息"),
        ("case", "KICKBACK"),
        ("nfkc", "ｋｉｃｋｂａｃｋ"),
        ("digits", "代号❼"),
    ],
)
def test_a_list_without_a_normalisation_misses_what_only_it_catches(step, evasive):
    without = [name for name in STEPS if name != step]
    if step == "digits":
        without.remove("nfkc")
    matcher = KeywordMatcher([keywords("内幕消息", "kickback", "代号7", normalize=without)])
    assert matcher.scan(evasive) == []


def test_a_term_written_in_traditional_matches_simplified_text():
    matcher = KeywordMatcher([keywords("洗錢")])
    assert spans(matcher, "他在洗钱") == [("洗錢", 2, 4, "洗钱", ("traditional",))]


def test_latin_terms_match_whole_words_only_unless_the_list_says_otherwise():
    strict = KeywordMatcher([keywords("kickback")])
    loose = KeywordMatcher([keywords("kickback", whole_words=False)])
    assert spans(strict, "no kickbacks, I kick backward") == []
    assert spans(strict, "a kick-back, ok") == [("kickback", 2, 11, "kick-back", ("separators",))]
    assert [h.matched for h in loose.scan("no kickbacks")] == ["kickback"]


def test_a_match_inside_an_allowlisted_phrase_is_not_reported():
    matcher = KeywordMatcher([keywords("洗钱", allow=["反洗钱"])])
    assert spans(matcher, "参加反洗钱培训") == []
    assert spans(matcher, "反洗钱培训后他还在洗钱") == [("洗钱", 9, 11, "洗钱", ())]
    assert spans(matcher, "反 洗 钱") == []


def test_a_shorter_term_inside_a_longer_match_of_the_same_list_is_not_repeated():
    matcher = KeywordMatcher([keywords("内幕", "内幕消息"), keywords("内幕", id="other")])
    found = sorted((h.keyword_list.id, h.term) for h in matcher.scan("内幕消息"))
    assert found == [("other", "内幕"), ("watch", "内幕消息")]


def test_many_matches_in_one_text_keep_each_outside_allowed_and_longer_spans():
    """Thousands of matches in one message: every one is reported but those inside an
    allowlisted phrase or a longer match of the same list (they were compared pair by pair)."""
    matcher = KeywordMatcher([keywords("洗钱", "洗钱罪", allow=["反洗钱"])])
    text = "洗钱。反洗钱。洗钱罪。" * 3000

    found = [(h.term, h.start) for h in matcher.scan(text)]

    assert found == [
        (term, 11 * n + at) for n in range(3000) for term, at in (("洗钱", 0), ("洗钱罪", 7))
    ]


@pytest.mark.parametrize("seed", range(20))
def test_covers_say_a_span_is_held_exactly_when_some_span_holds_it(seed):
    """`_Covers` answers what comparing every pair would: held by a span that starts no later
    and ends no sooner; `strictly`, by one other than itself."""
    rng = random.Random(seed)
    covers = [(s, s + rng.randint(1, 6)) for s in (rng.randint(0, 30) for _ in range(12))]
    queries = [(s, s + rng.randint(1, 6)) for s in range(0, 30) for _ in range(2)]
    asked = _Covers(list(covers))

    for start, end in queries + covers:
        held = [(a, b) for a, b in covers if a <= start and end <= b]
        assert asked.contain(start, end) == bool(held)
        assert asked.contain(start, end, strictly=True) == any(c != (start, end) for c in held)


def test_lists_with_different_normalisations_match_independently():
    matcher = KeywordMatcher(
        [keywords("内幕消息", id="strict", normalize=()), keywords("内幕消息", id="lenient")]
    )
    assert [h.keyword_list.id for h in matcher.scan("內幕消息")] == ["lenient"]
    assert sorted(h.keyword_list.id for h in matcher.scan("内幕消息")) == ["lenient", "strict"]


def test_a_regex_rule_reports_its_match_on_the_raw_text_and_respects_the_allowlist():
    matcher = KeywordMatcher(
        [keywords(patterns=[r"(?i)guaranteed\s+\d{1,3}\s*%"], allow=["not guaranteed 5%"])]
    )
    assert matcher.scan("A GUARANTEED 15 % return") == [
        KeywordHit(
            matcher._groups[0].lists[0],
            r"(?i)guaranteed\s+\d{1,3}\s*%",
            "GUARANTEED 15 %",
            2,
            17,
            "GUARANTEED 15 %",
            (),
            r"(?i)guaranteed\s+\d{1,3}\s*%",
        )
    ]
    assert matcher.scan("it is not guaranteed 5% at all") == []


def test_text_left_untranslated_gives_the_same_matches_as_full_normalisation():
    """Texts without a character whose change matters skip `str.translate` (punctuation
    matters only right after a character of a term, where deleting it could join the term);
    their matches must equal those found in the fully normalised text."""
    matcher = KeywordMatcher([keywords("内幕消息", "回扣")])
    text = "好的，收到！内幕消息有回扣"
    group = matcher._groups[0]
    assert group.normalize(text) is text
    assert spans(matcher, text) == [
        ("内幕消息", 6, 10, "内幕消息", ()),
        ("回扣", 11, 13, "回扣", ()),
    ]
    assert group.normalizer.normalize(text) == "好的收到内幕消息有回扣"
    assert group.normalize("内幕，消息") != "内幕，消息"


def test_ascii_text_normalises_exactly_as_the_unicode_table_says():
    every = Normalizer(STEPS)
    text = "".join(chr(code) for code in range(128))
    assert every.normalize(text) == text.translate(every.table)


def test_offsets_map_every_normalised_character_back_to_its_raw_character():
    each = normalizer(STEPS)
    text = "㎏ A-b\u200b內①"
    normalized = each.normalize(text)
    offsets = each.offsets(text)
    assert normalized == "kgab内1"
    assert [raw_index(offsets, i) for i in range(len(normalized))] == [0, 0, 2, 4, 6, 7]


def test_the_plane_wide_translate_table_agrees_with_the_lazy_one():
    each = normalizer(STEPS)
    plane = "".join(map(chr, range(0x10000)))
    beyond = "內\U0001d7cf\U000e0001\U00020000幕"  # math digit, tag character, CJK extension B
    assert each.translate(plane) == plane.translate(each.table)
    assert each.translate(beyond) == beyond.translate(each.table) == "内1\U00020000幕"


def test_offsets_count_every_piece_within_the_plane_and_beyond():
    each = normalizer(STEPS)
    text = "㎏ a\U000e0001\U0001d7cf內"
    pieces = [each.piece(char) for char in text]
    assert pieces == ["kg", "", "a", "", "1", "内"]
    assert each.offsets(text) == [2, 2, 3, 3, 4, 5]
    assert each.offsets(text[:3]) == [2, 2, 3]


def _piece_char_by_char(steps: tuple[str, ...], char: str) -> str:
    """The normalisation of one character with each step after case folding asked character
    by character, as `piece` did before it had tables."""
    piece = char
    if "nfkc" in steps:
        piece = unicodedata.normalize("NFKC", piece)
    if "confusables" in steps:
        piece = "".join(CONFUSABLES.get(c, c) for c in piece)
    if "case" in steps:
        piece = piece.casefold()
    return later_steps_by_character(steps, piece)


@pytest.mark.parametrize("steps", [STEPS, *((step,) for step in STEPS)], ids=",".join)
def test_the_plane_wide_step_tables_normalise_as_each_character_is_asked(steps):
    """`piece` maps the later steps through tables built once over the plane; every step and
    all of them together give what asking each character gives (every character for all
    steps, every fifth for one, and a sample beyond the plane)."""
    every = 1 if steps == STEPS else 5
    chars = [chr(code) for code in range(0, 0x10000, every) if not 0xD800 <= code <= 0xDFFF]
    chars += ["𠀀", "𡗗", "𝟏", "🄁", "😀", "\U000e0041"]
    normal = Normalizer(steps)

    differing = [c for c in chars if normal.piece(c) != _piece_char_by_char(steps, c)]

    assert differing == []


@pytest.mark.parametrize(
    "steps", [STEPS, (), ("nfkc", "case"), *((step,) for step in STEPS)], ids=",".join
)
def test_the_changes_found_for_the_whole_plane_at_once_are_those_of_each_character(steps):
    """`changes` maps the plane joined by NUL in one call per step; it must find exactly the
    characters `piece` changes, one by one, and what each becomes (NFKC takes a few of the
    plane's compatibility ideographs beyond it: those are asked one by one)."""
    normal = Normalizer(steps)
    plane = (chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF)

    expected = {char: piece for char in plane if (piece := normal.piece(char)) != char}

    assert normal.changes() == expected


def test_a_list_of_thousands_of_terms_finds_what_the_small_lists_automaton_finds(monkeypatch):
    """Past `DFA_UP_TO` strings the automaton is a contiguous NFA: a 200,000-term list took
    950 MB in every process as a DFA, 270 MB as an NFA. The hits must not change with it."""
    import random

    from auditor.policies import keywords as module

    rng = random.Random(3)
    alphabet = "内幕消息代开发票微信转账刷单返利赌博贷款abcdef1234"
    words = {"".join(rng.choice(alphabet) for _ in range(rng.randint(2, 5))) for _ in range(4_000)}
    watch = keywords(*sorted(words), allow=("内幕消息开会",))
    text_alphabet = alphabet + " -."
    texts = [
        "".join(rng.choice(text_alphabet) for _ in range(rng.randint(5, 80))) for _ in range(500)
    ]
    assert len(words) > module.DFA_UP_TO

    large = KeywordMatcher([watch])
    monkeypatch.setattr(module, "DFA_UP_TO", 10**9)
    small = KeywordMatcher([watch])

    found = [spans(large, text) for text in texts]
    assert found == [spans(small, text) for text in texts]
    assert sum(map(len, found)) > 1_000


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("time to kick back and relax", []),
        ("a kick-back, ok", ["kick-back"]),
        ("k i c k b a c k", ["k i c k b a c k"]),
        ("K.I.C.K back", ["K.I.C.K back"]),
        ("it was off the books", ["off the books"]),
        ("paid off. The books show it", []),
        ("内 幕 消 息", ["内 幕 消 息"]),
        ("内幕 消息", ["内幕 消息"]),
    ],
)
def test_removing_spaces_joins_letters_spelled_out_not_words_or_sentences(text, found):
    """Probe 14 #6: "kick back" (to relax) matched "kickback", and "off. The books" matched
    "off the books", failing a run at high severity."""
    matcher = KeywordMatcher([keywords("kickback", "off the books", "内幕消息")])
    assert [hit.matched for hit in matcher.scan(text)] == found


@pytest.mark.parametrize(
    ("pattern", "text", "matched"),
    [
        ("ABC", "代码ＡＢＣ", "ＡＢＣ"),
        ("ＡＢＣ", "代码ABC", "ABC"),
        ("ＡＢＣ", "代码ＡＢＣ", "ＡＢＣ"),
        ("(?i)abc", "代码ＡｂＣ", "ＡｂＣ"),
        (r"[Ａ-Ｚ]{2}\d{6}", "护照 AB123456", "AB123456"),
        (r"[A-Z]{2}[0-9]{6}", "护照 ＡＢ１２３４５６", "ＡＢ１２３４５６"),
        (r"（内部）", "这是(内部)资料", "(内部)"),
        (r"\Ｑ-\d+", "编号 Q-7", "Q-7"),  # an escaped fullwidth letter is a literal, not \Q
    ],
)
def test_a_regex_of_a_width_folding_list_reads_fullwidth_forms_as_ascii(pattern, text, matched):
    hits = KeywordMatcher([keywords(patterns=[pattern])]).scan(text)

    assert [(h.term, text[h.start : h.end], h.matched) for h in hits] == [
        (pattern, matched, matched)
    ]


def test_a_regex_of_a_list_without_nfkc_reads_fullwidth_forms_as_written():
    without = [step for step in STEPS if step != "nfkc"]

    assert KeywordMatcher([keywords(patterns=["ABC"], normalize=without)]).scan("ＡＢＣ") == []
    assert KeywordMatcher([keywords(patterns=["ＡＢＣ"], normalize=without)]).scan("ABC") == []


def test_a_regex_folded_to_one_that_does_not_compile_runs_as_written():
    hits = KeywordMatcher([keywords(patterns=["[{-ａ]x"])]).scan("中x")  # `[\{-a]`: backwards

    assert [h.matched for h in hits] == ["中x"]
