"""The opt-in `pinyin` step: a list's Chinese terms also match their pinyin spellings, typed
whole (`xiqian`, `xi qian`, `XiQian`, `x-i-q-i-a-n`) or half (`洗qian`, `xi钱`), as whole words
of Latin letters, while one character's reading alone (`bang`, `men`, `long`) never alarms."""

import dataclasses
import json
import subprocess
import sys

import orjson
import pytest
from test_policies_evasions import matcher
from test_run_local import audit_args, findings, invoke, only_bag

from auditor.archive.keys import generate_key_files
from auditor.emulator.dataset import DEFAULT_START_MS, SyntheticHistory
from auditor.errors import ConfigError
from auditor.partitions import HOUR_MS, parse_instant
from auditor.policies.engine import PolicyEngine
from auditor.policies.keywords import KeywordMatcher
from auditor.policies.loading import load_policy
from auditor.policies.model import KeywordList, Term
from auditor.policies.normalize import STEPS
from auditor.policies.pinyin import MAX_FULL, spellings


def listed(*terms, steps=("pinyin",), **changes) -> KeywordList:
    """The whole-word list of `matcher`, with `changes` to its fields."""
    return dataclasses.replace(matcher(*terms, steps=steps)._groups[0].lists[0], **changes)


def hits(text, *terms, steps=("pinyin",), allow=()):
    keyword_list = listed(*terms, steps=steps, allow=tuple(Term(each, 1) for each in allow))
    return [
        (hit.term, hit.matched, hit.start, hit.end, hit.normalizations)
        for hit in KeywordMatcher([keyword_list]).scan(text)
    ]


@pytest.mark.parametrize(
    ("text", "matched", "steps"),
    [
        ("can you xiqian for me", "xiqian", ("pinyin",)),
        ("can you xi qian for me", "xi qian", ("separators", "pinyin")),
        ("XiQian ok?", "XiQian", ("case", "pinyin")),
        ("Xi Qian ok?", "Xi Qian", ("case", "separators", "pinyin")),
        ("xi-qian", "xi-qian", ("separators", "pinyin")),
        ("x-i-q-i-a-n", "x-i-q-i-a-n", ("separators", "pinyin")),
        ("ｘｉｑｉａｎ", "ｘｉｑｉａｎ", ("nfkc", "pinyin")),
        ("帮我洗qian", "洗qian", ("pinyin",)),
        ("帮我xi钱", "xi钱", ("pinyin",)),
        ("帮我洗 qian", "洗 qian", ("separators", "pinyin")),
        ("xianqian", "xianqian", ("pinyin",)),  # 洗 reads xian too: every reading counts
    ],
)
def test_a_term_typed_in_pinyin_is_found_on_the_raw_characters(text, matched, steps):
    start = text.index(matched)

    assert hits(text, "洗钱") == [("洗钱", matched, start, start + len(matched), steps)]
    assert hits(text, "洗钱", steps=()) == []  # not a default step


@pytest.mark.parametrize(
    "text",
    [
        "taxiqianbao",  # inside a longer word
        "xiqiang",
        "xiqian2",
        "xiqi an",  # a space that splits a syllable
        "xi. qian",  # across a sentence
        "xi,qian",  # punctuation between Latin letters joins only where the term has it
        "qianxi",
        "xq",  # no initials
        "衣服洗 钱包",  # the term itself keeps its gap rule
        "xian钱",  # half typed in a reading the term's context does not give
    ],
)
def test_a_near_miss_is_no_finding(text):
    assert hits(text, "洗钱") == []


@pytest.mark.parametrize(
    ("spelled", "characters"),
    [
        ("衣服洗 qian包", "衣服洗 钱包"),  # both sides of the gap run on: two words
        ("衣服xi 钱包", "衣服洗 钱包"),
        ("手套 xian在就寄", "手套 现在就寄"),
        ("有内幕 xiao xi吗", "有内幕 消息吗"),
        ("有个老鼠 cang的", "有个老鼠 仓的"),
    ],
)
def test_a_gap_beside_a_spelled_character_is_judged_as_between_the_characters(spelled, characters):
    terms = ("洗钱", "套现", "内幕消息", "老鼠仓")

    assert hits(characters, *terms) == []
    assert hits(spelled, *terms) == []


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("帮我洗 qian，懂吗", "洗 qian"),  # a side of the gap is a piece of the term alone
        ("tao 现的事别说出去", "tao 现"),
        ("有 nei mu 消息吗", "nei mu 消息"),
        ("有个lao 鼠 cang的", "lao 鼠 cang"),
        ("老板说xi qian没问题", "xi qian"),  # between syllables a space is how pinyin is typed
        ("衣服洗qian包", "洗qian"),  # no gap: as 衣服洗钱包
    ],
)
def test_a_spelling_with_a_gap_that_splits_the_term_is_found(text, matched):
    found = hits(text, "洗钱", "套现", "内幕消息", "老鼠仓")

    assert [hit[1] for hit in found] == [matched]


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Tao Xian will join the call",
        "Tao Xian先生今天不在",
        "@Du Pin 请看一下合同",
        "@dupin 请看一下",
        "Dr Du Bo is on leave",
        "Hi Fan Qiang, the report is ready",
        "Fan Qiang老师好",
        "the Dupin stories by Poe",
        "Zhang Xinghui joined the call",
        "Xinghui Zhang joined the call",
        "Huikou Road is closed today",
    ],
)
def test_a_name_spelled_as_a_term_is_no_finding_in_a_names_context(text):
    assert hits(text, "套现", "毒品", "赌博", "翻墙", "行贿", "回扣") == []


