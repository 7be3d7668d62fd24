"""Precedence where rules or holds tie: review wins an equal retention, the last hold decides, and
`policy check` warns when a scoped rule's outcome is overridden by such a tie."""

import textwrap

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.partitions import parse_instant
from auditor.policies.loading import load_policy
from auditor.policies.retention import RetentionDecider, RetentionVerdict

SENT = parse_instant("2022-06-01")
DEFAULT_LOSES = (
    "default",
    "retention beats deletion: rule finance-review keeps it for 3 years, past this rule's "
    "deletion after 2 years",
)


def write(tmp_path, body: str):
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body), encoding="utf-8")
    return path


def decide(tmp_path, body: str, now: str, record: dict):
    return RetentionDecider(load_policy(write(tmp_path, body)), parse_instant(now)).decide(record)


def message(sender="x", to="g1", chat_type="groupchat", sent=SENT):
    return {
        "msg_id": "1",
        "timestamp": sent,
        "chat_type": chat_type,
        "from": sender,
        "to": to,
        "payload": {"bodies": [{"type": "txt", "msg": "hi"}], "from": sender, "to": to},
    }


KEEP = "- {id: archive-keep, scope: {chat_type: groupchat}, keep_for: 3y, then: keep}"
REVIEW = "- {id: finance-review, scope: {group: g1}, keep_for: 3y, then: review}"


@pytest.mark.parametrize(
    "rules", [(KEEP, REVIEW), (REVIEW, KEEP)], ids=["keep-first", "review-first"]
)
def test_an_equally_long_review_rule_beats_a_keep_rule_wherever_it_is_listed(tmp_path, rules):
    """Probe 14 item 2: `archive-keep` listed first decided, and the record was disposed of
    without review; swapping the two rules gave review."""
    body = "retention:\n  default: {id: default, keep_for: 2y, then: delete}\n  rules:\n"
    body += "".join(f"    {rule}\n" for rule in rules)

    decision = decide(tmp_path, body, "2026-11-20", message())

    assert decision == (
        parse_instant("2025-06-01"),
        RetentionVerdict(
            "review",
            "finance-review",
            (
                (
                    "archive-keep",
                    "rule finance-review keeps it as long, and review takes precedence over keep",
                ),
                DEFAULT_LOSES,
            ),
            "rule finance-review keeps it for 3 years, then a reviewer decides",
        ),
    )


def test_an_equally_long_review_rule_beats_a_delete_rule(tmp_path):
    body = """
        retention:
          rules:
            - {id: purge-groups, scope: {chat_type: groupchat}, keep_for: 3y, then: delete}
            - {id: finance-review, scope: {group: g1}, keep_for: 3y, then: review}
        """

    decision = decide(tmp_path, body, "2026-11-20", message())

    assert decision == (
        parse_instant("2025-06-01"),
        RetentionVerdict(
            "review",
            "finance-review",
            (
                (
                    "purge-groups",
                    "rule finance-review keeps it as long, and review takes precedence over delete",
                ),
            ),
            "rule finance-review keeps it for 3 years, then a reviewer decides",
        ),
    )


def test_a_review_default_beats_an_equally_long_scoped_keep_rule(tmp_path):
    body = """
        retention:
          default: {id: everything, keep_for: 12mo, then: review}
          rules:
            - {id: groups, scope: {chat_type: groupchat}, keep_for: 1y, then: keep}
        """

    _until, verdict = decide(tmp_path, body, "2026-11-20", message())

    assert (verdict.disposition, verdict.winning_rule, verdict.losing_rules) == (
        "review",
        "everything",
        (
            (
                "groups",
                "default rule everything keeps it as long, and review takes precedence over keep",
            ),
        ),
    )


def test_an_equally_long_keep_rule_and_delete_rule_delete_when_both_end(tmp_path):
    body = """
        retention:
          rules:
            - {id: keep-groups, scope: {chat_type: groupchat}, keep_for: 3y, then: keep}
            - {id: purge-g1, scope: {group: g1}, keep_for: 3y, then: delete}
        """

    decision = decide(tmp_path, body, "2026-11-20", message())

    assert decision == (
        parse_instant("2025-06-01"),
        RetentionVerdict(
            "dispose",
            "purge-g1",
            (
                (
                    "keep-groups",
                    "its retention of 3 years ends no later than rule purge-g1 deletes it, after "
                    "3 years",
                ),
            ),
            "rule purge-g1 keeps it for 3 years, then deletes it",
        ),
    )


