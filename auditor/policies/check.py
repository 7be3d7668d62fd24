"""`auditor policy check`: conflicts in a valid policy file, found before anything runs.

A conflict is not an error (the file loads and the engine applies the precedence), but it means
the file does not do what its author probably meant: a rule that deletes sooner than the statutory
floor (the floor wins, so the rule's deletion date is never met) or than a default that keeps
(the same), a scoped rule that ties with a
`then: review` rule on records both can cover (review wins the tie, so the scoped rule's own
outcome never happens there), a rule or hold that can never match, a detector's context that
it never reads, a hold that has already
ended, a term that its own allowlist excuses everywhere, a keyword list whose `terms: []` leaves
it nothing to match.

A warning is what may well be meant but is too large to pass unsaid: a hold whose scope is empty
holds every record of every conversation, so nothing is deleted while it lasts; a hold that
begins later; a period over a century; the same ids as sender and as receiver. It is printed,
but leaves the exit code 0.

Beside this module: `check_shadows` (rules another always beats, a conflict), `check_repeats`
(what is given twice; a scope condition naming no one, a conflict) and `check_terms` (terms too
short to stay inside one word, allowed phrases that excuse nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditor.partitions import DAY_MS, format_instant
from auditor.policies.check_repeats import repeats
from auditor.policies.check_shadows import never_deciding
from auditor.policies.check_terms import idle_phrases, short_terms
from auditor.policies.detectors import DETECTORS
from auditor.policies.durations import Duration, can_end_sooner
from auditor.policies.loading import load_policy
from auditor.policies.model import Policy, RetentionRule
from auditor.policies.normalize import normalizer
from auditor.policies.scope import IdPattern

CENTURY = Duration(100, "y")  # a retention past it is more likely a typo than meant


@dataclass(frozen=True, slots=True)
class Conflict:
    """One problem of a policy file, at the line of the rule, hold or term concerned."""

    line: int
    subject: str
    message: str
    warning: bool = False


def check_policy(path: str | Path, now_ms: int) -> tuple[Policy, list[Conflict]]:
    """Loads the file (ConfigError when invalid) and lists its conflicts at `now_ms`, by line."""
    policy = load_policy(path)
    return policy, find_conflicts(policy, now_ms)


def find_conflicts(policy: Policy, now_ms: int) -> list[Conflict]:
    found: list[Conflict] = []
    floor = policy.floor
    shadowed = never_deciding(policy)
    named = {rule.id for rule, _ in shadowed}
    for rule in policy.retention_rules():
        if rule.then == "delete" and floor and can_end_sooner(rule.keep_for, floor.keep_for):
            basis = f" ({policy.floor_basis})" if policy.floor_basis else ""
            found.append(
                Conflict(
                    rule.line,
                    rule.id,
                    f"deletes after {rule.keep_for.words()}, sooner than the statutory floor of "
                    f"{floor.keep_for.words()}{basis}; retention beats deletion, so records are "
                    f"kept until the floor ends: make keep_for at least {floor.keep_for}",
                )
            )
        default = policy.default
        if (
            rule.kind == "rule"
            and rule.then == "delete"
            and default is not None
            and default.then != "delete"
            and can_end_sooner(rule.keep_for, default.keep_for)
        ):
            found.append(
                Conflict(
                    rule.line,
                    rule.id,
                    f"deletes after {rule.keep_for.words()}, but the default ({default.id}) "
                    f"keeps every record {default.keep_for.words()} (then {default.then}) and "
                    "retention beats deletion, so these records are kept that long: to delete "
                    "them sooner, make the default `then: delete` and give what must be kept "
                    "longer a rule of its own",
                )
            )
        if rule.kind == "rule":
            if rule.scope.is_empty:
                found.append(
                    Conflict(
                        rule.line,
                        rule.id,
                        "its scope is empty, so it covers every record like the default: "
                        "give it a scope or make it the default",
                    )
                )
            reason = rule.scope.contradiction()
            if reason:
                found.append(Conflict(rule.line, rule.id, f"can never match: {reason}"))
            elif rule.id not in named:  # a tie on some days is said by "never decides"
                found.extend(_review_ties(rule, policy))
    found.extend(Conflict(rule.line, rule.id, why) for rule, why in shadowed)
    for rule in (*((policy.floor,) if policy.floor else ()), *policy.retention_rules()):
        if can_end_sooner(CENTURY, rule.keep_for):
            found.append(
                Conflict(
                    rule.line,
                    rule.id,
                    f"keeps records {rule.keep_for.words()}, over a century: if that was not "
                    "meant, correct keep_for",
                    warning=True,
                )
            )
    for rule_or_hold in (*policy.rules, *policy.holds):
        scope = rule_or_hold.scope
        if scope.senders and scope.receivers and _ids(scope.senders) == _ids(scope.receivers):
            found.append(
                Conflict(
                    rule_or_hold.line,
                    rule_or_hold.id,
                    "its scope names the same ids as sender and as receiver, so it covers only "
                    "messages between them (conditions combine with AND): to cover what each "
                    "sends or receives, name them as participant",
                    warning=True,
                )
            )
    for hold in policy.holds:
        if hold.starts_ms > now_ms:
            found.append(
                Conflict(
                    hold.line,
                    hold.id,
                    f"the hold begins {format_instant(hold.starts_ms)}, after the check's "
                    f"reference time {format_instant(now_ms)}: runs before then do not hold its "
                    "records in their verdicts (`due` holds them already); if it was meant to "
                    "begin already, correct `starts`",
                    warning=True,
                )
            )
        ended = hold.ends_ms is not None and hold.ends_ms <= now_ms
        if ended:
            found.append(
                Conflict(
                    hold.line,
                    hold.id,
                    f"the hold ended {format_instant(hold.ends_ms)} and protects nothing now: "
                    "keep it in the file (`due --policy` then judges the messages it held by the "
                    "retention rules again; removed, they stay `hold`), or move `ends` if legal "
                    "has not lifted it",
                    warning=True,
                )
            )
        reason = hold.scope.contradiction()
        since = hold.scope.sent_since_ms
        if not reason and hold.ends_ms is not None and since is not None and since >= hold.ends_ms:
            reason = (
                f"it covers messages sent from {format_instant(since)}, and ends "
                f"{format_instant(hold.ends_ms)}, before the first of them is sent"
            )
        if reason:
            found.append(Conflict(hold.line, hold.id, f"can never match: {reason}"))
        if hold.scope.is_empty and not ended:
            found.append(
                Conflict(
                    hold.line,
                    hold.id,
                    "its scope is empty, so it holds every record, and nothing is deleted while "
                    "it lasts; if the matter is narrower, give it a scope (participant, group, "
                    "sent)",
                    warning=True,
                )
            )
    for rule in policy.detectors:
        detector = DETECTORS[rule.detector]
        written = rule.context_words != detector.context_words or rule.low_confidence_severity
        if detector.base_confidence == "high" and written:
            found.append(
                Conflict(
                    rule.line,
                    rule.id,
                    f"its context is never read: {rule.detector} confirms every match by its own "
                    f"check, so every match has severity {rule.severity}: remove `context` and "
                    "`low_confidence_severity` from it",
                )
            )
    for keyword_list in policy.keyword_lists:
        if not keyword_list.terms and not keyword_list.patterns:
            found.append(
                Conflict(
                    keyword_list.line,
                    keyword_list.id,
                    "lists no term and no pattern (an empty list), so it can never match: list "
                    "at least one, or remove the list",
                )
            )
        if not keyword_list.allow:
            continue
        normal = normalizer(keyword_list.normalize)
        allowed = {normal.normalize(phrase.text) for phrase in keyword_list.allow}
        keys = set()
        for term in keyword_list.terms:
            key = normal.normalize(term.text)
            keys.add(key)
            if key in allowed:
                where = f" ({term.file}:{term.line})" if term.file else ""
                found.append(
                    Conflict(
                        keyword_list.line if term.file else term.line,
                        keyword_list.id,
                        f"term {term.text!r}{where} is also on its own allowlist, so it can "
                        "never match",
                    )
                )
        if not keys or keyword_list.patterns or "pinyin" in keyword_list.normalize:
            continue  # an empty list is said above; a phrase may excuse a pattern's or a spelling's
        found.extend(Conflict(*each) for each in idle_phrases(keyword_list, normal.normalize, keys))
    found.extend(Conflict(*each) for each in short_terms(policy.keyword_lists))
    found.extend(Conflict(*each) for each in repeats(policy))
    return sorted(found, key=lambda conflict: conflict.line)


def _ids(pattern: IdPattern) -> frozenset[str]:
    """The ids and globs of a condition, as it compares them: without regard to case."""
    return pattern.exact | {glob.lower() for glob in pattern.globs}


def _review_ties(rule: RetentionRule, policy: Policy) -> list[Conflict]:
    """The `then: review` rules that can keep some record exactly as long as the scoped `rule`
    (`then: keep` or `delete`) does: review takes precedence in a tie, so those records go to
    review, whatever `rule` says."""
    if rule.then == "review":
        return []
    found = []
    outcome = "deleted" if rule.then == "delete" else "kept"
    for other in policy.retention_rules():
        if (
            other.then != "review"
            or other.scope.contradiction()
            or not rule.scope.can_share_records_with(other.scope)
        ):
            continue
        tie = _tie(rule.keep_for, other.keep_for)
        if tie is None:
            continue
        label = f"{'default rule' if other.kind == 'default' else 'rule'} {other.id}"
        lengths = rule.keep_for.words()
        if other.keep_for.words() != lengths:
            lengths += f" and {other.keep_for.words()}"
        found.append(
            Conflict(
                rule.line,
                rule.id,
                f"keeps the records that {label} also covers as long as it does "
                f"({lengths}{tie}), and review takes precedence over {rule.then}: they go to "
                f"review rather than being {outcome}; give the rules different periods, or "
                "scopes that exclude each other",
            )
        )
    return found


def _tie(first: Duration, second: Duration) -> str | None:
    """Whether two periods counted from the same send day end at the same instant: "" on every
    day (`1y` and `12mo`, `2w` and `14d`), ", on some send days" (`365d` and `1y` outside leap
    years), or None. Only a fixed period against a calendar one needs the four-year cycle."""
    start = 1_704_067_200_000  # 2024-01-01: four years from a leap year, as `can_end_sooner`
    if (first.unit in ("mo", "y")) == (second.unit in ("mo", "y")):
        return "" if first.add_to(start) == second.add_to(start) else None
    days = range(start, start + 1461 * DAY_MS, DAY_MS)
    return ", on some send days" if any(first.add_to(d) == second.add_to(d) for d in days) else None
