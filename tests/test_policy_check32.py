"""`auditor policy check` names what an officer writing a policy by hand would want to know:
values and terms given twice, rules that can never decide a record, holds that begin later,
periods past a century. Each is one line naming the file and the YAML line."""

import textwrap

from click.testing import CliRunner

from auditor.cli import main


def check(tmp_path, text, now="2026-11-29"):
    path = tmp_path / "policies.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    result = CliRunner().invoke(main, ["policy", "check", str(path), "--now", now])
    return path, result


def test_a_hold_naming_one_custodian_twice_is_a_warning_at_the_second_line(tmp_path):
    """The known gap: a custodian pasted twice (the second meant to be someone else) passed
    silently, though the hold then misses a person. Ids compare without regard to case."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - id: matter-1
            reason: dispute
            scope:
              participant:
                - user0007
                - user0042
                - User0007
            starts: 2026-10-15
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"{path}:9: matter-1: warning: scope.participant names 'User0007' again (line 7; ids "
        "are compared without regard to case): if someone else was meant, name them"
    )
    assert "1 warning(s)" in result.output


def test_a_value_a_glob_of_the_same_condition_covers_is_a_warning(tmp_path):
    path, result = check(
        tmp_path,
        """\
        version: 1
        retention:
          default: {keep_for: 1y, then: delete}
          rules:
            - id: finance
              scope: {group: ["1402541206*", "14025412067"], chat_type: [groupchat, groupchat]}
              keep_for: 3y
              then: review
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        f"{path}:6: finance: warning: scope.group names '14025412067', which '1402541206*' "
        "(line 6) already covers: if someone else was meant, name them",
        f"{path}:6: finance: warning: scope.chat_type names 'groupchat' again (line 6): if "
        "something else was meant, name it",
    ]


def test_an_id_with_a_space_or_an_invisible_character_is_a_warning(tmp_path):
    """A quoted id copied with a trailing space, or with a zero-width space from a document,
    matches no id Easemob writes: the hold covers no one by that value."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - id: matter-1
            reason: dispute
            scope:
              participant: ["user0007 ", "user\\u200b0042", user0099]
            starts: 2026-10-15
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        f"{path}:6: matter-1: warning: scope.participant value 'user0007 ' holds a space or an "
        "invisible character, so it matches no id Easemob writes: remove it",
        f"{path}:6: matter-1: warning: scope.participant value 'user\\u200b0042' holds a space "
        "or an invisible character, so it matches no id Easemob writes: remove it",
    ]


def test_a_term_given_twice_in_one_list_even_in_another_form_is_a_warning(tmp_path):
    """The matcher normalises width, case and traditional characters, so 洗錢 and ＫＩＣＫＢＡＣＫ
    are 洗钱 and kickback again: the first is the one findings name."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        keywords:
          - id: zh
            severity: high
            terms:
              - 洗钱
              - kickback
              - 洗錢
              - ＫＩＣＫＢＡＣＫ
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        f"{path}:8: zh: warning: term '洗錢' is '洗钱' (line 6) again once normalised; findings "
        "name '洗钱': remove one",
        f"{path}:9: zh: warning: term 'ＫＩＣＫＢＡＣＫ' is 'kickback' (line 7) again once "
        "normalised; findings name 'kickback': remove one",
    ]


