"""Retention verdicts: how long a record must be kept, what happens then, and why.

The precedence follows Microsoft Purview's principles of retention, in this order:

1. A legal hold beats everything: a held record is kept until the hold is lifted.
2. Retention beats deletion: nothing is deleted while a retention rule (`then: keep` or
   `then: review`, and the statutory floor) still keeps it; a deletion that fell due earlier
   takes effect when that retention ends.
3. The longest retention wins: `retain_until` is the latest end of every retention that applies.
4. An explicitly scoped rule beats the default: when a scoped delete rule matches, the default's
   deletion does not apply (and between retentions of equal length the scoped rule wins).
5. Among delete rules the shortest wins.

The outcome depends only on which rules apply and how long their periods are for the record's
send day, so it is computed once per combination and day and then looked up: on the hot path a
verdict costs a few scope checks and one dictionary lookup. The verdict itself (disposition,
rules, reasons) is shared by every record it applies to; only `retain_until_ms` is the record's
own, so a decision is the pair `(retain_until_ms, verdict)`, and that pair is all a record adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from auditor.partitions import DAY_MS
from auditor.policies.model import Hold, Policy, RetentionRule
from auditor.policies.reading import Facts, facts_of
from auditor.policies.scope import ScopeSet
from auditor.records import Record

DISPOSITIONS = ("keep", "dispose", "review", "hold")
_AFTER = {"delete": "dispose", "review": "review", "keep": "keep"}
_KIND_RANK = {"rule": 2, "default": 1, "floor": 0}
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


Decision = tuple[int | None, RetentionVerdict]
"""`(retain_until_ms, verdict)`: `retain_until_ms` is None while an open-ended hold applies or
when the record has no usable timestamp."""

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


def resolve(rules: tuple[RetentionRule, ...], periods: tuple[int, ...]) -> _Resolution:
    """Applies the precedence to the rules that apply, given each one's period in ms."""
    keepers = [i for i, rule in enumerate(rules) if rule.then != "delete"]
    deleters = [i for i, rule in enumerate(rules) if rule.then == "delete"]
    keeper = (
        max(keepers, key=lambda i: (periods[i], _KIND_RANK[rules[i].kind], -rules[i].order))
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
                why = f"{_label(kept)} keeps it as long and takes precedence"
                if kept.kind == "rule" and rules[i].kind == "default":
                    why += " (an explicitly scoped rule beats the default)"
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
                why = f"{_label(deleting)} deletes it as soon and comes first in the file"
            else:
                why = (
                    f"among delete rules the shortest wins: {_label(deleting)} deletes it "
                    f"after {deleting.keep_for.words()}, not {rules[i].keep_for.words()}"
                )
            losers.append((rules[i].id, why))
        if keeper is None or periods[deleter] >= periods[keeper]:
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
        losers.append(
            (
                deleting.id,
                f"retention beats deletion: {_label(kept)} keeps it for "
                f"{kept.keep_for.words()}, past this rule's deletion after "
                f"{deleting.keep_for.words()}",
            )
        )
        if action == "keep":
            reason += f" (retention beats deletion), then {_label(deleting)} deletes it"
            return _Resolution(keeper, "delete", tuple(losers), reason)
    reason += ", then a reviewer decides" if action == "review" else ", then keeps it"
    return _Resolution(keeper, action, tuple(losers), reason)


class RetentionDecider:
    """Decides verdicts for one run; holds are filtered to those active at `now_ms` once.

    The rules' and active holds' scopes form one `ScopeSet`: bit `i` is the scoped rule `i`,
    the bits above them the holds, so one lookup per fact tells which of them cover a record.
    """

    def __init__(self, policy: Policy, now_ms: int) -> None:
        self.now_ms = now_ms
        self._scoped = tuple((1 << bit, rule) for bit, rule in enumerate(policy.rules))
        self._always = tuple(rule for rule in (policy.default, policy.floor) if rule is not None)
        self._holds = tuple(hold for hold in policy.holds if hold.active_at(now_ms))
        self._scopes = ScopeSet(
            [rule.scope for rule in policy.rules] + [hold.scope for hold in self._holds]
        )
        self._mask = self._scopes.mask
        self._rule_bits = (1 << len(policy.rules)) - 1
        self._hold_shift = len(policy.rules)
        self._days: dict[int, dict[int, tuple]] = {}  # send day -> rules -> `_resolve`'s outcome
        self._day: tuple[int, int, dict] = (0, 0, {})  # the last send day seen: start, end

    def decide(self, record: Record) -> Decision:
        return self.decide_facts(facts_of(record))

    def decide_facts(self, facts: Facts | tuple) -> Decision:
        """`decide` for facts already read (the engine reads facts and fields in one walk), as
        `Facts` or a plain tuple in the same order. Called once per record: one scope lookup
        (`ScopeSet.mask`) and one lookup of the outcome for those rules on the send day."""
        mask = self._mask(facts)
        sent = facts[4]
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
                decision = (until, kept if self.now_ms < until else after)
        if mask > self._rule_bits:
            held = mask >> self._hold_shift
            holds = self._holds
            return _held([holds[i] for i in range(len(holds)) if held >> i & 1], decision)
        return decision

    def _day_of(self, sent: int) -> tuple[int, int, dict]:
        """The send day of `sent` (UTC), and the outcomes already resolved for it."""
        start = sent - sent % DAY_MS
        return start, start + DAY_MS, self._days.setdefault(start, {})

    def _resolve(
        self, mask: int, day: int
    ) -> tuple[int, RetentionVerdict | None, RetentionVerdict | None]:
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


def _held(holds: list[Hold], decision: Decision) -> Decision:
    until, verdict = decision
    hold = holds[0]
    losers = [(other.id, f"legal hold {hold.id} comes first in the file") for other in holds[1:]]
    if verdict.winning_rule:
        losers.append((verdict.winning_rule, "a legal hold beats every retention rule"))
    losers.extend(verdict.losing_rules)
    until = max(hold.ends_ms, until) if hold.ends_ms is not None and until is not None else None
    reason = f"under legal hold {hold.id}: {hold.reason}"
    return until, RetentionVerdict("hold", hold.id, tuple(losers), reason)