@pytest.mark.parametrize(
    ("then", "loser_reason"),
    [
        ("keep", "rule first keeps it as long, and is listed earlier"),
        ("delete", "rule first deletes it as soon, and is listed earlier"),
    ],
    ids=["keep", "delete"],
)
def test_between_rules_that_say_the_same_the_one_listed_earlier_is_named(
    tmp_path, then, loser_reason
):
    body = f"""
        retention:
          rules:
            - {{id: first, scope: {{chat_type: groupchat}}, keep_for: 3y, then: {then}}}
            - {{id: second, scope: {{group: g1}}, keep_for: 36mo, then: {then}}}
        """

    _until, verdict = decide(tmp_path, body, "2026-11-20", message())

    assert (verdict.winning_rule, verdict.losing_rules) == ("first", (("second", loser_reason),))


HOLDS = """
    retention:
      default: {id: default, keep_for: 1y, then: delete}
    holds:
      - {id: hold-a, reason: matter A, scope: {sender: h1}, starts: 2026-01-01, ends: 2027-01-01}
      - {id: hold-b, reason: matter B, scope: {sender: [h1, h2]}, starts: 2026-01-01, ends: ENDS}
    """


def test_a_record_under_several_holds_is_kept_indefinitely_while_one_is_open_ended(tmp_path):
    """Probe 14 item 3: `retain_until` was hold-a's end, 2027-01-01, "because hold-a comes first
    in the file", though hold-b has no end."""
    body = HOLDS.replace("ENDS", "null")

    decision = decide(tmp_path, body, "2026-11-20", message(sender="h1", chat_type="chat"))

    assert decision == (
        None,
        RetentionVerdict(
            "hold",
            "hold-b",
            (
                ("hold-a", "legal hold hold-b has no end, and this one ends 2027-01-01T00:00:00Z"),
                ("default", "a legal hold beats every retention rule"),
            ),
            "under legal hold hold-b: matter B",
        ),
    )


def test_a_record_under_several_ending_holds_is_kept_until_the_last_one_ends(tmp_path):
    body = HOLDS.replace("ENDS", "2028-03-01")

    decision = decide(tmp_path, body, "2026-11-20", message(sender="h1", chat_type="chat"))

    assert decision == (
        parse_instant("2028-03-01"),
        RetentionVerdict(
            "hold",
            "hold-b",
            (
                (
                    "hold-a",
                    "legal hold hold-b lasts longer, until 2028-03-01T00:00:00Z; this one ends "
                    "2027-01-01T00:00:00Z",
                ),
                ("default", "a legal hold beats every retention rule"),
            ),
            "under legal hold hold-b: matter B",
        ),
    )


def test_of_several_open_ended_holds_the_one_listed_earlier_is_named(tmp_path):
    body = HOLDS.replace("ends: 2027-01-01", "ends: null").replace("ENDS", "null")

    until, verdict = decide(tmp_path, body, "2026-11-20", message(sender="h1", chat_type="chat"))

    assert (until, verdict.winning_rule, verdict.losing_rules[0]) == (
        None,
        "hold-a",
        ("hold-b", "legal hold hold-a has no end either, and is listed earlier"),
    )


def check(tmp_path, body: str):
    return CliRunner().invoke(
        main, ["policy", "check", str(write(tmp_path, body)), "--now", "2026-11-20"]
    )


def test_policy_check_warns_when_review_overrides_an_equally_long_scoped_rule(tmp_path):
    body = """\
        retention:
          default: {id: default, keep_for: 2y, then: delete}
          rules:
            - {id: archive-keep, scope: {chat_type: groupchat}, keep_for: 3y, then: keep}
            - {id: finance-review, scope: {group: g1}, keep_for: 3y, then: review}
            - {id: dm-purge, scope: {chat_type: chat}, keep_for: 3y, then: delete}
            - {id: year-keep, scope: {sender: [alice, bob]}, keep_for: 365d, then: keep}
            - {id: year-review, scope: {sender: "al*"}, keep_for: 1y, then: review}
        """

    result = check(tmp_path, body)

    path = tmp_path / "policy.yaml"
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}:5: archive-keep: keeps the records that rule finance-review also covers as long "
        "as it does (3 years), and review takes precedence over keep: they go to review rather "
        "than being kept; give the rules different periods, or scopes that exclude each other",
        f"{path}:8: year-keep: keeps the records that rule year-review also covers as long as it "
        "does (365 days and 1 year, on some send days), and review takes precedence over keep: "
        "they go to review rather than being kept; give the rules different periods, or scopes "
        "that exclude each other",
        f"{path}: 2 conflict(s); 6 retention rules, 0 holds, 0 keyword lists (0 terms), "
        "0 detectors",
    ]
