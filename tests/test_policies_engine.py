"""The policy engine end to end: findings as the report and archive read them, on real records."""

import hashlib
import json
import random

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.emulator.dataset import SyntheticHistory
from auditor.errors import ConfigError
from auditor.findings import Finding
from auditor.partitions import parse_instant
from auditor.policies.engine import PolicyEngine
from auditor.policies.loading import load_policy
from auditor.policies.model import DetectorRule
from auditor.policies.pii import PiiScanner, low_confidence_severity
from auditor.policies.reading import scanned_fields
from auditor.records import timestamp_ms
from auditor.resources import example_policy

POLICY = """
version: 1
retention:
  statutory_floor: {id: csl-art21, keep_for: 6mo}
  default: {keep_for: 1y, then: delete, severity: medium}
holds:
  - {id: case-17, reason: Supplier dispute, scope: {sender: mallory}, starts: 2026-01-01}
keywords:
  - id: zh-watch
    severity: high
    terms: [内幕消息, 洗钱]
detectors:
  - {detector: mobile, severity: medium, context: {words: [手机], within: 10}}
"""
SENT = parse_instant("2026-01-01")


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return PolicyEngine(load_policy(path), parse_instant("2026-06-01"))


def message(*bodies, sender="alice", ext=None, sent=SENT):
    payload = {"bodies": list(bodies), "from": sender, "to": "bob"}
    if ext is not None:
        payload["ext"] = ext
    return {"msg_id": "42", "timestamp": sent, "chat_type": "chat", "payload": payload}


def test_a_keyword_finding_carries_the_raw_span_and_the_normalisations(engine):
    _until, verdict, findings = engine.evaluate(message({"type": "txt", "msg": "听说有內*幕消息"}))
    assert findings == [
        Finding(
            "42",
            "keyword",
            "zh-watch",
            "high",
            "matched '内幕消息' (normalised: traditional, separators) in payload.bodies[0].msg",
            "/payload/bodies/0/msg",
            {
                "list": "zh-watch",
                "term": "内幕消息",
                "listed_term": "内幕消息",
                "matched": "內*幕消息",
                "start": 3,
                "end": 8,
                "normalizations": ["traditional", "separators"],
                "text": "听说有內*幕消息",
            },
        )
    ]
    assert verdict.disposition == "keep"


def test_a_pii_finding_names_its_detector_and_confidence(engine):
    _until, _verdict, (finding,) = engine.evaluate(
        message({"type": "txt", "msg": "手机13812345678"})
    )
    assert finding == Finding(
        "42",
        "pii",
        "mobile",
        "medium",
        "mobile '13812345678' (high confidence) in payload.bodies[0].msg",
        "/payload/bodies/0/msg",
        {
            "detector": "mobile",
            "term": "13812345678",
            "matched": "13812345678",
            "start": 2,
            "end": 13,
            "normalizations": [],
            "confidence": "high",
            "text": "手机13812345678",
        },
    )


def test_a_finding_in_a_long_text_keeps_200_characters_each_side_of_its_match(engine):
    """A long text copied whole into every finding made findings grow with the square of the
    text. Offsets stay offsets into the whole text, and `text_from` says where the
    excerpt begins."""
    text = "甲" * 1000 + "洗钱" + "乙" * 300 + "手机13812345678" + "丙" * 150

    _until, _verdict, findings = engine.evaluate(message({"type": "txt", "msg": text}))

    keyword, pii = [f.details for f in findings if f.category in ("keyword", "pii")]
    assert (keyword["start"], keyword["end"], keyword["text_from"]) == (1000, 1002, 800)
    assert keyword["text"] == "甲" * 200 + "洗钱" + "乙" * 200
    assert (pii["start"], pii["text_from"], pii["text_length"]) == (1304, 1104, len(text))
    assert pii["text"] == text[1104:]
    assert pii["text"][pii["start"] - pii["text_from"] :].startswith(pii["matched"])


def test_a_finding_in_a_text_of_its_context_or_shorter_keeps_it_whole(engine):
    text = "甲" * 200 + "洗钱" + "乙" * 200

    _until, _verdict, (finding, *_) = engine.evaluate(message({"type": "txt", "msg": text}))

    assert finding.details["text"] == text
    assert "text_from" not in finding.details and "text_length" not in finding.details


