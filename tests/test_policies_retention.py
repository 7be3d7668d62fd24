"""Retention verdicts: each precedence principle, calendar periods, holds and missing timestamps."""

import textwrap

import pytest

from auditor.partitions import DAY_MS, parse_instant
from auditor.policies.durations import Duration, can_end_sooner
from auditor.policies.loading import load_policy
from auditor.policies.reading import Facts
from auditor.policies.retention import RetentionDecider, RetentionVerdict, held_later
from auditor.policies.scope import IdPattern, Scope, ScopeSet
from auditor.resources import example_policy

SENT = parse_instant("2026-01-01")


def decider(tmp_path, body: str, now: str) -> RetentionDecider:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body), encoding="utf-8")
    return RetentionDecider(load_policy(path), parse_instant(now))


def record(sender="alice", to="bob", chat_type="chat", sent=SENT, kind="txt"):
    return {
        "msg_id": "1",
        "timestamp": sent,
        "chat_type": chat_type,
        "from": sender,
        "to": to,
        "payload": {"bodies": [{"type": kind, "msg": "hi"}], "from": sender, "to": to},
    }


def test_a_legal_hold_beats_every_retention_rule(tmp_path):
    rules = decider(
        tmp_path,
        """
        retention:
          rules:
            - {id: purge-chats, scope: {chat_type: chat}, keep_for: 30d, then: delete}
        holds:
          - {id: case-17, reason: Supplier dispute, scope: {sender: alice}, starts: 2026-01-01}
        """,
        now="2026-06-01",
    )
    assert rules.decide(record()) == (
        None,
        RetentionVerdict(
            "hold",
            "case-17",
            (("purge-chats", "a legal hold beats every retention rule"),),
            "under legal hold case-17: Supplier dispute",
        ),
    )


def test_retention_beats_deletion_until_the_retention_ends(tmp_path):
    body = """
        retention:
          rules:
            - {id: keep-chats, scope: {chat_type: chat}, keep_for: 1y, then: keep}
            - {id: purge-alice, scope: {sender: alice}, keep_for: 30d, then: delete}
        """
    losers = (
        (
            "purge-alice",
            "retention beats deletion: rule keep-chats keeps it for 1 year, past this rule's "
            "deletion after 30 days",
        ),
    )
    reason = (
        "rule keep-chats keeps it for 1 year (retention beats deletion), "
        "then rule purge-alice deletes it"
    )
    until = parse_instant("2027-01-01")
    early = decider(tmp_path, body, now="2026-03-01").decide(record())
    late = decider(tmp_path, body, now="2027-01-02").decide(record())
    assert early == (until, RetentionVerdict("keep", "keep-chats", losers, reason))
    assert late == (until, RetentionVerdict("dispose", "keep-chats", losers, reason))


def test_records_the_same_rules_decide_on_one_day_share_one_verdict_but_not_the_instant(tmp_path):
    body = """
        retention:
          default: {keep_for: 30d, then: delete}
        """
    rules = decider(tmp_path, body, now="2026-01-31T12:00")
    morning, evening = SENT + 3_600_000, SENT + 20 * 3_600_000
    until_a, first = rules.decide(record(sent=morning))
    until_b, second = rules.decide(record(sent=evening))
    assert (until_a, until_b) == (morning + 30 * DAY_MS, evening + 30 * DAY_MS)
    assert (first.disposition, second.disposition) == ("dispose", "keep")
    assert rules.decide(record(sent=morning + 60_000))[1] is first
    assert rules.decide(record(sender="carol", sent=evening + 60_000))[1] is second