@pytest.mark.parametrize(
    "text",
    [
        "du pin",
        "DUPIN 多少钱",
        "Dupin 多少钱",  # capitalised as the first word
        "还有Dupin吗",
        "hi du pin 多少钱",  # a greeting before a spelling not written as a name
        "don't mention DuPin in this group",  # capitalised syllable by syllable
        "he said Du Pin is no problem",  # several words: the term typed capitalised
        "mr. wang wants 毒品",  # the characters themselves: never a name
    ],
)
def test_the_term_typed_as_no_name_is_still_found(text):
    assert [hit[0] for hit in hits(text, "毒品")] == ["毒品"]


@pytest.mark.parametrize(
    ("term", "text"),
    [("棒", "bang bang"), ("班", "ban him"), ("们", "men only"), ("饭", "a fan"), ("龙", "long")],
)
def test_one_characters_reading_alone_never_alarms(term, text):
    assert spellings(term) == ()
    assert hits(text, term) == []


def test_a_space_joins_syllables_in_a_whole_words_list_but_not_two_words_of_the_text():
    assert [hit[1] for hit in hits("nei mu xiao xi", "内幕消息")] == ["nei mu xiao xi"]
    assert [hit[1] for hit in hits("neimu xiaoxi", "内幕消息")] == ["neimu xiaoxi"]
    assert hits("neim uxiaoxi", "内幕消息") == []


def test_a_term_of_four_characters_is_half_typed_a_word_at_a_time():
    assert [hit[1] for hit in hits("有内幕xiaoxi", "内幕消息")] == ["内幕xiaoxi"]
    assert [hit[1] for hit in hits("neimu消息", "内幕消息")] == ["neimu消息"]
    assert hits("内mu消息", "内幕消息") == []


def test_spellings_are_whole_words_even_in_a_list_that_matches_inside_words():
    scan = KeywordMatcher([listed("洗钱", whole_words=False)]).scan

    assert [hit.matched for hit in scan("去xiqian吧")] == ["xiqian"]
    assert scan("taxiqianbao") == []
    assert [hit.matched for hit in scan("一起洗钱包")] == ["洗钱"]  # the term itself as before


def test_only_the_list_that_names_the_step_is_spelled_and_it_costs_no_second_pass():
    plain = listed("洗钱", steps=(), id="plain")
    spelled = listed("回扣", id="spelled")
    both = KeywordMatcher([plain, spelled])

    found = both.scan("xiqian huikou 洗钱 回扣")
    assert sorted((hit.keyword_list.id, hit.matched) for hit in found) == [
        ("plain", "洗钱"), ("spelled", "huikou"), ("spelled", "回扣"),
    ]  # fmt: skip
    assert len(both._groups) == 1  # one automaton, one pass over each text, as without it


def test_an_allowed_phrase_is_allowed_in_pinyin_too():
    assert hits("fan xi qian training", "洗钱", allow=["反洗钱"]) == []
    assert hits("反xiqian培训", "洗钱", allow=["反洗钱"]) == []
    assert [hit[1] for hit in hits("xi qian", "洗钱", allow=["反洗钱"])] == ["xi qian"]


def test_a_polyphone_is_spelled_in_each_reading_and_a_traditional_term_as_simplified():
    assert {"yin hang", "yin xing", "银 hang"} <= set(spellings("银行"))
    assert [hit[1] for hit in hits("yinhang", "银行")] == ["yinhang"]
    assert [hit[1] for hit in hits("yin xing", "银行")] == ["yin xing"]
    assert [hit[0] for hit in hits("xiqian", "洗錢")] == ["洗錢"]
    assert {"nv ren", "nu ren"} <= set(spellings("女人"))  # ü typed v or u


def test_a_term_whose_readings_multiply_past_the_bound_is_spelled_as_read_in_context():
    term = "重庆银行行长"  # 重 reads three ways, 行 three, 长 two: 54 full spellings

    assert spellings(term) == ("chong qing yin hang hang zhang",)
    assert len([each for each in spellings("行长") if each.isascii()]) == 6 <= MAX_FULL
    assert [hit[1] for hit in hits("chongqing yinhang hangzhang", term)] == [
        "chongqing yinhang hangzhang"
    ]


def test_a_long_term_of_characters_read_with_u_umlaut_stays_within_the_bound():
    found = spellings("女" * 14)  # each ü typed v or u doubled them: 16,384 spellings

    assert found == (" ".join(["nv"] * 14),)


def test_a_short_spelling_and_a_term_not_wholly_chinese_are_not_spelled():
    assert "a yi" not in spellings("阿姨")  # `ayi`: fewer than four letters
    assert spellings("A股") == ()
    assert spellings("kickback") == ()