def test_every_scanned_field_is_reported_at_its_json_pointer():
    """Keys are reported at their member's pointer, integers as their decimal text; a string
    seen before (`洗钱`, the key `n`) only at its first place."""
    record = message(
        {"type": "loc", "lat": 1, "lng": 2, "addr": "洗钱路1号"},
        {"type": "file", "url": "https://x/1", "filename": "洗钱.pdf"},
        {"type": "txt", "subType": "sub_combine", "msg": "旧版本", "title": "t", "summary": "s"},
        {
            "type": "custom",
            "customEvent": "gift",
            "customExts": [{"a": "x"}, {"note": "洗钱"}],
            "v2:customExts": {"n": "洗钱"},
        },
        {"type": "custom", "customExts": {"k": "y"}},
        {"type": "cmd", "action": "typing"},
        ext={"em_apns_ext": {"em_push_title": "新消息"}, "a/b": ["z"], "n": 5, "on": True},
    )
    assert scanned_fields(record) == [
        ("/payload/bodies/0/addr", "洗钱路1号", False),
        ("/payload/bodies/1/filename", "洗钱.pdf", False),
        ("/payload/bodies/2/title", "t", False),
        ("/payload/bodies/2/summary", "s", False),
        ("/payload/bodies/3/customEvent", "gift", False),
        ("/payload/bodies/3/customExts/0/a", "a", True),
        ("/payload/bodies/3/customExts/0/a", "x", False),
        ("/payload/bodies/3/customExts/1/note", "note", True),
        ("/payload/bodies/3/customExts/1/note", "洗钱", False),
        ("/payload/bodies/3/v2:customExts/n", "n", True),
        ("/payload/bodies/4/customExts/k", "k", True),
        ("/payload/bodies/4/customExts/k", "y", False),
        ("/payload/bodies/5/action", "typing", False),
        ("/payload/ext/em_apns_ext", "em_apns_ext", True),
        ("/payload/ext/em_apns_ext/em_push_title", "em_push_title", True),
        ("/payload/ext/em_apns_ext/em_push_title", "新消息", False),
        ("/payload/ext/a~1b", "a/b", True),
        ("/payload/ext/a~1b/0", "z", False),
        ("/payload/ext/n", "5", False),
        ("/payload/ext/on", "on", True),
    ]