def test_the_longest_retention_wins(tmp_path):
    body = """
        retention:
          rules:
            - {id: one-year, scope: {chat_type: chat}, keep_for: 1y, then: review}
            - {id: three-years, scope: {sender: alice}, keep_for: 3y, then: review}
        """
    until, verdict = decider(tmp_path, body, now="2028-06-01").decide(record())
    assert until == parse_instant("2029-01-01")
    assert verdict == RetentionVerdict(
        "keep",
        "three-years",
        (
            (
                "one-year",
                "the longest retention wins: rule three-years keeps it for 3 years, not 1 year",
            ),
        ),
        "rule three-years keeps it for 3 years, then a reviewer decides",
    )
    _until, later = decider(tmp_path, body, now="2029-01-01").decide(record())
    assert later.disposition == "review"


def test_an_explicitly_scoped_delete_rule_beats_the_default_even_when_longer(tmp_path):
    body = """
        retention:
          default: {keep_for: 30d, then: delete}
          rules:
            - {id: chats, scope: {chat_type: chat}, keep_for: 1y, then: delete}
        """
    until, verdict = decider(tmp_path, body, now="2026-03-01").decide(record())
    assert until == parse_instant("2027-01-01")
    assert verdict == RetentionVerdict(
        "keep",
        "chats",
        (("default", "an explicitly scoped rule beats the default: rule chats decides deletion"),),
        "rule chats keeps it for 1 year, then deletes it",
    )


def test_between_retentions_of_equal_length_and_outcome_the_scoped_rule_beats_the_default(
    tmp_path,
):
    body = """
        retention:
          default: {keep_for: 12mo, then: review}
          rules:
            - {id: chats, scope: {chat_type: chat}, keep_for: 1y, then: review}
        """
    _until, verdict = decider(tmp_path, body, now="2027-06-01").decide(record())
    assert (verdict.winning_rule, verdict.disposition) == ("chats", "review")
    assert verdict.losing_rules == (
        ("default", "rule chats keeps it as long, and an explicitly scoped rule beats the default"),
    )


def test_among_delete_rules_the_shortest_wins(tmp_path):
    body = """
        retention:
          rules:
            - {id: ninety-days, scope: {chat_type: chat}, keep_for: 90d, then: delete}
            - {id: thirty-days, scope: {sender: alice}, keep_for: 30d, then: delete}
        """
    until, verdict = decider(tmp_path, body, now="2026-02-01").decide(record())
    assert until == SENT + 30 * DAY_MS
    assert verdict == RetentionVerdict(
        "dispose",
        "thirty-days",
        (
            (
                "ninety-days",
                "among delete rules the shortest wins: rule thirty-days deletes it after 30 days, "
                "not 90 days",
            ),
        ),
        "rule thirty-days keeps it for 30 days, then deletes it",
    )


def test_the_statutory_floor_keeps_records_a_short_delete_rule_would_drop(tmp_path):
    body = """
        retention:
          statutory_floor: {id: csl-art21, keep_for: 6mo}
          default: {keep_for: 30d, then: delete}
        """
    until, verdict = decider(tmp_path, body, now="2026-03-01").decide(record())
    assert until == parse_instant("2026-07-01")
    assert verdict == RetentionVerdict(
        "keep",
        "csl-art21",
        (
            (
                "default",
                "retention beats deletion: statutory floor csl-art21 keeps it for 6 months, past "
                "this rule's deletion after 30 days",
            ),
        ),
        "statutory floor csl-art21 keeps it for 6 months (retention beats deletion), "
        "then default rule default deletes it",
    )


def test_a_delete_rule_longer_than_the_floor_decides_and_the_floor_is_listed(tmp_path):
    body = """
        retention:
          statutory_floor: {id: csl-art21, keep_for: 6mo}
          default: {keep_for: 1y, then: delete}
        """
    _until, verdict = decider(tmp_path, body, now="2027-01-01").decide(record())
    assert verdict.disposition == "dispose"
    assert verdict.winning_rule == "default"
    assert verdict.losing_rules == (
        (
            "csl-art21",
            "its retention of 6 months ends no later than default rule default deletes it, "
            "after 1 year",
        ),
    )