POLICY = """
version: 1
retention:
  default: {keep_for: 10y, then: delete}
keywords:
  - {id: plain, severity: high, terms: [洗钱, kickback]}
  - id: spelled
    severity: high
    terms: [内幕消息, 回扣]
    allow: [反洗钱]
    normalize: [nfkc, case, traditional, separators, pinyin]
"""


def test_a_list_names_the_step_and_its_findings_say_pinyin(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    policy = load_policy(path)
    engine = PolicyEngine(policy, parse_instant("2026-06-01"))

    assert policy.keyword_lists[1].normalize == (
        "nfkc", "case", "traditional", "separators", "pinyin",
    )  # fmt: skip
    found = engine.matches("Nei Mu Xiao Xi, hui kou 20%, xiqian")[0]
    assert [(hit.term, hit.normalized_term, hit.matched, hit.normalizations) for hit in found] == [
        ("内幕消息", "内幕消息", "Nei Mu Xiao Xi", ("case", "separators", "pinyin")),
        ("回扣", "回扣", "hui kou", ("separators", "pinyin")),
    ]


def test_a_list_without_chinese_terms_may_name_the_step_and_an_unknown_step_is_refused(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("[内幕消息, 回扣]", "[kickback]"), encoding="utf-8")
    assert load_policy(path).keyword_lists[1].normalize[-1] == "pinyin"

    path.write_text(POLICY.replace("pinyin]", "pinyn]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="pinyn"):
        load_policy(path)


def test_a_list_naming_the_step_without_pypinyin_installed_is_refused_in_one_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    without = "import sys; sys.modules['pypinyin'] = None; from auditor.cli import main; main()"

    ran = subprocess.run(
        [sys.executable, "-c", without, "policy", "check", str(path)],
        capture_output=True,
        text=True,
    )

    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip().splitlines() == [
        f"auditor: error: {path}:11: keywords[1].normalize: the pinyin step needs the "
        "pypinyin>=0.55 package, which is not installed (pip install 'pypinyin>=0.55')"
    ]


def test_pypinyin_is_loaded_only_for_a_policy_with_a_list_that_names_the_step(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    probe = (
        "import sys\n"
        "from auditor.partitions import parse_instant\n"
        "from auditor.policies.engine import PolicyEngine\n"
        "from auditor.policies.loading import load_policy\n"
        "from auditor.resources import example_policy\n"
        "path = sys.argv[1] or example_policy()\n"
        "engine = PolicyEngine(load_policy(path), parse_instant('2026-06-01'))\n"
        "engine.matches('xiqian 洗钱')\n"
        "print('pypinyin' in sys.modules)\n"
    )

    def loaded(policy: str) -> str:
        ran = subprocess.run(
            [sys.executable, "-c", probe, policy], capture_output=True, text=True, check=True
        )
        return ran.stdout.strip()

    assert loaded("") == "False"
    assert loaded(str(path)) == "True"


def test_a_run_from_local_files_archives_a_pinyin_finding(tmp_path):
    keys = generate_key_files(tmp_path / "keys", identity="auditor@test")
    history = SyntheticHistory(messages=240, days=1)
    records = [
        history.record(i) for i in history.index_range(DEFAULT_START_MS, DEFAULT_START_MS + HOUR_MS)
    ]
    texts = [each for each in records if each["payload"]["bodies"][0]["type"] == "txt"]
    texts[0]["payload"]["bodies"][0]["msg"] = "明天帮我 Xi Qian 一下"
    texts[1]["payload"]["bodies"][0]["msg"] = "the taxiqianbao app is down"
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("[内幕消息, 回扣]", "[内幕消息, 回扣, 洗钱]"), "utf-8")
    args = audit_args(keys, tmp_path / "archive")
    args[args.index("--policies") + 1] = policy

    result = invoke("run", "--from", export, *args)

    assert result.exit_code == 0, result.output
    found = [f for f in findings(only_bag(tmp_path / "archive")) if f["rule"] == "spelled"]
    assert [(f["msg_id"], f["details"]["matched"], f["details"]["term"]) for f in found] == [
        (texts[0]["msg_id"], "Xi Qian", "洗钱")
    ]
    details = found[0]["details"]
    assert details["normalizations"] == ["case", "separators", "pinyin"]
    assert (details["start"], details["end"]) == (5, 12)
    assert json.loads(json.dumps(details))["listed_term"] == "洗钱"


CORPUS_LIST = KeywordList(
    id="corpus",
    severity="high",
    terms=tuple(
        Term(term, 1)
        for term in (
            *("洗钱", "回扣", "内幕消息", "内幕交易", "保本保息", "代开发票", "老鼠仓"),
            *("好处费", "虚开发票", "赌博", "诈骗", "传销", "行贿", "套现", "翻墙", "毒品"),
            *("棒", "们", "毒", "枪", "和"),  # one character each: never spelled
        )
    ),
    allow=(Term("反洗钱", 1),),
    patterns=(),
    normalize=(*STEPS, "pinyin"),
    whole_words=True,
    line=1,
)
