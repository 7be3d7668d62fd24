"""The report page in Simplified Chinese (`--report-lang zh-CN`), for compliance officers and legal
teams in China: every fixed word from the catalogue, what the archive holds shown as it is.

The completeness rule: a fixed string is text the templates, the report model or report.js write;
data is every string of the records, findings, policy file and run facts fed to the report. The
Chinese page's visible text (text nodes, and the titles, labels and placeholders a reader meets),
with every data string taken out, holds no Latin word but the few names Chinese technical writing
keeps in Latin (UTC, JSON, CSV, SHA-256, Merkle, BagIt, ID, Excel, UTF-8) and the names of the
files the page links. The shell commands quoted from the bag's data/VERIFY.txt are evidence and
stay as written; a badge's title is the Unicode name of the character it shows.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import pickle
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
import run_support
import yaml
from click.testing import CliRunner
from jinja2 import Environment
from markupsafe import escape
from test_archive_support import build_bag
from test_report_accessibility_browser import MIXED
from test_report_reviewer_page import NOV_1, hold, keyword, record, run_info

from auditor.archive.keys import generate_key_files, load_signing_key
from auditor.cli import main
from auditor.errors import ConfigError
from auditor.partitions import DAY_MS
from auditor.policies.loading import policy_of_bytes
from auditor.report import ReportBuilder
from auditor.report import catalogue as catalogue_module
from auditor.report.catalogue import SCRIPT, VOCABULARY, ZH_CN, Phrase
from auditor.report.display import clip_drawn
from auditor.report.formats.html import HtmlFormat
from auditor.report.policy import policy_view
from auditor.resources import example_policy, templates_dir

REPO = Path(__file__).resolve().parents[1]
SECRET = "zh-page-test-secret"

# Latin a Chinese reader of a technical report expects to see in Latin
LATIN_WORDS = {"UTC", "JSON", "Schema", "CSV", "SHA", "ID", "Merkle", "BagIt", "Excel", "UTF", "Z"}
# names the page quotes: files it links, keys and commands a reader types
LATIN_NAMES = re.compile(
    r"findings(-\d+)?\.csv|findings\.jsonl|summary\.json|bag-info\.txt|tagmanifest-sha256\.txt"
    r"|data/VERIFY\.txt|retention\.by_rule|chat_type|easemob-auditor(?= )|`auditor verify`"
    r"|--fail-on none|\bnone:|\bunknown:|\bcombine\b"
)


def template_messages() -> set[str]:
    """Every message the templates pass to `_()` and `ngettext`."""
    environment = Environment(extensions=["jinja2.ext.i18n"])
    found: set[str] = set()
    for path in templates_dir().glob("*.j2"):
        for _line, _function, message in environment.extract_translations(path.read_text()):
            found.update(m for m in (message if isinstance(message, tuple) else (message,)) if m)
    return found


def phrase_messages() -> set[str]:
    """Every literal message of a `Phrase(...)` in the report's Python modules."""
    found: set[str] = set()
    for path in (REPO / "auditor/report").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "Phrase"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value
            ):
                found.add(node.args[0].value)
    return found


def test_every_message_the_page_uses_has_a_chinese_entry():
    wanted = template_messages() | phrase_messages() | set(SCRIPT) | VOCABULARY
    assert len(wanted) > 200
    assert sorted(wanted - ZH_CN.keys()) == []


def test_a_chinese_entry_keeps_the_fields_of_its_message():
    for message, chinese in ZH_CN.items():
        fields = set(re.findall(r"%\(\w+\)s|\{\w+(?::,)?\}", message))
        assert set(re.findall(r"%\(\w+\)s|\{\w+(?::,)?\}", chinese)) == fields, message


# fields, markup, quoted commands and escapes, which keep their ASCII punctuation
VERBATIM = re.compile(r"%\(\w+\)s|\{[^{}]*\}|<[^>]*>|`[^`]*`|--fail-on none")