def test_a_term_in_two_lists_says_that_both_report_it_at_their_severities(tmp_path):
    path, result = check(
        tmp_path,
        """\
        version: 1
        keywords:
          - {id: zh-high, severity: high, terms: [内幕消息, 洗钱]}
          - {id: zh-vendor, severity: medium, terms: [赌博, 洗錢]}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"{path}:4: zh-vendor: warning: term '洗錢' is also term '洗钱' of list zh-high (line 3) "
        "once normalised: neither wins, a match is reported twice, at medium by this one and "
        "at high by zh-high: keep it in one list"
    )


def test_a_retention_rule_another_always_beats_is_a_conflict(tmp_path):
    """The engine takes no first match: precedence decides (longest retention, review over
    keep, scoped over default, shortest deletion, then file order). A rule that loses every
    record it covers to another has no effect, whatever its place in the file."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        retention:
          default: {keep_for: 1y, then: delete}
          rules:
            - {id: groups, scope: {chat_type: [groupchat, chatroom]}, keep_for: 5y, then: review}
            - {id: finance, scope: {group: ["1402*"]}, keep_for: 3y, then: review}
            - {id: finance-copy, scope: {group: ["1402*"]}, keep_for: 3y, then: review}
            - {id: chats, scope: {chat_type: chat, message_type: txt}, keep_for: 6mo, then: keep}
            - {id: images, scope: {message_type: img}, keep_for: 90d, then: delete}
            - {id: c-img, scope: {message_type: img, chat_type: chat}, keep_for: 6mo, then: delete}
            - {id: files, scope: {message_type: file}, keep_for: 10y, then: review}
            - {id: audio, scope: {message_type: audio}, keep_for: 2y, then: review}
            - {id: audio-again, scope: {message_type: [audio]}, keep_for: 24mo, then: review}
        """,
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:6: finance: never decides a record: rule groups (line 5) covers every "
        "record it covers and keeps them longer (5 years, not 3 years), so it has no effect: "
        "remove it, or narrow the other's scope",
        f"{path}:7: finance-copy: never decides a record: rule groups (line 5) covers every "
        "record it covers and keeps them longer (5 years, not 3 years), so it has no effect: "
        "remove it, or narrow the other's scope",
        f"{path}:8: chats: never decides a record: default rule default (line 3) covers every "
        "record it covers and deletes them after 1 year, when this retention of 6 months has "
        "ended, so it has no effect: remove it, or narrow the other's scope",
        f"{path}:10: c-img: never decides a record: rule images (line 9) covers every "
        "record it covers and deletes them sooner (90 days, not 6 months), so it has no "
        "effect: remove it, or narrow the other's scope",
        f"{path}:13: audio-again: never decides a record: rule audio (line 12) covers every "
        "record it covers and keeps them as long (2 years and 24 months), and is listed "
        "earlier, so it has no effect: remove it, or narrow the other's scope",
    ]


def test_a_narrower_rule_that_keeps_longer_is_no_conflict(tmp_path):
    path, result = check(
        tmp_path,
        """\
        version: 1
        retention:
          statutory_floor: {keep_for: 6mo}
          default: {keep_for: 1y, then: delete}
          rules:
            - {id: all-groups, scope: {chat_type: groupchat}, keep_for: 3y, then: review}
            - {id: finance, scope: {group: ["1402*"]}, keep_for: 5y, then: review}
            - {id: media, scope: {message_type: [img, video]}, keep_for: 2y, then: delete}
            - {id: cm, scope: {message_type: img, chat_type: chat}, keep_for: 400d, then: delete}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{path}: OK, no conflicts; 5 retention rules")


def test_a_hold_that_begins_later_is_a_warning(tmp_path):
    """A hold dated 2027 for 2026 (a typo) holds nothing in today's runs: say when it begins."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - {id: matter-1, reason: dispute, scope: {participant: u1}, starts: 2027-10-15}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"{path}:3: matter-1: warning: the hold begins 2027-10-15T00:00:00Z, after the check's "
        "reference time 2026-11-29T00:00:00Z: runs before then do not hold its records in "
        "their verdicts (`due` holds them already); if it was meant to begin already, correct "
        "`starts`"
    )


def test_a_period_past_a_century_is_a_warning(tmp_path):
    path, result = check(
        tmp_path,
        """\
        version: 1
        retention:
          default: {keep_for: 1y, then: delete}
          rules:
            - {id: contracts, scope: {message_type: file}, keep_for: 300y, then: review}
            - {id: hourly, scope: {message_type: cmd}, keep_for: 900000h, then: review}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        f"{path}:5: contracts: warning: keeps records 300 years, over a century: if that was "
        "not meant, correct keep_for",
        f"{path}:6: hourly: warning: keeps records 900000 hours, over a century: if that was "
        "not meant, correct keep_for",
    ]


