"""The report's top senders stay exact, and its memory flat, however many senders have findings
(probe 16 #6: a dict of Counters took ~0.3 KB a distinct sender, for the whole run)."""

import random
import tracemalloc
from collections import Counter

import pytest

from auditor.partitions import HOUR_MS
from auditor.report import ReportBuilder, RunInfo
from auditor.report import senders as senders_module
from auditor.report.senders import SenderTally

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
NAMES = ["(no sender)", "alice", "Bob", "张三", "\uffff", "\U0001f600", "\ud800x", "a\x00b", ""]
SEVERITIES = ["info", "low", "medium", "high", "critical"]  # the last one no policy names


def reference(added: list[tuple[str, str]], count: int) -> list[tuple[str, dict[str, int]]]:
    """What the top is by definition: most findings first, ties by sender's code points."""
    by_sender: dict[str, Counter[str]] = {}
    for sender, severity in added:
        by_sender.setdefault(sender, Counter())[severity] += 1
    ranked = sorted(by_sender.items(), key=lambda item: (-item[1].total(), item[0]))
    order = {name: rank for rank, name in enumerate(SEVERITIES)}
    return [
        (sender, dict(sorted(counts.items(), key=lambda item: order[item[0]])))
        for sender, counts in ranked[:count]
    ]


def findings(seed: int, n: int) -> list[tuple[str, str]]:
    chosen = random.Random(seed)
    pool = NAMES + [f"user{number}" for number in range(300)]
    return [
        (chosen.choice(pool[: chosen.randint(1, len(pool))]), chosen.choice(SEVERITIES))
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("in_memory", [1, 3, 50, 10_000])
def test_the_top_is_the_same_in_memory_and_spilled_to_disk(seed, in_memory):
    added = findings(seed, 3_000)
    tally = SenderTally(in_memory)
    for sender, severity in added:
        tally.add(sender, severity)

    assert tally.top(10) == reference(added, 10)
    assert tally.top(400) == reference(added, 400)
    tally.close()


def test_ties_are_broken_by_code_point_also_on_disk():
    """UTF-16 would put U+FFFF after an emoji; code points and UTF-8 bytes put it before."""
    tally = SenderTally(in_memory=1)
    for sender in ["\U0001f600", "\uffff", "b", "a", "\ud800"]:
        tally.add(sender, "high")

    assert [sender for sender, _ in tally.top()] == ["a", "b", "\ud800", "\uffff", "\U0001f600"]


def test_a_closed_tally_that_spilled_fails_loudly_instead_of_counting_fewer():
    tally = SenderTally(in_memory=1)
    tally.add("a", "high")
    tally.add("b", "high")
    tally.close()

    with pytest.raises(Exception, match="closed"):
        tally.top()


def test_memory_stays_flat_as_senders_grow_past_the_limit():
    tally = SenderTally(in_memory=5_000)
    tracemalloc.start()
    try:
        for number in range(10_000):
            tally.add(f"user{number}", "high")
        before = tracemalloc.get_traced_memory()[0]
        for number in range(10_000, 100_000):
            tally.add(f"user{number}", "medium" if number % 3 else "high")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    # 90,000 more senders held in memory take ~25 MB
    assert grown < 1_500_000, grown
    top = tally.top(3)
    assert [sender for sender, _ in top] == ["user0", "user1", "user10"]
    assert top[0][1] == {"high": 1}
    tally.close()


def test_a_reports_top_senders_are_the_same_when_spilled(monkeypatch):
    def summary() -> dict:
        builder = ReportBuilder(RunInfo(1, NOV_1, NOV_1 + HOUR_MS))
        for number, (sender, severity) in enumerate(findings(7, 2_000)):
            finding = {
                "msg_id": str(number),
                "category": "keyword",
                "rule": "terms",
                "severity": severity if severity != "critical" else "info",
                "message": "a term",
                "details": {},
            }
            builder.observe_finding(finding, (NOV_1 + number, sender))
        with builder:
            return builder.summary()["findings"]["top_senders"]

    in_memory = summary()
    monkeypatch.setattr(senders_module, "IN_MEMORY", 2)
    spilled = summary()

    assert spilled == in_memory
    assert len(in_memory) == 10 and in_memory[0]["count"] > in_memory[-1]["count"]


@pytest.mark.parametrize(("in_memory", "flat"), [(1_000, True), (1_000_000, False)])
def test_a_reports_memory_stays_flat_in_the_senders_with_findings(monkeypatch, in_memory, flat):
    monkeypatch.setattr(senders_module, "IN_MEMORY", in_memory)
    builder = ReportBuilder(RunInfo(1, NOV_1, NOV_1 + HOUR_MS))

    def feed(numbers: range) -> None:
        for number in numbers:
            finding = {"msg_id": str(number), "category": "keyword", "rule": "terms"}
            finding |= {"severity": "low", "message": "a term", "details": {}}
            builder.observe_finding(finding, (NOV_1 + number % HOUR_MS, f"sender{number}"))

    tracemalloc.start()
    try:
        feed(range(5_000))
        before = tracemalloc.get_traced_memory()[0]
        feed(range(5_000, 45_000))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        builder.close()

    assert (grown < 2_000_000) == flat, grown