def test_scopes_match_groups_by_glob_message_types_and_send_time(tmp_path):
    body = """
        retention:
          rules:
            - id: finance
              scope: {chat_type: groupchat, group: ["14025412067*"], message_type: [file, txt]}
              keep_for: 3y
              then: review
            - id: spring
              scope: {sent: {since: 2026-01-01, until: 2026-04-01}}
              keep_for: 2y
              then: review
        """
    rules = decider(tmp_path, body, now="2026-02-01")
    group_file = record(to="1402541206789", chat_type="groupchat", kind="file")
    assert rules.decide(group_file)[1].winning_rule == "finance"
    assert rules.decide(record(to="1402541206789", kind="file"))[1].winning_rule == "spring"
    assert rules.decide(record(sent=parse_instant("2026-04-01"))) == (
        None,
        RetentionVerdict("keep", "", (), "no retention rule applies to this record"),
    )


PARTICIPANTS = """
    retention:
      default: {id: default, keep_for: 30d, then: delete}
    holds:
      - {id: matter, reason: dispute, scope: {participant: [carol, "dave*"]}, starts: 2025-01-01}
    """


@pytest.mark.parametrize(
    ("sender", "to", "chat_type", "held"),
    [
        ("carol", "bob", "chat", True),
        ("bob", "carol", "chat", True),
        ("dave2", "carol", "chat", True),
        ("carol", "1402541206789", "groupchat", True),
        ("bob", "1402541206789", "groupchat", False),
        ("bob", "alice", "chat", False),
    ],
    ids=["sent", "received", "between-two", "sent-to-a-group", "group-member", "others"],
)
def test_a_participant_condition_covers_what_a_user_sent_or_received_but_not_group_members(
    tmp_path, sender, to, chat_type, held
):
    """Probe 14 item 4: scope conditions are ANDed, so no scope could say "sent or received by";
    a group's receiver is the group id, and the archive does not know its members."""
    rules = decider(tmp_path, PARTICIPANTS, now="2026-06-01")

    _until, verdict = rules.decide(record(sender=sender, to=to, chat_type=chat_type))

    assert (verdict.disposition, verdict.winning_rule) == (
        ("hold", "matter") if held else ("dispose", "default")
    )


def test_the_example_policys_hold_preserves_messages_the_custodians_received():
    """Probe 14 item 4: it covered only `sender`, so a message user0007 received was reported as
    over-retained though the hold's reason says both custodians' messages are preserved."""
    rules = RetentionDecider(load_policy(example_policy()), parse_instant("2026-11-20"))

    sent = parse_instant("2025-01-01")

    until, verdict = rules.decide(record(sender="user0100", to="user0007", sent=sent))

    assert (until, verdict.disposition, verdict.winning_rule) == (None, "hold", "matter-2026-017")


def test_ids_match_without_regard_to_case_as_easemob_keeps_them_in_lower_case():
    """A hold written `Zhang.Wei` held nothing of `zhang.wei`, the only form Easemob returns,
    and `policy check` said OK (probe 21 #1)."""
    custodians = IdPattern.of(["Zhang.Wei", "LI*"])

    assert [custodians.matches(who) for who in ("zhang.wei", "ZHANG.WEI", "lisi", "wang")] == [
        True,
        True,
        True,
        False,
    ]
    assert custodians.describe() == "Zhang.Wei, LI*"


def test_scope_sets_with_participants_agree_with_each_scopes_own_predicate():
    """`ScopeSet.mask` caches per id and ORs the sender's and the receiver's participant masks."""
    scopes = [
        Scope(participants=IdPattern.of(["carol"])),
        Scope(participants=IdPattern.of(["carol", "d*"]), senders=IdPattern.of(["bob"])),
        Scope(participants=IdPattern.of(["g1"]), chat_types=frozenset({"groupchat"})),
        Scope(receivers=IdPattern.of(["carol"])),
        Scope(),
    ]
    people = [None, "bob", "carol", "dan", "g1"]
    facts = [
        Facts(chat_type, sender, to, ["txt"], SENT)
        for chat_type in ("chat", "groupchat", None)
        for sender in people
        for to in people
    ]
    expected = [
        sum(1 << bit for bit, scope in enumerate(scopes) if scope.matches_facts(each))
        for each in facts
    ]

    scope_set = ScopeSet(scopes, cache_size=3)  # small enough to start over mid-way

    found = [scope_set.mask(each) for each in facts * 2]

    assert found == expected * 2