def test_a_hold_whose_reason_repeats_another_holds_is_a_warning(tmp_path):
    """A hold copied to start another matter, its reason left as it was: the report and `due`
    would give both matters the first one's reason."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - {id: matter-1, reason: Dispute 2026-017, scope: {participant: u1}, starts: 2026-10-15}
          - {id: matter-2, reason: Dispute 2026-017, scope: {participant: u2}, starts: 2026-11-01}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"{path}:4: matter-2: warning: its reason is that of hold matter-1 (line 3): if it is "
        "another matter, say which"
    )


def test_the_example_policy_stays_clean(tmp_path):
    from auditor.resources import example_policy

    result = CliRunner().invoke(
        main, ["policy", "check", str(example_policy()), "--now", "2026-12-01"]
    )
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_a_rule_a_review_rule_always_beats_is_named_once(tmp_path):
    """365 days against a year of review: a tie on some send days, a loss on the others. The
    tie's own conflict said "on some send days"; the rule never decides, which says it all."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        retention:
          rules:
            - {id: year-keep, scope: {sender: alice}, keep_for: 365d, then: keep}
            - {id: year-review, scope: {sender: "al*"}, keep_for: 1y, then: review}
        """,
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:4: year-keep: never decides a record: rule year-review (line 5) covers every "
        "record it covers and keeps them at least as long (1 year and 365 days, on every send "
        "day), and review takes precedence over keep, so it has no effect: remove it, or narrow "
        "the other's scope",
    ]


def test_a_condition_naming_no_one_can_never_match(tmp_path):
    """`participant: ""` passed the schema (its minimum length is of a list's items) and the
    check said OK for a hold that holds nothing; spaces the same (an ideographic space, U+3000,
    from a Chinese input method, as much as an ASCII one)."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - {id: matter-1, reason: dispute, scope: {participant: ""}, starts: 2026-10-15}
          - {id: matter-2, reason: audit, scope: {sender: ["  ", "\\u3000"]}, starts: 2026-10-15}
        """,
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:3: matter-1: can never match: scope.participant names no one ('': no id "
        "Easemob writes is empty or holds a space or an invisible character)",
        f"{path}:4: matter-2: can never match: scope.sender names no one ('  ', '\\u3000': no id "
        "Easemob writes is empty or holds a space or an invisible character)",
    ]


def test_a_pattern_or_a_detector_given_twice_is_a_warning(tmp_path):
    """Two rules of one detector, or one pattern in two lists, each report every match: a phone
    number was two findings, at medium and at high."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        keywords:
          - {id: en, severity: high, patterns: ['wire \\d+', 'wire \\d+']}
          - {id: en2, severity: low, patterns: ['wire \\d+']}
        detectors:
          - {detector: mobile, severity: medium}
          - {detector: mobile, id: mobile-hr, severity: high}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:3: en: warning: pattern 'wire \\\\d+' is listed again (first line 3): remove one",
        f"{path}:4: en2: warning: pattern 'wire \\\\d+' is also a pattern of list en (line 3): "
        "neither wins, a match is reported twice, at low by this one and at high by en: keep it "
        "in one list",
        f"{path}:7: mobile-hr: warning: detector mobile is also used by rule mobile (line 6): "
        "neither wins, a match is reported twice, at high by this one and at medium by mobile: "
        "keep one rule",
    ]


