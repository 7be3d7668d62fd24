"""Retention verdicts: how long a record must be kept, what happens then, and why.

The precedence follows Microsoft Purview's principles of retention, in this order:

1. A legal hold beats everything: a held record is kept until the last hold that covers it is
   lifted, and indefinitely while one of them has no end; the hold named is the one that lasts
   longest.
2. Retention beats deletion: nothing is deleted while a retention rule (`then: keep` or
   `then: review`, and the statutory floor) still keeps it; a deletion that fell due earlier
   takes effect when that retention ends.
3. The longest retention wins: `retain_until` is the latest end of every retention that applies.
4. Between periods of equal length the more protective outcome wins: `then: review` beats
   `then: keep` and `then: delete`, because a person must look before anything is disposed (and
   the record is kept until they decide); `keep` and `delete` of equal length both end in
   deletion at that instant, so the delete rule decides.
5. An explicitly scoped rule beats the default: when a scoped delete rule matches, the default's
   deletion does not apply, and between otherwise equal retentions the scoped rule wins (the
   default beats the statutory floor, which only sets a minimum).
6. Among delete rules the shortest wins.
7. File order decides only what is left, between rules that say the same: the one listed
   earlier is named (its severity is the finding's).

The outcome depends only on which rules apply and how long their periods are for the record's
send day, so it is computed once per combination and day and then looked up: on the hot path a
verdict costs a few scope checks and one dictionary lookup. The verdict itself (disposition,
rules, reasons) is shared by every record it applies to; only `retain_until_ms` is the record's
own, so a decision is the pair `(retain_until_ms, verdict)`, and that pair is all a record adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from auditor.partitions import DAY_MS, format_instant
from auditor.policies.model import Hold, Policy, RetentionRule
from auditor.policies.reading import Facts, facts_of
from auditor.policies.scope import ScopeSet
from auditor.records import LATEST_MS, Record

DISPOSITIONS = ("keep", "dispose", "review", "hold")
DAYS_KEPT = 32  # send days whose outcomes `RetentionDecider` remembers at most
_AFTER = {"delete": "dispose", "review": "review", "keep": "keep"}
_KIND_RANK = {"rule": 2, "default": 1, "floor": 0}
_THEN_RANK = {"review": 1, "keep": 0}
_KIND_LABEL = {"rule": "rule", "default": "default rule", "floor": "statutory floor"}


class RetentionVerdict(NamedTuple):
    """What the policy says about a record at the run's reference time, apart from the instant.

    `losing_rules` pairs each rule that applied but did not decide with the reason. One verdict
    is shared by every record that the same rules decide on the same send day with the same
    disposition; `RetentionDecider.decide` returns it beside the record's `retain_until_ms`.
    """

    disposition: str
    winning_rule: str
    losing_rules: tuple[tuple[str, str], ...]
    reason: str
    later_hold: tuple[str, int | None] | None = None
    """For the message index only: `(hold id, its end)` when a hold that has not begun at the
    reference time covers the record (see `held_later`); the run's verdict is the fields above."""


Decision = tuple[int | None, RetentionVerdict]
"""`(retain_until_ms, verdict)`: `retain_until_ms` is None while an open-ended hold applies or
when the record has no usable timestamp."""

_Outcome = tuple[int, RetentionVerdict | None, RetentionVerdict | None]
"""`(period, verdict while it runs, verdict after)` for the rules that apply on one send day (see
`RetentionDecider._resolve`); typed, so compiled code unpacks it without iterating."""

IndexEntry = tuple[int | None, str, str]
"""`(retain_until_ms, action, rule)` as the message index stores them."""

NO_TIMESTAMP: Decision = (
    None,
    RetentionVerdict(
        "review",
        "",
        (),
        "the record has no usable timestamp, so no retention period can be computed",
    ),
)
NO_RULE: Decision = (
    None,
    RetentionVerdict("keep", "", (), "no retention rule applies to this record"),
)


@dataclass(frozen=True, slots=True)
class _Resolution:
    winner: int
    action: str
    losers: tuple[tuple[str, str], ...]
    reason: str