def test_a_record_without_a_timestamp_is_due_for_review(tmp_path):
    rules = decider(tmp_path, "retention: {default: {keep_for: 1y, then: delete}}\n", "2026-02-01")
    broken = record()
    del broken["timestamp"]
    until, verdict = rules.decide(broken)
    assert (until, verdict.disposition) == (None, "review")


def test_an_ended_hold_no_longer_applies_and_a_lifted_one_extends_retention(tmp_path):
    body = """
        retention:
          default: {keep_for: 30d, then: delete}
        holds:
          - {id: old, reason: closed case, scope: {}, starts: 2025-01-01, ends: 2026-01-15}
          - {id: open, reason: audit, scope: {receiver: bob}, starts: 2026-01-10, ends: 2026-09-01}
        """
    rules = decider(tmp_path, body, now="2026-03-01")
    until, held = rules.decide(record())
    assert (held.disposition, held.winning_rule) == ("hold", "open")
    assert until == parse_instant("2026-09-01")
    assert rules.decide(record(to="carol"))[1].disposition == "dispose"


@pytest.mark.parametrize(
    ("period", "sent", "expected"),
    [
        ("6mo", "2026-08-31T10:00", "2027-02-28T10:00"),
        ("1y", "2024-02-29", "2025-02-28"),
        ("30d", "2026-01-01", "2026-01-31"),
        ("2w", "2026-01-01", "2026-01-15"),
        ("12h", "2026-01-01", "2026-01-01T12:00"),
    ],
)
def test_periods_follow_the_calendar(period, sent, expected):
    assert Duration.parse(period).add_to(parse_instant(sent)) == parse_instant(expected)


def test_a_period_can_end_sooner_than_another_on_some_day_only():
    assert can_end_sooner(Duration.parse("180d"), Duration.parse("6mo"))
    assert can_end_sooner(Duration.parse("183d"), Duration.parse("6mo"))
    assert not can_end_sooner(Duration.parse("184d"), Duration.parse("6mo"))
    assert not can_end_sooner(Duration.parse("1y"), Duration.parse("6mo"))


@pytest.mark.parametrize("text", ["6 mnths", "0d", "30", "1.5y", "-3d", ""])
def test_a_malformed_period_is_refused(text):
    with pytest.raises(ValueError, match="is not a duration"):
        Duration.parse(text)


@pytest.mark.parametrize("odd", [["chat"], {"type": "chat"}, 5])
def test_a_chat_type_that_is_not_a_string_matches_no_chat_type_condition(tmp_path, odd):
    rules = decider(
        tmp_path,
        """
        retention:
          default: {id: default, keep_for: 30d, then: delete}
          rules:
            - {id: keep-chats, scope: {chat_type: chat}, keep_for: 7y, then: keep}
            - {id: purge-alice, scope: {sender: alice}, keep_for: 60d, then: delete}
        holds:
          - {id: case-9, reason: Audit, scope: {chat_type: chat, sender: alice}, starts: 2025-01-01}
        """,
        now="2026-06-01",
    )
    assert rules.decide(record(chat_type=odd)) == (
        SENT + 60 * DAY_MS,
        RetentionVerdict(
            "dispose",
            "purge-alice",
            (
                (
                    "default",
                    "an explicitly scoped rule beats the default: rule purge-alice decides "
                    "deletion",
                ),
            ),
            rules.decide(record(chat_type="groupchat"))[1].reason,
        ),
    )