def test_a_term_file_with_many_terms_given_twice_names_five_then_counts(tmp_path):
    """A vendor's list holding both forms of its words (洗钱 and 洗錢) gave one warning a pair:
    thousands of lines. Five are named, the rest counted in one line."""
    pairs = ["洗钱", "洗錢", "赌博", "賭博", "回扣", "迴扣", "贿赂", "賄賂"]
    pairs += ["发票", "發票", "内幕", "內幕", "传销", "傳銷", "诈骗", "詐騙"]
    (tmp_path / "vendor.txt").write_text("\n".join(pairs) + "\n", encoding="utf-8")
    path, result = check(
        tmp_path,
        """\
        version: 1
        keywords:
          - {id: vendor, severity: medium, terms_file: vendor.txt}
        """,
    )
    vendor = tmp_path / "vendor.txt"
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 7
    assert lines[0] == (
        f"{path}:3: vendor: warning: term '洗錢' ({vendor}:2) is '洗钱' ({vendor}:1) again once "
        "normalised; findings name '洗钱': remove one"
    )
    assert lines[5] == (
        f"{path}:3: vendor: warning: {vendor}: 3 more of its terms are given twice, as the 5 "
        "above (only those are named)"
    )


def test_the_same_ids_as_sender_and_receiver_say_participant_was_perhaps_meant(tmp_path):
    """`sender: [a, b]` with `receiver: [a, b]` holds only what a and b wrote to each other, not
    what each wrote to anyone: the AND the example policy warns of."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - id: matter-1
            reason: dispute
            scope: {sender: [user0007, user0042], receiver: [User0042, user0007]}
            starts: 2026-10-15
          - {id: matter-2, reason: audit, scope: {sender: u1, receiver: u2}, starts: 2026-10-15}
          - {id: matter-3, reason: fraud, scope: {sender: "a*", receiver: "b*"}, starts: 2026-10-15}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:3: matter-1: warning: its scope names the same ids as sender and as receiver, "
        "so it covers only messages between them (conditions combine with AND): to cover what "
        "each sends or receives, name them as participant",
    ]


def test_an_allowed_phrase_that_holds_no_term_of_its_list_is_a_warning(tmp_path):
    """反洗前 (a typo of 反洗钱) excuses nothing, so anti-money-laundering training stays a
    finding; the officer believes it allowed. 反洗錢 is 反洗钱 once normalised: it works."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        keywords:
          - id: zh
            severity: high
            terms: [洗钱, 回扣]
            allow:
              - 反洗前
              - 反洗錢
              - ＡＢＣ回扣
          - {id: en, severity: high, terms: [kickback], patterns: ['wire \\d+'], allow: [wire 5]}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:7: zh: warning: allowed phrase '反洗前' holds no term of the list, so it excuses "
        "nothing: correct it, or move it to the list whose term it holds",
    ]


def test_a_hold_that_ends_before_the_messages_it_covers_are_sent_can_never_match(tmp_path):
    """`sent: {since: 2027-01-01}` (a year typed one too high) under a hold that ends
    2026-12-31: while it lasts no such message exists, and once one does it has ended."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - id: matter-1
            reason: dispute
            scope: {participant: u1, sent: {since: 2027-01-01}}
            starts: 2026-10-15
            ends: 2026-12-31
        """,
    )
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[0] == (
        f"{path}:3: matter-1: can never match: it covers messages sent from "
        "2027-01-01T00:00:00Z, and ends 2026-12-31T00:00:00Z, before the first of them is sent"
    )


def test_a_retention_of_zero_is_refused_saying_so(tmp_path):
    """`keep_for: 0d` (meant: delete at once) was "'0d' is not a duration (use e.g. 30d, ...)",
    which an officer reads as a wrong format, not a wrong number."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        retention:
          default: {keep_for: 1y, then: delete}
          rules:
            - {id: media, scope: {message_type: img}, keep_for: 0d, then: delete}
        """,
    )
    assert result.exit_code == 2
    assert result.output == (
        f"auditor: error: {path}:5: retention.rules[0].keep_for: '0d' is no period: keep_for is "
        "at least 1 of its unit (1h at the shortest)\n"
    )


