"""The policy's memory in a run: what reading it leaves is paid by the coordinator and again by
every worker (the example policy's tables, normalisation, automata and patterns, stay about a
megabyte), and what the engine remembers as records pass stays flat however many days they span.

Session 19 cached `is_separator` per character while the `separators` table was built over the
whole Basic Multilingual Plane, so the cache kept 65,536 strings and their entries: 10 MB more in
every process of a run (the end-to-end peak went 96 -> 110 MB). Measured in a fresh interpreter,
since the tables are built once per process.
"""

import gc
import random
import subprocess
import sys
import tracemalloc

import pytest

from auditor.partitions import DAY_MS
from auditor.policies.engine import PolicyEngine
from auditor.policies.keywords import KeywordMatcher
from auditor.policies.loading import load_policy
from auditor.policies.model import KeywordList, Term
from auditor.policies.normalize import (
    STEPS,
    is_hard_separator,
    is_separator,
    is_soft_separator,
)
from auditor.policies.retention import RetentionDecider
from auditor.resources import example_policy

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
PLACES = (
    ("chat", "user0001", "user0002", ("txt",)),
    ("groupchat", "user0003", "group1", ("img",)),
    ("chat", "user0004", "user0005", ("audio",)),
)

RETAINED = """
import gc, tracemalloc
import auditor.pipeline
from auditor.policies.loading import load_policy
from auditor.resources import example_policy
tracemalloc.start()
policy = load_policy(example_policy())
gc.collect()
print(tracemalloc.get_traced_memory()[0])
"""


def test_loading_the_example_policy_keeps_under_4_mib() -> None:
    run = subprocess.run([sys.executable, "-c", RETAINED], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) < 4 * 2**20


def test_is_separator_is_the_step_over_every_character() -> None:
    for code in [*range(0xD800), *range(0xE000, 0x10000), 0x1F600, 0xE0020, 0x10FFFF]:
        char = chr(code)
        assert is_separator(char) == (is_hard_separator(char) or is_soft_separator(char)), code


def test_retention_remembers_a_bounded_number_of_send_days() -> None:
    """A worker of a ten-year backfill kept every send day's outcomes (4.6 MB for three kinds of
    record a day); a day seen again after it was forgotten gets the same verdicts. What stays
    (1.5 MB) is `durations._add_months`'s cache, bounded at 65,536 entries."""
    policy = load_policy(example_policy())
    decider = RetentionDecider(policy, NOV_1)
    fresh = RetentionDecider(policy, NOV_1)
    first_day = [decider.decide_facts((*place, NOV_1 - 3650 * DAY_MS)) for place in PLACES]
    tracemalloc.start()
    try:
        for day in range(3650, 0, -1):
            for place in PLACES:
                decider.decide_facts((*place, NOV_1 - day * DAY_MS + 1000))
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert retained < 3 * 2**20
    again = [decider.decide_facts((*place, NOV_1 - 3650 * DAY_MS)) for place in PLACES]
    assert again == first_day
    assert again == [fresh.decide_facts((*place, NOV_1 - 3650 * DAY_MS)) for place in PLACES]


def _terms(count: int) -> tuple[Term, ...]:
    """Distinct terms as lists are written: Chinese words of 2-4 ideographs, English words."""
    rng = random.Random(22)
    found: dict[str, None] = {}
    while len(found) < count:
        if rng.random() < 0.5:
            text = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 4)))
        else:
            text = " ".join(
                "".join(chr(rng.randint(97, 122)) for _ in range(rng.randint(5, 9)))
                for _ in range(rng.randint(1, 2))
            )
        found[text] = None
    return tuple(Term(text, 1) for text in found)


def test_a_keyword_matcher_costs_a_few_hundred_bytes_a_term() -> None:
    """A 200,000-term list is read by the coordinator and by every worker. Its matcher kept a
    dict for each key while it was built (peak 665 bytes a term, 46 MB more at 200,000 terms,
    whose holes stayed in the process) and a second string equal to each term as its key."""
    lists = [
        KeywordList(
            id="big",
            severity="high",
            terms=_terms(20_000),
            allow=(),
            patterns=(),
            normalize=STEPS,
            whole_words=True,
            line=1,
        )
    ]
    KeywordMatcher(lists)  # the per-process tables and caches, built once
    gc.collect()
    tracemalloc.start()
    try:
        matcher = KeywordMatcher(lists)
        gc.collect()
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert matcher.scan("他说 " + lists[0].terms[0].text)
    assert peak / 20_000 < 520
    assert retained / 20_000 < 235


def _letters(number: int) -> str:
    """A suffix unique to `number` without ASCII digits, so each text is remembered whole."""
    return "".join(chr(0x61 + number // 26**place % 26) for place in range(3))


def _memo_bytes(hits_a_text: int, digit: str) -> int:
    """What an engine holds after distinct short texts of `hits_a_text` keyword hits each fill
    a memo of 500 texts (with the first, which builds the process's tables before it counts).
    Collected (which empties the freed tuples Python keeps for reuse), not at its peak. With a
    `digit`, the texts fill the memo of texts with their digits zeroed instead."""
    engine = PolicyEngine(load_policy(example_policy()), NOV_1, memo_size=500)
    texts = ["，".join(["洗钱"] * hits_a_text) + "，" + _letters(n) + digit for n in range(499)]
    engine.matches("洗钱，aaa" + digit)
    gc.collect()
    tracemalloc.start()
    try:
        for text in texts:
            assert len(engine.matches(text)[0]) == hits_a_text
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("digit", ["", "7"])
def test_the_text_memos_hold_no_more_bytes_when_texts_have_many_hits(digit: str) -> None:
    """A keyword-heavy policy (about ten hits a text) made a full memo of 32,768 texts about
    60 MB, and a worker 152 MB against 91: the memos are bounded in hits as well as in texts."""
    one, many = _memo_bytes(1, digit), _memo_bytes(20, digit)
    assert many < 2 * one, (one, many)