def _label(rule: RetentionRule) -> str:
    return f"{_KIND_LABEL[rule.kind]} {rule.id}"


def _tie_break(winner: RetentionRule, loser: RetentionRule) -> str:
    """Why `winner` beats `loser` when both keep a record equally long (principles 4, 5, 7)."""
    if winner.then != loser.then:
        return f"review takes precedence over {loser.then}"
    if winner.kind != loser.kind:
        if loser.kind == "floor":
            return "the statutory floor only sets a minimum"
        return "an explicitly scoped rule beats the default"
    return "is listed earlier"


def resolve(rules: tuple[RetentionRule, ...], periods: tuple[int, ...]) -> _Resolution:
    """Applies the precedence to the rules that apply, given each one's period in ms."""
    keepers = [i for i, rule in enumerate(rules) if rule.then != "delete"]
    deleters = [i for i, rule in enumerate(rules) if rule.then == "delete"]
    keeper = (
        max(
            keepers,
            key=lambda i: (
                periods[i],
                _THEN_RANK[rules[i].then],
                _KIND_RANK[rules[i].kind],
                -rules[i].order,
            ),
        )
        if keepers
        else None
    )
    explicit = [i for i in deleters if rules[i].kind == "rule"]
    pool = explicit or deleters
    deleter = min(pool, key=lambda i: (periods[i], rules[i].order)) if pool else None
    losers: list[tuple[str, str]] = []
    if keeper is not None:
        kept = rules[keeper]
        for i in keepers:
            if i == keeper:
                continue
            if periods[i] == periods[keeper]:
                why = f"{_label(kept)} keeps it as long, and {_tie_break(kept, rules[i])}"
            else:
                why = (
                    f"the longest retention wins: {_label(kept)} keeps it for "
                    f"{kept.keep_for.words()}, not {rules[i].keep_for.words()}"
                )
            losers.append((rules[i].id, why))
    if deleter is not None:
        deleting = rules[deleter]
        for i in deleters:
            if i == deleter:
                continue
            if i not in pool:
                why = (
                    f"an explicitly scoped rule beats the default: {_label(deleting)} "
                    "decides deletion"
                )
            elif periods[i] == periods[deleter]:
                why = f"{_label(deleting)} deletes it as soon, and is listed earlier"
            else:
                why = (
                    f"among delete rules the shortest wins: {_label(deleting)} deletes it "
                    f"after {deleting.keep_for.words()}, not {rules[i].keep_for.words()}"
                )
            losers.append((rules[i].id, why))
        if (
            keeper is None
            or periods[deleter] > periods[keeper]
            or (periods[deleter] == periods[keeper] and rules[keeper].then == "keep")
        ):
            if keeper is not None:
                kept = rules[keeper]
                losers.append(
                    (
                        kept.id,
                        f"its retention of {kept.keep_for.words()} ends no later than "
                        f"{_label(deleting)} deletes it, after {deleting.keep_for.words()}",
                    )
                )
            reason = f"{_label(deleting)} keeps it for {deleting.keep_for.words()}, then deletes it"
            return _Resolution(deleter, "delete", tuple(losers), reason)
    assert keeper is not None
    kept = rules[keeper]
    action = kept.then
    reason = f"{_label(kept)} keeps it for {kept.keep_for.words()}"
    if deleter is not None:
        deleting = rules[deleter]
        if periods[deleter] == periods[keeper]:
            why = f"{_label(kept)} keeps it as long, and {_tie_break(kept, deleting)}"
        else:
            why = (
                f"retention beats deletion: {_label(kept)} keeps it for "
                f"{kept.keep_for.words()}, past this rule's deletion after "
                f"{deleting.keep_for.words()}"
            )
        losers.append((deleting.id, why))
        if action == "keep":
            reason += f" (retention beats deletion), then {_label(deleting)} deletes it"
            return _Resolution(keeper, "delete", tuple(losers), reason)
    reason += ", then a reviewer decides" if action == "review" else ", then keeps it"
    return _Resolution(keeper, action, tuple(losers), reason)