def test_an_over_retained_record_raises_a_retention_finding(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    engine = PolicyEngine(load_policy(path), parse_instant("2027-03-01"))
    until, _verdict, (finding,) = engine.evaluate(message({"type": "cmd", "action": "typing"}))
    assert until == parse_instant("2027-01-01")
    assert finding == Finding(
        "42",
        "retention",
        "default",
        "medium",
        "over-retention: retention ended 2027-01-01T00:00:00Z (default rule default keeps it "
        "for 1 year, then deletes it) but the source still holds the record",
        None,
        {
            "rule": "default",
            "disposition": "dispose",
            "retain_until": "2027-01-01T00:00:00Z",
            "retain_until_ms": parse_instant("2027-01-01"),
            "reason": "default rule default keeps it for 1 year, then deletes it",
            "losing_rules": [
                [
                    "csl-art21",
                    "its retention of 6 months ends no later than default rule default deletes "
                    "it, after 1 year",
                ]
            ],
        },
    )


def test_a_held_record_raises_a_hold_finding(engine):
    record = message({"type": "cmd", "action": "typing"}, sender="mallory")
    _until, verdict, (finding,) = engine.evaluate(record)
    assert verdict.disposition == "hold"
    assert (finding.category, finding.rule, finding.severity) == ("hold", "case-17", "info")
    assert finding.message == "under legal hold case-17 since 2026-01-01T00:00:00Z"
    assert finding.details["hold_reason"] == "Supplier dispute"
    assert finding.details["losing_rules"][0] == [
        "default",
        "a legal hold beats every retention rule",
    ]


def test_a_record_that_matches_nothing_gets_the_shared_empty_findings(engine):
    """Its texts are looked up and nothing more is built: the same empty tuple for every such
    record, first seen or remembered (compiled code once boxed the shared no-match value anew,
    and every record took the findings path)."""
    clean = message({"type": "txt", "msg": "明天下午三点开会"}, ext={"title": "周会"})
    for _ in range(2):
        _until, verdict, findings = engine.evaluate(clean)
        assert verdict.disposition == "keep"
        assert findings == ()
        assert findings is engine.evaluate(message({"type": "txt", "msg": "ok"}))[2]


def test_repeated_texts_give_the_same_findings_with_or_without_the_memo(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    policy, now = load_policy(path), parse_instant("2026-06-01")
    memo, plain = PolicyEngine(policy, now), PolicyEngine(policy, now, memo_size=0)
    records = [message({"type": "txt", "msg": "洗钱，手机13812345678"}) for _ in range(3)]
    assert [memo.evaluate(r) for r in records] == [plain.evaluate(r) for r in records]


def test_texts_without_ascii_digits_find_the_numbers_written_in_other_digits():
    """Fuzz: the engine skips the numeric prefilter for a text without ASCII digits; any other
    digit (fullwidth, circled, bold, Arabic-Indic) must still reach the detectors, as it does
    through the scanner alone, which never skips it. Zeros alone count as ASCII digits."""
    policy = load_policy(example_policy())
    engine, scanner = (
        PolicyEngine(policy, parse_instant("2026-12-01")),
        PiiScanner(policy.detectors),
    )
    rng = random.Random(11)
    pieces = ["１", "３", "８", "５", "０", "①", "③", "⑧", "𝟏", "𝟓", "٣", "٨", "0", "00", "0.0."]
    pieces += ["１３８", "１２３４", "５６７８", "①③⑧", "𝟏𝟑𝟖", "١٣٨", "٥٦٧٨", "0.0.0.0"]
    pieces += ["－", "．", "\u3000", " ", "手机", "电话", "，", "ip ", "卡号"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) for _ in range(3_000)]

    def spans(hits):  # the engine also reads Arabic-Indic digits as displayed: not here
        return [
            (hit.rule.id, hit.start, hit.end, hit.value)
            for hit in hits
            if "bidi" not in hit.normalizations
        ]

    differing = [t for t in texts if spans(engine.matches(t)[1]) != spans(scanner.scan(t))]

    assert differing == []
    assert sum(1 for text in texts if scanner.scan(text)) > 200  # the fuzz does reach detections


def test_the_policy_digest_is_the_sha256_of_the_file_bytes():
    path = example_policy()
    assert load_policy(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_example_policy_finds_every_planted_keyword_and_trusts_no_bad_checksum():
    """Over 5,000 synthetic records: every planted term (with its evasion) is found, every valid
    resident ID and card is reported with high confidence, and no invalid one ever is."""
    history = SyntheticHistory(messages=5_000)
    engine = PolicyEngine(load_policy(example_policy()), parse_instant("2026-12-01"))
    destroyed = {"msg_not_string", "unknown_body_type", "empty_bodies"}
    missed, planted, wrongly_trusted, valid_ids = [], 0, [], 0
    for index in range(len(history)):
        truth = history.truth(index)
        _until, _verdict, findings = engine.evaluate(truth.record)
        listed = {f.details["listed_term"] for f in findings if f.category == "keyword"}
        if truth.defect not in destroyed:
            planted += len(truth.keywords)
            missed += [(index, t, truth.evasion) for t in truth.keywords if t not in listed]
        trusted = {
            f.details["detector"]
            for f in findings
            if f.category == "pii" and f.details["confidence"] == "high"
        }
        for kind in truth.pii:
            if kind.endswith("_invalid") and kind.removesuffix("_invalid") in trusted:
                wrongly_trusted.append((index, kind))
            if kind in ("resident_id", "bank_card") and truth.defect not in destroyed:
                valid_ids += 1
                assert kind in trusted, (index, kind)
    assert planted > 100 and valid_ids > 20
    assert missed == []
    assert wrongly_trusted == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("chat_type", ["groupchat"]), ("chat_type", {"a": 1}), ("timestamp", 10**30)],
)
def test_malformed_envelope_values_get_a_verdict_not_a_crash(field, value):
    engine = PolicyEngine(load_policy(example_policy()), 1_793_577_600_000)
    record = {
        "msg_id": "1",
        "timestamp": 1_793_491_200_000,
        "from": "user0001",
        "to": "user0002",
        "chat_type": "chat",
        "payload": {"bodies": [{"type": "txt", "msg": "洗钱"}]},
        field: value,
    }
    _until, verdict, findings = engine.evaluate(record)
    assert verdict.disposition in ("keep", "review")
    assert any(f.category == "keyword" for f in findings)


@pytest.mark.parametrize(
    "written", ["²", "١٧٩٣٤٩١٢٠٠٠٠٠", "１７９３４９１２０００００", "1793491200000²"]
)
def test_a_timestamp_in_digits_other_than_ascii_is_no_send_time(written):
    """`str.isdigit` takes them all; `int` refuses `²` and reads the others, which the schema
    refuses: only ASCII digits make a send time."""
    assert timestamp_ms({"timestamp": written}) is None
    assert timestamp_ms({"timestamp": "1793491200000"}) == 1_793_491_200_000