@pytest.mark.parametrize("keep_for", ["8000y", "999999mo", "999999w"])
def test_a_period_past_the_year_9999_keeps_until_its_last_instant(tmp_path, keep_for):
    """`keep_for: 8000y` (someone's "for ever") raised "year 10026 is out of range" mid-run,
    after `policy check` had passed it (with `mo`, `policy check` itself crashed)."""
    from click.testing import CliRunner

    from auditor.cli import main

    body = f"""
        retention:
          default: {{id: forever, keep_for: {keep_for}, then: keep}}
          rules:
            - {{id: chats, scope: {{chat_type: chat}}, keep_for: 7y, then: delete}}
        """
    until, verdict = decider(tmp_path, body, "2026-12-01").decide(record())
    checked = CliRunner().invoke(main, ["policy", "check", str(tmp_path / "policy.yaml")])

    assert until == parse_instant("9999-12-31T23:59:59.999Z")
    assert (verdict.disposition, verdict.winning_rule) == ("keep", "forever")
    # checked to the end: the default's keeping outlasts the chats rule's deletion
    assert checked.exit_code == 1, checked.output
    assert ": chats: deletes after 7 years, but the default (forever) keeps every record" in (
        checked.output
    )
    assert ": 1 conflict(s); 2 retention rules" in checked.output


def test_a_hold_beginning_later_leaves_the_runs_verdict_and_holds_in_the_index(tmp_path):
    """Probe 23 #1: a hold that begins after the reference time is not applied to the run's
    verdict, but marks it, so the message index holds the record (`held_later`)."""
    body = """
        retention:
          default: {keep_for: 30d, then: delete}
        holds:
          - {id: now, reason: audit, scope: {receiver: bob}, starts: 2026-01-10, ends: 2026-04-01}
          - {id: later, reason: new matter, scope: {sender: alice}, starts: 2026-06-01}
          - {id: over, reason: closed, scope: {}, starts: 2025-01-01, ends: 2026-01-15}
        """
    rules = decider(tmp_path, body, now="2026-03-01")

    until, verdict = rules.decide(record(to="carol"))
    assert (verdict.disposition, verdict.winning_rule) == ("dispose", "default")
    assert verdict.later_hold == ("later", None)
    assert held_later(verdict.later_hold, until) == (None, "hold", "later")

    until, verdict = rules.decide(record())  # under `now` for the run, and `later` after it
    assert (verdict.disposition, verdict.winning_rule, until) == (
        "hold", "now", parse_instant("2026-04-01")
    )  # fmt: skip
    assert verdict.later_hold == ("later", None)

    _until, verdict = rules.decide(record(sender="dave", to="carol"))
    assert verdict.later_hold is None  # an ended hold holds nothing later


def test_a_period_past_the_year_9999_ends_at_its_last_instant_whatever_the_time_of_day(tmp_path):
    """The period was added to the send day's start and then to the time of day: a message
    sent at 05:00 was kept until five hours past the calendar's last instant (probe 30)."""
    body = """
        retention:
          default: {id: forever, keep_for: 100000y, then: delete}
        """
    rules = decider(tmp_path, body, "2026-12-01")
    untils = {rules.decide(record(sent=SENT + hours * 3_600_000))[0] for hours in (0, 5, 23)}

    assert untils == {parse_instant("9999-12-31T23:59:59.999Z")}


def test_a_period_past_the_year_9999_is_kept_when_judged_at_the_calendars_last_instant(tmp_path):
    """Kept for ever ends at the last instant; judged there (`scan --now
    9999-12-31T23:59:59.999Z`, the instant `due` names for that day) it was ended and deleted
    (small31): judged as the instant before, where no other retention ends, as `due` does."""
    body = """
        retention:
          default: {id: forever, keep_for: 100000y, then: delete}
        """
    rules = decider(tmp_path, body, "9999-12-31T23:59:59.999Z")
    until, verdict = rules.decide(record())

    assert (until, verdict.disposition) == (parse_instant("9999-12-31T23:59:59.999Z"), "keep")