def test_chinese_entries_use_chinese_punctuation():
    """，；：（） as GB/T 15834 sets them, not ASCII, in the translations' own words."""
    ascii_marks = {
        message: found
        for message, chinese in ZH_CN.items()
        if (found := re.findall(r"[,;:()]", VERBATIM.sub("", chinese)))
    }
    assert ascii_marks == {}


# -- a page with everything on it ---------------------------------------------------------------


def _retention(msg_id: str, rule: str, losing: int) -> dict:
    return {
        "msg_id": msg_id,
        "category": "retention",
        "rule": rule,
        "severity": "medium",
        "message": f"retention period of {rule} ended; dispose",
        "pointer": None,
        "details": {
            "rule": rule,
            "disposition": "dispose",
            "retain_until_ms": NOV_1 - DAY_MS,
            "reason": "kept 30 days, then delete",
            "losing_rules": [[f"loser-{n}", "keeps less long"] for n in range(losing)],
        },
    }


def full_builder() -> ReportBuilder:
    """Findings in every table (a cut one among them), verdicts of more rules than the page
    lists, records the charts leave out, a term counted twice, a long name cut, a hold over every
    record and a term file: each sentence the page can compose."""
    policy = policy_of_bytes("policy.yaml", example_policy().read_bytes())
    view = policy_view(policy, copy="data/policy.yaml")
    view = dataclasses.replace(
        view,
        rows=2,
        holds=(*view.holds, {**view.holds[0], "id": "all-of-it", "covers": (), "ends_ms": None}),
        term_files=(
            {
                "list": "zh-misconduct",
                "key": "terms_file",
                "file": "terms/zh.txt",
                "archived": "data/terms/zh.txt",
                "sha256": "cd" * 32,
                "terms": 12,
            },
        )
        * 3,
    )
    builder = ReportBuilder(run_info(reference_ms=NOV_1 + DAY_MS), table_rows=5, policy=view)
    for number in range(12):
        msg_id = f"91000000000000{number:04d}"
        rec = record(msg_id, "张伟", MIXED)
        if number == 0:  # a file's share secret, masked, and a record too long to show whole
            rec["payload"]["bodies"].append({"type": "file", "url": "u", "secret": "s3cr3t"})
            rec["payload"]["ext"] = {"secret": "x", "note": "备注" * 400}
        builder.observe_record(rec, "2026110101")
        finding = keyword(msg_id, MIXED, term="内幕消息", severity="medium")
        finding["details"]["occurrences"] = 2
        builder.observe_finding(finding)
        builder.observe_finding(
            {
                "msg_id": msg_id,
                "category": "schema",
                "rule": "https://schemas.easemob-auditor.dev/body/txt.json",
                "severity": "low",
                "message": "payload.ext.note: 不是字符串",
                "pointer": "/payload/ext/note",
                "details": {"keyword": "type", "type": "txt", "record": rec},
            }
        )
        builder.observe_finding(_retention(msg_id, f"rule-{number}", losing=7))
    untimed = record("920000000000000001", "李娜", "你好")
    del untimed["timestamp"]
    builder.observe_record(untimed, "2026110101")
    builder.observe_finding(_retention("920000000000000001", "rule-x", losing=0))
    late = record("920000000000000002", "张" * 300, "你好")
    late["timestamp"] = NOV_1 + 3 * DAY_MS
    builder.observe_record(late, "2026110101")
    builder.observe_finding(keyword("920000000000000002", "请给回扣 kickback"))
    builder.observe_finding(hold("900000000000000003", "诉讼保全:2026 民初 17 号"))
    builder.observe_finding(
        {
            "msg_id": "930000000000000001",
            "category": "coverage",
            "rule": "disappeared",
            "severity": "high",
            "message": "archived by run 2, gone from the source",
            "pointer": None,
            "details": {},
        }
    )
    for number in range(101):  # more body types than the report counts apart: "(other)"
        odd = record(f"95{number:016d}", "李娜", "你好")
        odd["payload"]["bodies"][0]["type"] = f"type-{number}"
        builder.observe_record(odd, "2026110101")
    senderless = record("960000000000000001", "", "你好")
    del senderless["from"], senderless["payload"]["from"]
    builder.observe_record(senderless, "2026110101")
    builder.observe_finding(keyword("960000000000000001", "请给回扣 kickback"))
    builder.observe_verdict("hold", "hold-1")
    builder.observe_verdict("keep", "")
    builder.observe_verdict("review", "")
    for number in range(60):
        builder.observe_verdict("keep", f"rule-{number}")
        builder.observe_finding(
            {
                "msg_id": f"94{number:016d}",
                "category": "keyword",
                "rule": f"list-{number}",
                "severity": "info",
                "message": "watched term",
                "pointer": None,
                "details": {},
            }
        )
    return builder


