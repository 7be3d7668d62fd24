"""The HTML report as a reviewer reads it: what the page says, checked on its HTML.

Invisible characters shown, names clipped with their length, cut tables said, times in the
report's zone, retention words that agree, share secrets masked. The browser side (print,
sorting, filtering, wrapping) is in test_report_reviewer_browser.py.
"""

import csv
import hashlib
import json
import re
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.partitions import DAY_MS, HOUR_MS
from auditor.policies.loading import policy_of_bytes
from auditor.report import ReportBuilder, RunInfo
from auditor.report.display import character_name, label, visible
from auditor.report.formats.html import RULE_ROWS
from auditor.report.policy import policy_view

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
HIDDEN = (
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    "\u200b\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad\u115f\u1160\u3164\uffa0\u034f"
    "\u200c\u200d\u0000\u0007\u001b\u007f\u0085\u2028\u2029\U000e0041"
)


def run_info(**overrides) -> RunInfo:
    values = {
        "sequence": 3,
        "since_ms": NOV_1,
        "until_ms": NOV_1 + DAY_MS,
        "source": {
            "api": "hourfiles",
            "base_url": "https://a1.easemob.com",
            "org": "o",
            "app": "a",
        },
        "hour_timezone": "+8",
        "merkle_root": "ab" * 32,
        "tree_size": 2,
        "key_fingerprint": "SHA256:Zm9vYmFy",
    }
    values.update(overrides)
    return RunInfo(**values)


def record(msg_id: str, sender: str = "alice", text: str = "hello", **payload) -> dict:
    return {
        "msg_id": msg_id,
        "timestamp": NOV_1 + HOUR_MS,
        "chat_type": "chat",
        "from": sender,
        "to": "bob",
        "payload": {"from": sender, "to": "bob", "bodies": [{"type": "txt", "msg": text}]}
        | payload,
    }


def keyword(msg_id: str, text: str, term: str = "kickback", severity: str = "high") -> dict:
    start = text.find(term)
    return {
        "msg_id": msg_id,
        "category": "keyword",
        "rule": "en",
        "severity": severity,
        "message": f"watched term {term!r}",
        "pointer": "/payload/bodies/0/msg",
        "details": {
            "list": "en",
            "term": term,
            "matched": term,
            "start": start,
            "end": start + len(term),
            "normalizations": [],
            "confidence": "high",
            "text": text,
        },
    }


def hold(msg_id: str, reason: str) -> dict:
    """The finding of a record under the legal hold `hold-1`."""
    return {
        "msg_id": msg_id,
        "category": "hold",
        "rule": "hold-1",
        "severity": "info",
        "message": "under legal hold hold-1 since 2026-10-01T00:00:00Z",
        "pointer": None,
        "details": {
            "rule": "hold-1",
            "disposition": "hold",
            "retain_until": None,
            "retain_until_ms": None,
            "reason": reason,
            "losing_rules": [["default", "a legal hold beats every retention rule"]],
        },
    }


def page(tmp_path: Path, builder: ReportBuilder) -> str:
    return builder.render(tmp_path / "report")["report.html"].read_text(encoding="utf-8")