class RetentionDecider:
    """Decides verdicts for one run; holds are filtered to those not ended at `now_ms` once.

    The rules' and holds' scopes form one `ScopeSet`: bit `i` is the scoped rule `i`, the bits
    above them the holds active at `now_ms`, then those that begin later, so one lookup per fact
    tells which of them cover a record. A hold that begins later does not change the run's
    verdict; it only marks the verdict (`later_hold`) so that the message index, read on later
    days, holds the record (see `held_later`). A held record's verdict depends on its holds and its
    rules' verdict only, so it is made once per such pair and looked up.
    """

    def __init__(self, policy: Policy, now_ms: int) -> None:
        # a retention kept for ever ends at the calendar's last instant: judged there, it is
        # judged as the instant before, where no other ends (as `due.judged_at` does)
        now_ms = min(now_ms, LATEST_MS - 2)
        self.now_ms = now_ms
        self._scoped = tuple((1 << bit, rule) for bit, rule in enumerate(policy.rules))
        self._always = tuple(rule for rule in (policy.default, policy.floor) if rule is not None)
        active = tuple(hold for hold in policy.holds if hold.active_at(now_ms))
        later = tuple(hold for hold in policy.holds if hold.starts_ms > now_ms)
        self._holds = active + later
        self._active = len(active)
        self._scopes = ScopeSet(
            [rule.scope for rule in policy.rules] + [hold.scope for hold in self._holds]
        )
        self._rule_bits = (1 << len(policy.rules)) - 1
        self._hold_shift = len(policy.rules)
        self._days: dict[int, dict[int, _Outcome]] = {}  # send day -> rules -> outcome
        self._day: tuple[int, int, dict[int, _Outcome]] = (0, 0, {})  # the last day: start, end
        self._held: dict[tuple[int, RetentionVerdict], tuple[int | None, RetentionVerdict]] = {}

    def decide(self, record: Record) -> Decision:
        return self.decide_facts(facts_of(record))

    def decide_facts(self, facts: Facts | tuple) -> Decision:
        """`decide` for facts already read (the engine reads facts and fields in one walk), as
        `Facts` or a plain tuple in the same order. Called once per record: one scope lookup
        (`ScopeSet.mask`) and one lookup of the outcome for those rules on the send day."""
        mask = self._scopes.mask(facts)
        sent: int | None = facts[4]  # typed, so compiled code compares and adds native ints
        if sent is None:
            decision = NO_TIMESTAMP
        else:
            start, end, outcomes = self._day
            if not start <= sent < end:
                start, end, outcomes = self._day = self._day_of(sent)
            rules = mask & self._rule_bits
            entry = outcomes.get(rules)
            if entry is None:
                entry = outcomes[rules] = self._resolve(rules, start)
            period, kept, after = entry
            if kept is None or after is None:
                decision = NO_RULE
            else:
                until = sent + period
                if until >= LATEST_MS:
                    # the period reaches the calendar's end on the send day's start; later in
                    # the day it would pass it: every such message is kept to its last instant
                    until = LATEST_MS - 1
                decision = (until, kept if self.now_ms < until else after)
        if mask > self._rule_bits:
            return self._under_holds(mask >> self._hold_shift, decision)
        return decision

    def _under_holds(self, held: int, decision: Decision) -> Decision:
        """The decision for a record that the holds of bit mask `held` cover: kept until the
        later of the last active hold's end and its retention's (None: indefinitely); when only
        holds that begin later cover it, its decision is unchanged but for `later_hold`."""
        until, verdict = decision
        key = (held, verdict)
        found = self._held.get(key)
        if found is None:
            holds = [hold for i, hold in enumerate(self._holds) if held >> i & 1]
            found = self._held[key] = self._outcome(holds, verdict)
        ends, held_verdict = found
        if held_verdict.disposition != "hold":
            return until, held_verdict
        if ends is None or until is None:
            return None, held_verdict
        return max(ends, until), held_verdict

    def _outcome(
        self, holds: list[Hold], verdict: RetentionVerdict
    ) -> tuple[int | None, RetentionVerdict]:
        """`_held` under the active ones of `holds`, marked with what all of them say when
        some begin later (the verdict itself when none is active)."""
        active = [hold for hold in holds if hold.active_at(self.now_ms)]
        ends, outcome = _held(active, verdict) if active else (None, verdict)
        if len(active) < len(holds):
            every_end, every = _held(holds, verdict)
            outcome = outcome._replace(later_hold=(every.winning_rule, every_end))
        return ends, outcome

    def _day_of(self, sent: int) -> tuple[int, int, dict[int, _Outcome]]:
        """The send day of `sent` (UTC), and the outcomes already resolved for it. Records come
        in time order, so at most `DAYS_KEPT` days are kept, all forgotten at once when a new
        day would exceed them (a forgotten day is resolved again, to the same outcomes): a worker
        of a ten-year backfill kept every day's outcomes, about 1.3 KB a day (4.6 MB)."""
        start = sent - sent % DAY_MS
        days = self._days
        outcomes = days.get(start)
        if outcomes is None:
            if len(days) >= DAYS_KEPT:
                days.clear()
            outcomes = days[start] = {}
        return start, start + DAY_MS, outcomes

    def _resolve(self, mask: int, day: int) -> _Outcome:
        """The outcome for records sent on `day` that these rules apply to (a period added to a
        time of day keeps that time of day, so one day shares one outcome): the winning period,
        the verdict while it runs, and the verdict once it has run out (None: no rule applies).
        """
        rules = tuple(rule for bit, rule in self._scoped if mask & bit) + self._always
        if not rules:
            return (0, None, None)
        periods = tuple(rule.keep_for.add_to(day) - day for rule in rules)
        found = resolve(rules, periods)
        winner = rules[found.winner].id
        return (
            periods[found.winner],
            RetentionVerdict("keep", winner, found.losers, found.reason),
            RetentionVerdict(_AFTER[found.action], winner, found.losers, found.reason),
        )