def data_strings(builder: ReportBuilder) -> set[str]:
    """Every string the report was fed: records, findings, the policy file, the run's facts (the
    tool's own vocabulary, such as severities, excepted: the page translates those)."""
    found: set[str] = set()

    def walk(value: object, keys: bool = True) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if keys:  # a record's keys show in its JSON; a policy file's do not
                    walk(key)
                walk(item, keys)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, keys)

    for finding in builder.snapshot().findings():
        walk(finding)
        details = finding["details"]
        if "start" in details:  # the text either side of the match, which the page marks
            walk([details["text"][: details["start"]], details["text"][details["end"] :]])
    walk(yaml.safe_load(example_policy().read_text()), keys=False)
    # the names of the normalisation steps, which the policy language uses (its defaults too)
    walk([part for each in builder.policy.keyword_lists for part in each["normalize"].split(", ")])
    walk(dataclasses.asdict(builder.run_info))
    walk(MIXED)
    walk([record("0", "张伟", MIXED), "terms/zh.txt", "data/terms/zh.txt", "cd" * 32])
    walk({"type": "file", "url": "u", "ext": {"note": "备注"}})
    walk(["all-of-it", "terms_file", "data/policy.yaml", "hourfiles"])
    return {each for each in found if each.strip() and each not in VOCABULARY}


class VisibleText(HTMLParser):
    """The text a reader meets: text nodes and the titles, labels and placeholders of elements,
    not the script and style, the quoted VERIFY.txt, or a badge's Unicode name."""

    VOID = frozenset({"br", "meta", "input", "img", "link", "hr", "wbr"})
    READ = ("title", "aria-label", "placeholder", "alt")

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.open: list[bool] = []  # per open element: whether its text is skipped

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if "cf" not in (values.get("class") or "").split():
            self.texts.extend(values[name] for name in self.READ if values.get(name))
        if tag not in self.VOID:
            self.open.append(tag in ("script", "style") or values.get("id") == "verify-commands")

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.open:
            self.open.pop()

    def handle_data(self, data):
        if not any(self.open) and data.strip():
            self.texts.append(data)


def english_left(texts: list[str], data: set[str]) -> list[str]:
    """The Latin words of `texts` once every data string (where it stands as a word of its own,
    not a letter inside another word) and every name the page quotes are taken out of each."""
    ordered = sorted(data, key=len, reverse=True)
    pattern = re.compile(
        "(?<![A-Za-z])(?:" + "|".join(map(re.escape, ordered)) + ")(?![A-Za-z])"
        if ordered
        else "(?!)"
    )
    left = []
    for text in texts:
        text = pattern.sub(" ", LATIN_NAMES.sub(" ", text))
        left.extend(word for word in re.findall(r"[A-Za-z]{2,}", text) if word not in LATIN_WORDS)
    return left