def test_scan_gives_a_record_timed_in_other_digits_the_no_timestamp_finding(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    data = tmp_path / "records.jsonl"
    records = [
        {"msg_id": msg_id, "timestamp": written, "payload": {"bodies": []}}
        for msg_id, written in (("sup", "²"), ("arabic", "١٧٩٣٤٩١٢٠٠٠٠٠"))
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    result = CliRunner().invoke(
        main,
        [
            *("scan", "--policies", str(policy), str(data), "--findings", "-"),
            *("--now", "2028-11-20", "--fail-on", "medium"),
        ],
    )

    assert result.exit_code == 0
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(f["msg_id"], f["rule"], f["severity"]) for f in found] == [
        ("sup", "no-timestamp", "low"),
        ("arabic", "no-timestamp", "low"),
    ]
    assert "PASS: 0 of 2 finding(s) at or above 'medium'" in result.stderr


CARDS = """
version: 1
retention:
  default: {keep_for: 10y, then: delete}
detectors:
  - {detector: bank_card, severity: high}
  - {detector: mobile, severity: medium}
  - {detector: ipv4, severity: low}
  - {detector: email, severity: high}
"""


def _engine(tmp_path, text=CARDS):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return PolicyEngine(load_policy(path), parse_instant("2026-06-01"))


def _pii(engine, text):
    _until, _verdict, findings = engine.evaluate(message({"type": "txt", "msg": text}))
    return [(f.rule, f.severity, f.details["confidence"], f.message) for f in findings]


def test_a_low_confidence_detection_is_one_severity_below_its_rule(tmp_path):
    """One random 16-digit number in ten passes the Luhn check: an order number with no card
    word near it is no high-severity card."""
    engine = _engine(tmp_path)
    _until, _verdict, (finding,) = engine.evaluate(
        message({"type": "txt", "msg": "order 6234567812345679 shipped"})
    )

    assert (finding.severity, finding.message) == (
        "medium",
        "bank_card '6234567812345679' (low confidence, so medium rather than high) "
        "in payload.bodies[0].msg",
    )
    assert finding.details["severity_lowered_for"] == "low confidence"
    assert finding.details["rule_severity"] == "high"


def test_a_context_word_keeps_the_rule_severity(tmp_path):
    engine = _engine(tmp_path)

    assert _pii(engine, "card 6234567812345679") == [
        (
            "bank_card",
            "high",
            "high",
            "bank_card '6234567812345679' (high confidence) in payload.bodies[0].msg",
        )
    ]


def test_a_rule_may_set_its_own_low_confidence_severity(tmp_path):
    own = "{detector: mobile, severity: medium, low_confidence_severity: medium}"
    engine = _engine(tmp_path, CARDS.replace("{detector: mobile, severity: medium}", own))

    assert sorted(
        row[:3] for row in _pii(engine, "订单 13812345678 已发 10.0.0.1 a@b.example")
    ) == [
        ("email", "high", "high"),
        ("ipv4", "info", "low"),
        ("mobile", "medium", "low"),
    ]


@pytest.mark.parametrize(
    ("severity", "lowered"),
    [("high", "medium"), ("medium", "low"), ("low", "info"), ("info", "info")],
)
def test_the_default_low_confidence_severity_is_one_level_below(severity, lowered):
    rule = DetectorRule("r", "bank_card", severity, (), 20, (), 1)
    assert low_confidence_severity(rule) == lowered


def test_a_low_confidence_severity_above_the_rule_severity_is_refused(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        CARDS.replace(
            "{detector: ipv4, severity: low}",
            "{detector: ipv4, severity: low, low_confidence_severity: high}",
        ),
        encoding="utf-8",
    )

    with pytest.raises(ConfigError, match=r"low_confidence_severity: 'high' is above the rule"):
        load_policy(path)


def test_scan_fails_on_high_for_a_card_number_only_with_context(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(CARDS, encoding="utf-8")
    data = tmp_path / "records.jsonl"
    codes = []
    for text in ("order 6234567812345679 shipped", "my card 6234567812345679"):
        data.write_text(json.dumps(message({"type": "txt", "msg": text})) + "\n", "utf-8")
        result = CliRunner().invoke(
            main, ["scan", "--policies", str(policy), str(data), "--fail-on", "high"]
        )
        codes.append(result.exit_code)

    assert codes == [0, 1]
