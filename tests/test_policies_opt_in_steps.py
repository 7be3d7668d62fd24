"""The normalisations a keyword list applies only when it names them: `markup` (tags, comments
and BBCode between the characters of a term) and `leet` (digits and signs for letters)."""

import pytest
from test_policies_evasions import matcher

from auditor.errors import ConfigError
from auditor.partitions import parse_instant
from auditor.policies.engine import PolicyEngine
from auditor.policies.loading import load_policy
from auditor.policies.normalize import STEPS


def hits(text, *terms, steps=()):
    return [
        (hit.term, hit.matched, hit.normalizations)
        for hit in matcher(*terms, steps=steps).scan(text)
    ]


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("有洗<b></b>钱吗", "洗<b></b>钱"),
        ("有洗<!-- -->钱吗", "洗<!-- -->钱"),
        ("[b]洗[/b]钱", "洗[/b]钱"),
        ('<span style="color:red">洗</span>钱', "洗</span>钱"),
        ("[color=red]洗[/color]钱", "洗[/color]钱"),
    ],
)
def test_markup_between_the_characters_of_a_term_hides_it_not(text, matched):
    assert hits(text, "洗钱", steps=["markup"]) == [("洗钱", matched, ("markup",))]
    assert hits(text, "洗钱") == []  # not a default step


def test_a_line_breaking_tag_is_judged_as_the_line_break_it_shows():
    assert hits("洗<br>钱", "洗钱", steps=["markup"]) == [
        ("洗钱", "洗<br>钱", ("markup", "separators"))
    ]
    assert hits("衣服要洗<br>钱包找到了", "洗钱", steps=["markup"]) == []


def test_a_term_inside_a_tag_is_still_found_and_an_escaped_tag_is_text():
    link = '<a href="https://x.cn/kickback">here</a>'

    assert hits(link, "kickback", steps=["markup"]) == [("kickback", "kickback", ())]
    assert hits("洗&lt;b&gt;钱", "洗钱", steps=["markup"]) == []


@pytest.mark.parametrize(
    ("text", "term", "matched"),
    [
        ("any k1ckb4ck?", "kickback", "k1ckb4ck"),
        ("my p@ssw0rd is", "password", "p@ssw0rd"),
        ("ki11 it", "kill", "ki11"),
        ("K1CKB4CK", "kickback", "K1CKB4CK"),
    ],
)
def test_digits_and_signs_typed_for_letters_hide_no_term(text, term, matched):
    found = hits(text, term, steps=["leet"])

    assert [(each[0], each[1]) for each in found] == [(term, matched)]
    assert "leet" in found[0][2]
    assert hits(text, term) == []  # not a default step


@pytest.mark.parametrize(
    "text",
    ["it costs 4.55", "the galaxy a55", "such as 5 apples", "path 4 5.5", "such as s3 buckets"],
)
def test_numbers_are_no_leetspeak(text):
    assert hits(text, "ass", "rat", steps=["leet"]) == []


def test_a_term_that_is_numbers_itself_is_found_as_typed():
    assert [each[1] for each in hits("call 911 now", "911", steps=["leet"])] == ["911"]


POLICY = """
version: 1
retention:
  default: {keep_for: 10y, then: delete}
keywords:
  - {id: plain, severity: high, terms: [洗钱, kickback]}
  - id: opted
    severity: high
    terms: [内幕, password]
    normalize: [decode, markup, nfkc, case, leet, separators]
"""


def test_a_list_names_the_opt_in_steps_and_the_engine_applies_them(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    policy = load_policy(path)
    engine = PolicyEngine(policy, parse_instant("2026-06-01"))

    assert [each.normalize for each in policy.keyword_lists] == [
        STEPS,
        ("decode", "markup", "nfkc", "case", "leet", "separators"),
    ]
    found = engine.matches("内<i></i>幕 p@ssw0rd 洗<i></i>钱 k1ckb4ck")[0]
    assert sorted(hit.matched for hit in found) == ["p@ssw0rd", "内<i></i>幕"]


def test_an_unknown_step_is_refused_in_one_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("leet, separators", "l33t, separators"), encoding="utf-8")

    with pytest.raises(ConfigError, match="l33t"):
        load_policy(path)