def visible_texts(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.texts


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[str, str, set[str]]:
    out = tmp_path_factory.mktemp("zh")
    with full_builder() as builder:
        report = builder.snapshot()
        report.summary["findings"]["total"] = 2_000_000  # as many as take several CSV files
        pages = {}
        for language in ("en", "zh-CN"):
            path = out / f"{language}.html"
            with path.open("wb") as handle:
                HtmlFormat(language=language).dump(report, handle)
            pages[language] = path.read_text(encoding="utf-8")
        return pages["en"], pages["zh-CN"], data_strings(builder)


def test_the_chinese_page_says_every_fixed_string_in_chinese(rendered):
    english, chinese, data = rendered
    # the rule finds the English page's own words, so it can fail
    assert len(set(english_left(visible_texts(english), data))) > 150
    assert english_left(visible_texts(chinese), data) == []


def test_the_chinese_page_is_marked_as_such_and_keeps_what_the_archive_holds(rendered):
    _english, chinese, _data = rendered
    assert '<html lang="zh-CN">' in chinese
    assert "<h1>聊天记录合规审计 · 第 3 次运行</h1>" in chinese
    assert "不通过：3 项发现的严重程度达到或高于“高”" in chinese
    # quoted as recorded: a finding's message, a hold's reason, a rule's name
    assert "archived by run 2, gone from the source" in chinese
    assert "诉讼保全:2026 民初 17 号" in chinese
    assert "https://schemas.easemob-auditor.dev/body/txt.json" in chinese
    # instants stay ISO 8601 with their offset, as in the English page
    assert "2026-11-01 08:00:00 +08:00" in chinese
    # the record's masks and cut, said by the report, in Chinese; the record's own JSON as it is
    assert "••••（已隐藏：附件的分享密钥；归档包中保存原值）" in chinese
    assert "••••（已隐藏：名为 secret 的值；归档包中保存原值）" in chinese
    assert "……（此处截断；归档包中保存完整记录）" in chinese and "s3cr3t" not in chinese
    assert "&#34;bodies&#34;: [" in chinese or '"bodies": [' in chinese
    # a Chinese page marks no Chinese run as foreign
    assert '<span lang="zh">' not in chinese


def test_the_chinese_page_is_self_contained_and_picks_system_cjk_fonts(rendered):
    _english, chinese, _data = rendered
    assert "@font-face" not in chinese and "url(" not in chinese
    rule = r":lang\(zh\):not\(code, pre, \.mono, \.cf\) \{ font-family: ([^;]+);"
    stack = re.search(rule, chinese).group(1)
    assert stack.startswith('"Noto Sans CJK SC"') and "Microsoft YaHei" in stack


def test_the_script_reads_its_chinese_words_from_the_page_under_the_same_policy(rendered):
    english, chinese, _data = rendered
    policy = re.compile(r'http-equiv="Content-Security-Policy" content="([^"]+)"')
    assert policy.search(english).group(1) == policy.search(chinese).group(1)
    assert chinese.count("<script") == english.count("<script") == 1
    words = re.search(r'<body data-words="([^"]*)">', chinese).group(1)
    assert json.loads(unescape(words))["Filter rows"] == "筛选行"
    assert "<body>" in english


emulator = run_support.emulator_fixture(SECRET, messages=300)


def test_a_run_configured_for_chinese_bags_a_chinese_page_and_report_renders_it_again(
    emulator, tmp_path, monkeypatch
):
    """`report_lang: zh-CN` in the config's `run:` section; then `auditor report` of that bag,
    in English and in Chinese. The CSV and JSON are for programs and do not change."""
    monkeypatch.setenv("EASEMOB_CLIENT_SECRET", SECRET)
    keys = generate_key_files(tmp_path / "keys")
    args = run_support.run_args(emulator, keys, tmp_path / "work", hours=2)
    config = Path(args[args.index("--config") + 1])
    config.write_text(config.read_text() + "run:\n  report_lang: zh-CN\n")
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    (bag,) = (tmp_path / "work/archive").glob("run-*")
    bagged = (bag / "data/report/report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in bagged and "如何验证本归档包" in bagged

    pages = {}
    for language in ("en", "zh-CN"):
        out = tmp_path / language
        result = CliRunner().invoke(
            main, ["report", str(bag), "-o", str(out), "--report-lang", language]
        )
        assert result.exit_code in (0, 1), result.output
        pages[language] = out
    assert '<html lang="en">' in (pages["en"] / "report.html").read_text(encoding="utf-8")
    chinese = (pages["zh-CN"] / "report.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in chinese and "聊天记录合规审计" in chinese
    for name in ("findings.csv", "findings.jsonl"):
        assert (pages["en"] / name).read_bytes() == (pages["zh-CN"] / name).read_bytes()
    summaries = [json.loads((pages[each] / "summary.json").read_text()) for each in pages]
    assert summaries[0]["verdict"] == summaries[1]["verdict"]


def test_a_config_with_a_report_language_it_has_no_catalogue_for_is_refused(tmp_path):
    config = tmp_path / "auditor.yaml"
    config.write_text("run:\n  report_lang: fr\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert result.exit_code != 0
    assert "run.report_lang must be one of en, zh-CN, not 'fr'" in result.output


def test_report_refuses_a_language_it_has_no_catalogue_for(tmp_path):
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main, ["report", str(tmp_path), "-o", str(out), "--report-lang", "fr"]
    )
    assert result.exit_code == 2
    assert "'fr' is not one of 'en', 'zh-CN'" in result.output


def test_the_catalogue_has_exactly_the_languages_offered():
    assert catalogue_module.LANGUAGES == ("en", "zh-CN")
    assert set(catalogue_module.CATALOGUES) == set(catalogue_module.LANGUAGES)


def test_a_chart_label_in_chinese_is_cut_to_the_room_beside_its_bar():
    """A Han character is drawn twice as wide as a Latin letter: 28 of them, where 28 letters
    fit, ran past the chart's left edge (a sender's name in the top-senders chart)."""
    assert clip_drawn("张" * 30, 28) == "张" * 13 + "…"
    assert clip_drawn("张伟" * 7, 28) == "张伟" * 7
    assert clip_drawn("a" * 30, 28) == "a" * 27 + "…"


def test_a_phrase_crosses_a_pickle_still_able_to_say_itself():
    """A report may be handed to another process: its phrases keep their message and values."""
    phrase = Phrase("Messages per {per} ({zone})", per=Phrase("hour"), zone="UTC+08:00")
    again = pickle.loads(pickle.dumps(Phrase.joined(phrase, Phrase("none"))))
    assert again == "Messages per hour (UTC+08:00) none"
    assert catalogue_module.say(again, "zh-CN") == "每小时消息数（UTC+08:00）无"


def test_a_policy_copy_this_version_cannot_read_is_said_in_chinese_around_the_quoted_error(
    tmp_path,
):
    """The reason stays the auditor's own line, as `auditor policy check` prints it (its file,
    line, field and the keys the YAML may hold), quoted and marked English; what it means is
    said in the page's language."""
    policy = example_policy().read_bytes() + b"\nfuture_section:\n  x: 1\n"
    info = {
        "Window-Until": "2026-11-02T00:00:00Z",
        "Policy-SHA256": hashlib.sha256(policy).hexdigest(),
    }
    key = load_signing_key(generate_key_files(tmp_path / "keys").private_key)
    bag = build_bag(tmp_path / "runs", key, info=info, files={"policy.yaml": policy}).path
    with pytest.raises(ConfigError) as refused:
        policy_of_bytes("data/policy.yaml", policy)
    quoted = escape(str(refused.value))
    assert "unknown field" in quoted

    notes = {}
    for language in ("zh-CN", "en"):
        out = tmp_path / language
        result = CliRunner().invoke(main, ["report", str(bag), "-o", str(out),
                                           "--report-lang", language])  # fmt: skip
        assert result.exit_code in (0, 1), result.output
        page = (out / "report.html").read_text(encoding="utf-8")
        notes[language] = re.search(r'<p class="note" id="policy-problem">(.*?)</p>', page)[1]

    assert notes["zh-CN"] == (
        f"当前版本的审计工具无法读取 data/policy.yaml，因此不显示其规则。原因（审计工具的原文）："
        f'<code lang="en">{quoted}</code>'
    )
    assert notes["en"] == (
        "this version of the auditor cannot read data/policy.yaml, so its rules are not shown: "
        f"<code>{quoted}</code>"
    )