def section(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    return html[start : html.index("</section>", start)]


def shown_text(html: str) -> str:
    """The page's text as a reader sees it: tags dropped, entities read."""
    return unescape(re.sub(r"<[^>]+>", "", html))


# -- invisible and bidi characters ------------------------------------------------------------


@pytest.mark.parametrize("char", HIDDEN)
def test_every_invisible_character_of_an_id_shows_as_a_badge_naming_it(char):
    shown = visible(f"9001{char}2")
    code = f"U+{ord(char):04X}"
    assert char not in shown
    assert f">{code}</span>" in shown
    assert f"title={code}&#32;" in shown
    assert '"' not in shown  # a badge that ever landed in an attribute could not end it


def test_message_text_keeps_its_joiners_and_line_breaks_but_shows_the_rest():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    text = f"{family} {england}\nsee\tyou"
    assert str(visible(text, "text")) == text
    assert "U+200D" in visible(family)  # in an ID or a name a joiner is shown
    # a joiner inside an ASCII word hides it from a reader: shown in text too
    assert "U+200D" in visible("kick\u200dback", "text")
    assert "U+200C" in visible("\u200ckickback", "text")
    for char in "\u202e\u200b\u2066\ufeff\u00ad\r\U000e0041":
        assert f"U+{ord(char):04X}" in visible(f"a{char}b", "text")


def test_no_two_different_names_render_alike():
    names = ["alice", "alice ", " alice", "al ice", "al  ice", "al\u00a0ice", "al\tice"]
    names += [f"al{char}ice" for char in HIDDEN]
    names += ["alice\u200b\u200b", "alice\u200b", "al\u3000ice", "alice\ufe0f", "alice\n"]
    drawn = [str(visible(name)) for name in names]
    assert len(set(drawn)) == len(names)
    # the page folds runs of spaces: what a reader sees must still differ
    folded = {re.sub(r"\s+", " ", shown_text(each)).strip() for each in drawn}
    assert len(folded) == len(names)


def test_character_names():
    assert character_name("\u202e") == "U+202E RIGHT-TO-LEFT OVERRIDE"
    assert character_name("\n") == "U+000A LINE FEED"
    assert character_name("\x1b") == "U+001B CONTROL CHARACTER"


def spoof_builder(**overrides) -> ReportBuilder:
    builder = ReportBuilder(run_info(**overrides))
    cases = [
        ("900000000000000001", "alice", "please kickback"),
        (
            "900000000000000001\u200b",
            "alice\u202e",
            "transfer \u202e00.001$\u202c to acct, kickback",
        ),
        ("900000000000000002", "\u2066ecila\u2069", "ok \u2066isolates\u2069 kickback"),
    ]
    for msg_id, sender, text in cases:
        builder.observe_record(record(msg_id, sender, text), "2026110101")
        builder.observe_finding(keyword(msg_id, text))
    builder.observe_record(record("900000000000000003", "carol", "x"), "2026110101")
    builder.observe_finding(
        hold("900000000000000003", "under legal hold hold-1: \u202eDLOH TON\u202c case 7")
    )
    builder.observe_verdict("hold", "hold-1\u200b")
    return builder


def test_the_page_shows_no_invisible_character_raw(tmp_path):
    html = page(tmp_path, spoof_builder())
    main = html[html.index("<main ") : html.index("<script>")]
    text = shown_text(main)
    for char in HIDDEN:
        assert char not in text, f"U+{ord(char):04X} shown raw"
    keyword_table = shown_text(section(html, "table-keyword"))
    assert "900000000000000001U+200B" in keyword_table
    assert "transfer U+202E00.001$U+202C to acct" in keyword_table
    assert "ok U+2066isolatesU+2069 kickback" in keyword_table
    hold = shown_text(section(html, "table-hold"))
    assert "U+202EDLOH TONU+202C case 7" in hold
    assert "hold-1U+200B" in shown_text(section(html, "summary"))
    # the senders chart draws its badges as SVG text, which a <span> would not be
    senders = section(html, "charts")
    assert '<tspan class="cf">\u27e8U+202E\u27e9</tspan>' in senders
    assert "\u27e8U+2066\u27e9ecila\u27e8U+2069\u27e9" in shown_text(senders)


def test_badges_keep_the_content_security_policy(tmp_path):
    html = page(tmp_path, spoof_builder())
    policy = unescape(
        re.search(r"http-equiv=\"Content-Security-Policy\" content=\"([^\"]+)\"", html)[1]
    )
    assert "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    assert " style=" not in html and "<span style" not in html
    assert html.count("<script") == 1 and html.count("<style") == 1


# -- size: names from the data are clipped and say so -------------------------------------------


def bloat_builder() -> ReportBuilder:
    builder = ReportBuilder(run_info())
    for index in range(15):
        kind = chr(65 + index) * 200_000
        rec = record(f"6{index:017d}", text="kickback")
        rec["payload"]["bodies"][0]["type"] = kind
        builder.observe_record(rec, "2026110101")
        builder.observe_finding(keyword(rec["msg_id"], "kickback"))
    for index in range(10):
        sender = chr(97 + index) * 200_000
        rec = record(f"7{index:017d}", sender=sender, text="kickback")
        rec["chat_type"] = chr(75 + index) * 200_000
        builder.observe_record(rec, "2026110101")
        builder.observe_finding(keyword(rec["msg_id"], "kickback"))
    return builder


def test_huge_body_types_chat_types_and_senders_keep_the_page_small(tmp_path):
    html = page(tmp_path, bloat_builder())
    assert len(html.encode()) < 250_000  # 12.3 MB before they were clipped
    assert f"{'A' * 80}… (cut: 200,000 characters)" in html  # the by-type table
    assert f"{'K' * 80}… (cut: 200,000 characters)" in html  # the by-chat-type table
    tips = re.findall(r"<title>([^<]*)</title>", section(html, "chart-top-senders"))
    assert tips and max(len(tip) for tip in tips) < 160
    assert any("(cut: 200,000 characters)" in tip for tip in tips)


def test_summary_json_names_long_values_as_the_page_does_and_keeps_them_apart(tmp_path):
    """summary.json kept every name whole: 4.8 MB for the page's 75 KB. Cut as the page cuts
    them, two long names alike in their first 80 characters must still be two keys."""
    builder = ReportBuilder(run_info())
    rec = record("6" * 18, text="kickback")
    rec["chat_type"] = "K" * 200_000
    builder.observe_record(rec, "2026110101")
    for tail in ("x", "y"):
        rec = record(f"8{ord(tail):017d}", sender="s" * 90_000 + tail, text="kickback")
        rec["payload"]["bodies"][0]["type"] = "T" * 90_000 + tail
        builder.observe_record(rec, "2026110101")
        builder.observe_finding(keyword(rec["msg_id"], "kickback"))

    written = builder.render(tmp_path / "report")["summary.json"].read_bytes()

    assert len(written) < 10_000
    summary = json.loads(written)
    types = summary["records"]["by_message_type"]
    long_types = [name for name in types if name.startswith("T" * 80)]
    assert len(long_types) == 2 and all(types[name] == 1 for name in long_types)
    assert set(long_types) == {cut("T" * 90_000 + tail) for tail in "xy"}
    assert (
        cut("K" * 200_000)
        == f"{'K' * 80}… (cut: 200,000 characters, sha256 {sha16('K' * 200_000)}…)"
    )
    assert summary["records"]["by_chat_type"][cut("K" * 200_000)] == 1
    senders = [row["sender"] for row in summary["findings"]["top_senders"]]
    assert all(len(sender) < 160 for sender in senders)
    assert {cut("s" * 90_000 + tail) for tail in "xy"} <= set(senders)
    assert cut("txt") == "txt"


def cut(text: str) -> str:
    if len(text) <= 80:
        return text
    return f"{text[:80]}… (cut: {len(text):,} characters, sha256 {sha16(text)}…)"


def sha16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_a_long_id_shows_whole_up_to_a_generous_cap_and_says_when_cut(tmp_path):
    builder = ReportBuilder(run_info())
    for msg_id in ("7" * 200, "8" * 300):
        builder.observe_record(record(msg_id, text="kickback"), "2026110101")
        builder.observe_finding(keyword(msg_id, "kickback"))
    table = shown_text(section(page(tmp_path, builder), "table-keyword"))
    assert "7" * 200 in table
    assert "8" * 256 + "… (cut: 300 characters)" in table
    assert label("x" * 81) == "x" * 80 + "… (cut: 81 characters)"


# -- cut tables say so ------------------------------------------------------------------------


def test_retention_rules_past_the_cap_are_counted_and_pointed_to(tmp_path):
    builder = ReportBuilder(run_info())
    for number in range(RULE_ROWS + 13):
        builder.observe_verdict("keep", f"rule-{number:03d}", count=100 - number)
    html = page(tmp_path, builder)
    note = re.search(r'<p class="note" id="retention-rules-cut">(.*?)</p>', html, re.S)
    assert note, "the table is cut without saying so"
    said = shown_text(note.group(1))
    left = sum(100 - number for number in range(RULE_ROWS, RULE_ROWS + 13))
    assert f"of {RULE_ROWS + 13}; the other 13 won for {left} records" in said
    assert "summary.json" in said


# -- times and retention words ------------------------------------------------------------------


def verdict(category, rule, disposition, until_ms, reason, finding_rule=None):
    return {
        "msg_id": "900000000000000009",
        "category": category,
        "rule": finding_rule or rule,
        "severity": "low",
        "message": "as recorded",
        "pointer": None,
        "details": {
            "rule": rule,
            "disposition": disposition,
            "retain_until": None if until_ms is None else "2026-11-30T16:30:00Z",
            "retain_until_ms": until_ms,
            "reason": reason,
            "losing_rules": [],
        },
    }


def test_retain_until_is_in_the_reports_zone_and_the_page_says_what_quotes_utc(tmp_path):
    builder = ReportBuilder(run_info(hour_timezone="+8"))
    until = 1_796_056_200_000  # 2026-11-30T16:30:00Z
    builder.observe_finding(verdict("retention", "chats-30d", "review", until, "kept 30 days"))
    html = page(tmp_path, builder)
    row = shown_text(section(html, "table-retention"))
    assert "2026-12-01 00:30:00 +08:00" in row
    assert "2026-11-30T16:30:00Z" not in row
    meta = shown_text(
        html[html.index('<p class="meta">') : html.index("</p>", html.index('"meta"'))]
    )
    assert "tables and charts are in UTC+08:00" in meta
    assert "in UTC (ending in Z)" in meta


def test_open_ended_holds_and_untimed_records_read_as_the_summary_says(tmp_path):
    builder = ReportBuilder(run_info())
    builder.observe_finding(verdict("hold", "hold-7", "hold", None, "under legal hold hold-7"))
    builder.observe_finding(
        verdict("retention", "", "review", None, "no usable timestamp", "no-timestamp")
    )
    builder.observe_verdict("review", "")
    html = page(tmp_path, builder)
    assert "until the hold is lifted" in shown_text(section(html, "table-hold"))
    said = "(none: the record has no usable timestamp)"
    assert said in shown_text(section(html, "table-retention"))
    assert "no-timestamp" not in shown_text(section(html, "table-retention"))
    assert said in shown_text(html[html.index('id="retention-rules"') :])


def test_a_hold_with_an_empty_scope_is_shown_as_holding_every_record(tmp_path):
    """Probe 21 #5: `scope: {}` on a hold held the whole history and the page said only "every
    record" in its Covers cell, as for any broad rule."""
    policy = policy_of_bytes(
        "policies.yaml",
        b"version: 1\nholds:\n"
        b"  - {id: everything, reason: dispute, scope: {}, starts: 2026-10-15}\n"
        b"  - {id: narrow, reason: audit, scope: {group: [fin-1]}, starts: 2026-10-15}\n",
    )
    builder = ReportBuilder(run_info(), policy=policy_view(policy))
    html = page(tmp_path, builder)
    rows = html[
        html.index('id="policy-holds"') : html.index("</table>", html.index("policy-holds"))
    ]
    broad, narrow = (shown_text(row) for row in rows.split("<tr id=")[1:])

    assert "every record: its scope is empty, so nothing is deleted while it lasts" in broad
    assert '<span class="warning">every record</span>' in rows
    assert "group fin-1" in narrow and "every record" not in narrow


def test_the_term_column_shows_the_term_as_the_policy_lists_it(tmp_path):
    """Probe 21 #12: a list naming `洗錢` and `KickBack` showed `洗钱` and `kickback`, its
    normalised form, in the Term column of the page and the CSV, which the reviewer then could
    not find in the policy file. The findings are `auditor scan`'s own."""
    policy = tmp_path / "policies.yaml"
    policy.write_text(
        "version: 1\nkeywords:\n  - {id: watch, severity: high, terms: [洗錢, KickBack]}\n",
        encoding="utf-8",
    )
    data = tmp_path / "in.jsonl"
    data.write_text(
        json.dumps(record("900000000000000001", text="他在洗钱, a kickback")) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "findings.jsonl"
    result = CliRunner().invoke(
        main, ["scan", "--policies", str(policy), str(data), "--findings", str(out)]
    )
    assert result.exit_code == 1, result.output
    builder = ReportBuilder(run_info())
    for line in out.read_text(encoding="utf-8").splitlines():
        builder.observe_finding(json.loads(line))
    files = builder.render(tmp_path / "report")

    table = shown_text(section(files["report.html"].read_text(encoding="utf-8"), "table-keyword"))
    rows = list(csv.DictReader(files["findings.csv"].read_text("utf-8-sig").splitlines()))
    assert "洗錢" in table and "KickBack" in table
    assert "洗钱" in table and "kickback" in table  # as matched, in the text and Matched column
    assert sorted(row["term"] for row in rows) == ["KickBack", "洗錢"]
    assert sorted(row["matched"] for row in rows) == ["kickback", "洗钱"]


# -- secrets ----------------------------------------------------------------------------------


def test_a_records_share_secret_is_masked_wherever_the_page_shows_it(tmp_path):
    builder = ReportBuilder(run_info())
    rec = record("900000000000000010")
    rec["payload"]["bodies"] = [
        {"type": "file", "url": "https://a1.easemob.com/o/a/chatfiles/u", "secret": "Zk9-SeCrEt-1"},
        {"type": "img", "secret": "Zk9-SeCrEt-2", "filename": "a.png"},
    ]
    rec["payload"]["ext"] = {"share-secret": "Zk9-SeCrEt-3"}
    builder.observe_record(rec, "2026110101")
    builder.observe_finding(
        {
            "msg_id": rec["msg_id"],
            "category": "schema",
            "rule": "https://schemas.easemob-auditor.dev/body/file.json",
            "severity": "medium",
            "message": "payload.bodies[0].length is required",
            "pointer": "/payload/bodies/0",
            "details": {"keyword": "required", "type": "file", "record": rec},
        }
    )
    html = page(tmp_path, builder)
    assert "SeCrEt" not in html
    shown = shown_text(section(html, "table-schema"))
    assert shown.count('"secret": "•••• (hidden: an attachment\'s share secret') == 2
    assert '"share-secret": "•••• (hidden: a value named secret; the bag holds it)"' in shown
    assert rec["payload"]["bodies"][0]["secret"] == "Zk9-SeCrEt-1"  # the record is not changed
    assert "chatfiles/u" in shown