def _lasting(hold: Hold) -> tuple[bool, int]:
    """Orders holds by how long they last: an open-ended one longest."""
    return (hold.ends_ms is None, hold.ends_ms if hold.ends_ms is not None else 0)


def longest_hold(holds: list[Hold]) -> Hold:
    """The hold a record under `holds` is named after: the one that lasts longest, the first
    listed of equals (`auditor due --policy` names its holds so too)."""
    return max(holds, key=_lasting)


def _held(holds: list[Hold], verdict: RetentionVerdict) -> tuple[int | None, RetentionVerdict]:
    """The verdict under `holds` (in file order), named after the one that lasts longest (the
    first listed of equals), and its end: the last of their ends, None while one is open."""
    hold = longest_hold(holds)
    losers = [(other.id, _why_hold_lost(hold, other)) for other in holds if other is not hold]
    if verdict.winning_rule:
        losers.append((verdict.winning_rule, "a legal hold beats every retention rule"))
    losers.extend(verdict.losing_rules)
    reason = f"under legal hold {hold.id}: {hold.reason}"
    return hold.ends_ms, RetentionVerdict("hold", hold.id, tuple(losers), reason)


def _why_hold_lost(winner: Hold, loser: Hold) -> str:
    """Why `loser` is not the hold named, `winner` lasting at least as long."""
    last, ends = winner.ends_ms, loser.ends_ms
    if last is None:
        if ends is None:
            return f"legal hold {winner.id} has no end either, and is listed earlier"
        return f"legal hold {winner.id} has no end, and this one ends {format_instant(ends)}"
    assert ends is not None  # the winner lasts at least as long
    if ends == last:
        return f"legal hold {winner.id} ends at the same time, and is listed earlier"
    return (
        f"legal hold {winner.id} lasts longer, until {format_instant(last)}; this one ends "
        f"{format_instant(ends)}"
    )


def held_later(later_hold: tuple[str, int | None] | list, until: int | None) -> IndexEntry:
    """What the message index stores for a record that a hold not yet begun at the reference
    time covers (`RetentionVerdict.later_hold`): held already. `auditor due`, asked about a later
    day, must never list a held message for deletion; one shown as held before its hold begins
    is only kept a little longer. `until` is the record's `retain_until_ms` for the run."""
    hold, ends = later_hold
    if ends is None or until is None:
        return None, "hold", hold
    return max(ends, until), "hold", hold