def test_a_term_found_inside_every_word_that_holds_it_is_a_warning(tmp_path):
    """钱 (money) is found in 钱包, 价钱, 有钱: nearly every chat about money is a finding. A
    Latin letter in a whole-words list is found alone only, so it is left unsaid."""
    path, result = check(
        tmp_path,
        """\
        version: 1
        keywords:
          - {id: zh, severity: high, terms: [洗钱, 钱, ｘ]}
          - {id: en, severity: low, whole_words: false, terms: [ip, tip-off]}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:3: zh: warning: term '钱' is one character once normalised, found inside every "
        "word that holds it: most messages that use one are findings; list the words it is part "
        "of instead",
        f"{path}:4: en: warning: term 'ip' is 2 characters once normalised, found inside every "
        "word that holds it: most messages that use one are findings; list the words it is part "
        "of instead",
    ]


def test_a_rule_named_as_never_deciding_decides_no_record_the_engine_judges():
    """The check reasons about scopes and periods; the engine decides record by record. Random
    policies of up to five rules over a small world of ids, types and send days (leap days
    among them): no record the engine judges is decided by a rule the check says never
    decides one."""
    import itertools
    import json
    import random

    from auditor.policies.check_shadows import never_deciding
    from auditor.policies.loading import policy_of_bytes
    from auditor.policies.retention import RetentionDecider

    rng = random.Random(32)
    periods = ["1d", "30d", "181d", "182d", "365d", "366d", "1w", "4w", "52w"]
    periods += ["1mo", "6mo", "12mo", "1y", "2y"]
    days = [1_704_067_200_000 + d * 86_400_000 for d in (0, 59, 60, 365, 424, 800, 1460)]
    choices = {
        "chat_type": ["chat", "groupchat", "chatroom"],
        "message_type": ["txt", "img", "file"],
        "sender": ["u1", "u2", "u*"],
        "group": ["g1", "g2", "g*"],
        "participant": ["u1", "g1", "u*"],
    }

    def scope():
        picked = {
            k: rng.sample(v, rng.randint(1, 2)) for k, v in choices.items() if rng.random() < 0.3
        }
        return picked or {"message_type": [rng.choice(choices["message_type"])]}

    named = 0
    for _ in range(60):
        retention = {
            "statutory_floor": {"keep_for": rng.choice(periods)},
            "default": {"keep_for": rng.choice(periods), "then": rng.choice(["keep", "delete"])},
            "rules": [
                {
                    "id": f"r{i}",
                    "scope": scope(),
                    "keep_for": rng.choice(periods),
                    "then": rng.choice(["keep", "review", "delete"]),
                }
                for i in range(rng.randint(2, 5))
            ],
        }
        text = json.dumps({"version": 1, "retention": retention})
        policy = policy_of_bytes("random.yaml", text.encode())
        never = {rule.id for rule, _ in never_deciding(policy)}
        named += len(never)
        if not never:
            continue
        decider = RetentionDecider(policy, 0)
        world = itertools.product(
            choices["chat_type"], choices["message_type"], ["u1", "u2", "u3"], ["u1", "g1", "g3"]
        )
        for chat_type, kind, sender, receiver in world:
            for day in days:
                _, verdict = decider.decide_facts((chat_type, sender, receiver, (kind,), day))
                assert verdict.winning_rule not in never, (text, verdict)
    assert named > 30  # the check names some, so the assertion above is tested


def test_ids_that_differ_only_by_case_are_a_warning(tmp_path):
    path, result = check(
        tmp_path,
        """\
        version: 1
        holds:
          - {id: Matter-1, reason: dispute, scope: {participant: u1}, starts: 2026-10-15}
          - {id: matter-1, reason: audit, scope: {participant: u2}, starts: 2026-10-15}
        """,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:-1] == [
        f"{path}:4: matter-1: warning: its id differs from 'Matter-1' (line 3) only by case: "
        "findings, reports and `due` keep them apart, a reader takes them for one; rename one",
    ]
