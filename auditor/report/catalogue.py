"""The report page's words in each language it is written in: English and Simplified Chinese.

A plain message catalogue rather than gettext `.po`/`.mo` files through Babel: the page has one
translation, its ~250 strings ship inside the package with nothing to compile, and a test checks
the catalogue against every string the templates and the report model use. The templates call
them through jinja2's i18n extension (`_()`, `ngettext`), the model composes `Phrase`s (English
text that remembers its message and values), and report.js receives its own strings (`SCRIPT`).

Only fixed words are translated. What the archive holds (message text, rule names and reasons
written by the user, finding messages stored in the bag) is shown as it is, in whatever language
it was written.

Glossary (zh-CN), as a compliance department in mainland China says it:

    audit 审计                     compliance 合规                 report 报告
    record 记录                    message 消息                    finding 发现项
    severity 严重程度              high/medium/low/info 高/中/低/提示
    verdict PASS/FAIL 通过/不通过  rule 规则                       policy 策略
    retention 留存                 retention rule 留存规则         statutory floor 法定最短留存期
    disposition 处置结论           keep/dispose/review/hold 保留/到期删除/复核/法律保全
    then delete (a rule's end) 删除
    legal hold 法律保全            keyword list 关键词清单         term 词条
    allowed phrase 豁免短语        normalisation 归一化            PII / personal data 个人信息
    sensitive information 敏感信息 detector 识别器                 context word 上下文关键词
    schema JSON Schema 结构校验    parse 解析                      pointer JSON 指针
    archive (bag) 归档包 (BagIt)   Merkle root Merkle 根           leaf 叶子节点
    signing key fingerprint 签名密钥指纹                           tag manifest 标签清单
    window 审计时间窗口            run 运行 / 第 N 次运行          source 数据源
    time zone 时区                 sender 发送方                   chat type 会话类型
    attachment 附件                verify 验证                     evidence 证据

Dates and times stay ISO 8601 with their UTC offset (`2026-11-01 08:00:00 +08:00`), which
GB/T 7408 (the national standard equal to ISO 8601) defines; counts keep a thousands comma, as
GB/T 15835 allows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

LANGUAGES = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"


class Phrase(str):
    """English text that remembers its message and values, so the page can say it in another
    language: `Phrase("Messages per {per} ({zone})", per=Phrase("hour"), zone="UTC")` is the
    string "Messages per hour (UTC)" wherever English is wanted (tests, CSV, logs). A message
    the catalogue does not hold is its own template: a record's JSON with `{share}` where a mask
    of the report's stands (`tables.pretty_record`)."""

    msgid: str
    params: Mapping[str, Any]
    parts: tuple[Phrase, ...]

    def __new__(cls, msgid: str, /, **params: Any) -> Phrase:
        self = super().__new__(cls, msgid.format(**params) if params else msgid)
        self.msgid, self.params, self.parts = msgid, params, ()
        return self

    @classmethod
    def joined(cls, *parts: Phrase) -> Phrase:
        """Sentences said one after another: a space between them in English, none in Chinese."""
        kept = tuple(part for part in parts if part)
        self = super().__new__(cls, " ".join(kept))
        self.msgid, self.params, self.parts = "", {}, kept
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (str(self), self.msgid, dict(self.params), self.parts))


def _rebuilt(text: str, msgid: str, params: dict[str, Any], parts: tuple[Phrase, ...]) -> Phrase:
    self = str.__new__(Phrase, text)
    self.msgid, self.params, self.parts = msgid, params, parts
    return self


def say(value: Any, language: str) -> Any:
    """`value` in `language` when it is a `Phrase`; anything else as it is."""
    if not isinstance(value, Phrase) or language == DEFAULT_LANGUAGE:
        return value
    if value.parts:
        return JOINERS[language].join(say(part, language) for part in value.parts)
    text = CATALOGUES[language].get(value.msgid, value.msgid)
    if not value.params:
        return text
    return text.format(**{key: say(item, language) for key, item in value.params.items()})


def gettext(language: str) -> Callable[[str], str]:
    catalogue = CATALOGUES[language]
    return lambda message: catalogue.get(message, message)


def ngettext(language: str) -> Callable[[str, str, int], str]:
    catalogue = CATALOGUES[language]

    def plural(singular: str, plural: str, count: int) -> str:
        message = singular if count == 1 else plural
        # Chinese has one form: the catalogue gives it under the plural
        return catalogue.get(plural, catalogue.get(message, message))

    return plural


def word(value: Any, language: str) -> Any:
    """A word of the tool's own vocabulary found in the data (a severity, disposition, finding
    category) in `language`; any other value as it is."""
    if isinstance(value, str) and value in VOCABULARY:
        return CATALOGUES[language].get(value, value)
    return value


def script_words(language: str) -> dict[str, str]:
    """The strings report.js says, in `language` (none for English: the script's own)."""
    if language == DEFAULT_LANGUAGE:
        return {}
    return {key: CATALOGUES[language][key] for key in SCRIPT}


JOINERS = {"en": " ", "zh-CN": ""}

# Values of the data that are the tool's own words, shown translated.
VOCABULARY = frozenset(
    {
        *("high", "medium", "low", "info"),
        *("keep", "dispose", "review", "hold"),
        *("schema", "parse", "keyword", "pii", "retention", "coverage", "duplicate", "source"),
        *("attachment", "messages", "delete", "(other)", "(no sender)"),
    }
)

# What report.js says; `{name}` fields are filled in by the script.
SCRIPT = (
    "this table",
    "Rows of {title}",
    "the {shown} rows shown (of {total})",
    "the rows of this table",
    "Filter the {shown} rows shown",
    "Filter rows",
    "Filter {scope}",
    "Searches only {scope}; findings.csv and findings.jsonl hold all {total}",
    "\u2039 Previous",
    "Previous page",
    "Next \u203a",
    "Next page",
    " (searched only the {shown} rows shown of {total}; findings.csv and findings.jsonl hold all)",
    "rows {first}\u2013{last} of {count}",
    "no matching rows",
    ", sorted by {name}, ascending",
    ", sorted by {name}, descending",
    "{what} of message {id}",
    "scrolling text",
)

ZH_CN: dict[str, str] = {
    # -- the page's frame -------------------------------------------------------------------
    "Audit report, run %(sequence)s: %(verdict)s": (
        "审计报告 · 第 %(sequence)s 次运行 · %(verdict)s"
    ),
    "%(title)s (%(count)s)": "%(title)s（%(count)s）",
    "Skip to the report": "跳至报告正文",
    "Chat compliance audit, run %(sequence)s": "聊天记录合规审计 · 第 %(sequence)s 次运行",
    "Window %(since)s to %(until)s (end excluded), that is %(since_utc)s to %(until_utc)s.": (
        "审计时间窗口：%(since)s 至 %(until)s（不含结束时刻），"
        "即协调世界时 %(since_utc)s 至 %(until_utc)s。"
    ),
    "Retention and holds judged as of %(instant)s.": "留存与法律保全按 %(instant)s 的状态判定。",
    "All times in this report's tables and charts are in %(zone)s, the zone the source names its "
    "hours in; the finding messages (the Finding and Problem columns) quote each finding as "
    "recorded, with its times in UTC (ending in <code>Z</code>).": (
        "本报告表格和图表中的时间均为 %(zone)s，即数据源划分小时所用的时区；"
        "发现项说明（“发现项”和“问题”两列）按记录原文引用，其中的时间为协调世界时"
        "（以 <code>Z</code> 结尾）。"
    ),
    'The report is written in English (<span lang="zh">简体中文</span> and other quoted text '
    "appears exactly as users wrote it).": (
        "本报告以简体中文撰写。用户所写的内容以及归档中保存的原文"
        "（如发现项说明、规则名称、策略中的说明）均按原样引用，可能为英文或其他语言。"
    ),
    "Generated %(instant)s by easemob-auditor %(version)s.": (
        "由 easemob-auditor %(version)s 生成于 %(instant)s。"
    ),
    "Summary": "概要",
    "Charts": "图表",
    "Findings": "发现项",
    "Policy": "策略",
    "How to verify": "如何验证",
    "Files": "文件",
    # -- verdict -----------------------------------------------------------------------------
    "PASS: --fail-on none, findings never fail this run": (
        "通过：--fail-on none，发现项不会使本次运行不通过"
    ),
    "FAIL: {count} finding at or above '{level}'": (
        "不通过：{count} 项发现的严重程度达到或高于“{level}”"
    ),
    "FAIL: {count} findings at or above '{level}'": (
        "不通过：{count} 项发现的严重程度达到或高于“{level}”"
    ),
    "PASS: no findings at or above '{level}'": "通过：没有严重程度达到或高于“{level}”的发现项",
    # -- summary -----------------------------------------------------------------------------
    "records archived": "已归档记录",
    "findings": "发现项",
    "at or above '%(level)s'": "达到或高于“%(level)s”的发现项",
    "records failing their schema": "未通过结构校验的记录",
    "records under legal hold": "处于法律保全的记录",
    "attachments archived": "已归档附件",
    "About this run": "本次运行概况",
    "Source": "数据源",
    "org": "组织",
    "app": "应用",
    "Window": "审计时间窗口",
    "%(since)s to %(until)s": "%(since)s 至 %(until)s",
    "Fetched again for late records": "为迟到记录重新拉取",
    "%(num)s record archived from them": "从中归档 %(num)s 条记录",
    "%(num)s records archived from them": "从中归档 %(num)s 条记录",
    "Retention and holds judged as of": "留存与法律保全的判定时点",
    "Hour time zone of the source": "数据源的小时时区",
    "Run sequence": "运行序号",
    "Archive (bag)": "归档包（BagIt）",
    ", bagged %(date)s": "，打包日期 %(date)s",
    "Merkle root": "Merkle 根",
    "%(root)s over %(count)s leaves": "%(root)s（共 %(count)s 个叶子节点）",
    "Signing key fingerprint": "签名密钥指纹",
    "Chains to": "哈希链上一环",
    "nothing: this is the first run of its chain (previous tag manifest hash is all zeros)": (
        "无：这是该哈希链的第一次运行（上一标签清单的哈希值全为零）"
    ),
    "the run whose <code>tagmanifest-sha256.txt</code> has SHA-256 %(digest)s": (
        "<code>tagmanifest-sha256.txt</code> 的 SHA-256 为 %(digest)s 的那次运行"
    ),
    "Policy file": "策略文件",
    "Attachments": "附件",
    "%(count)s archived": "已归档 %(count)s 个",
    ", %(count)s skipped": "，跳过 %(count)s 个",
    "Records outside the window or undated": "窗口外或无时间的记录",
    "%(outside)s outside, %(undated)s without a usable time": (
        "窗口外 %(outside)s 条，无可用时间 %(undated)s 条"
    ),
    "Exact copies served by the source": "数据源重复提供的完全相同副本",
    "%(num)s exact copy served by the source was archived once": (
        "数据源重复提供的 %(num)s 份完全相同副本只归档一次"
    ),
    "%(num)s exact copies served by the source were archived once": (
        "数据源重复提供的 %(num)s 份完全相同副本只归档一次"
    ),
    "Unreadable lines": "无法读取的行",
    "Findings by severity": "按严重程度统计发现项",
    "Severity": "严重程度",
    "(none)": "（无）",
    "Messages by type": "按消息类型统计",
    "Type": "类型",
    "Records": "记录数",
    "none: a record with no message body.": "none：没有消息体的记录。",
    "unknown: a first body whose type is missing or not text.": (
        "unknown：第一个消息体缺少类型或类型不是文本。"
    ),
    "No records.": "没有记录。",
    "Messages by chat type": "按会话类型统计",
    "Chat type": "会话类型",
    "unknown: a record whose chat_type is missing or not text.": (
        "unknown：chat_type 缺失或不是文本的记录。"
    ),
    "Retention dispositions": "留存处置结论",
    "Disposition": "处置结论",
    "No retention verdicts.": "没有留存判定。",
    "Findings by rule": "按规则统计发现项",
    "Category": "类别",
    "Rule": "规则",
    'The %(shown)s largest of %(total)s rules; all are in <a href="summary.json">summary.json'
    "</a>.": "仅列出 %(total)s 条规则中发现项最多的 %(shown)s 条；全部规则见 "
    '<a href="summary.json">summary.json</a>。',
    "No findings.": "没有发现项。",
    "Retention verdicts by winning rule": "按决定性规则统计留存判定",
    "Rule that won": "决定性规则",
    "none": "无",
    "The %(shown)s rules that won for the most records, of %(total)s; the other %(others)s won "
    "for %(num)s record.": (
        "共 %(total)s 条规则，此处列出决定记录最多的 %(shown)s 条；"
        "其余 %(others)s 条规则共决定 %(num)s 条记录。"
    ),
    "The %(shown)s rules that won for the most records, of %(total)s; the other %(others)s won "
    "for %(num)s records.": (
        "共 %(total)s 条规则，此处列出决定记录最多的 %(shown)s 条；"
        "其余 %(others)s 条规则共决定 %(num)s 条记录。"
    ),
    'All are in <a href="summary.json">summary.json</a> (<code>retention.by_rule</code>).': (
        '全部见 <a href="summary.json">summary.json</a>（<code>retention.by_rule</code>）。'
    ),
    "No retention verdicts were recorded.": "未记录任何留存判定。",
    # -- findings ----------------------------------------------------------------------------
    "Each table lists its most severe findings first. Tables sort when a column heading is "
    "clicked and filter as you type; without scripts every row is shown.": (
        "各表按严重程度从高到低排列。点击列标题可排序，在筛选框中输入即可筛选；"
        "浏览器不运行脚本时显示全部行。"
    ),
    "Showing the %(shown)s most severe of %(total)s (the earliest first among equals).": (
        "共 %(total)s 项，此处显示最严重的 %(shown)s 项（同等严重程度时较早的在前）。"
    ),
    "Every one is in %(csv)s and %(jsonl)s.": "全部发现项见 %(csv)s 和 %(jsonl)s。",
    "%(count)s CSV files": "%(count)s 个 CSV 文件",
    "%(num)s row": "%(num)s 行",
    "%(num)s rows": "%(num)s 行",
    "None.": "无。",
    "record": "记录",
    "Message ID": "消息 ID",
    "Pointer": "JSON 指针",
    "Problem": "问题",
    "Keyword": "校验关键字",
    "Record or line": "记录或行",
    "Text (match marked)": "文本（命中处已标出）",
    "Term": "词条",
    "Matched": "命中内容",
    "Normalisations": "归一化处理",
    "List or detector": "清单或识别器",
    "Confidence": "置信度",
    "Retain until": "留存至",
    "Why": "理由",
    "Rules that lost": "未采用的规则",
    "Finding": "发现项",
    "Schema and parse findings": "结构校验与解析发现项",
    "Records that do not match the JSON Schema of their message type, with the JSON Pointer of "
    "the value concerned, and lines that could not be read as JSON.": (
        "不符合其消息类型 JSON Schema 的记录（附相关值的 JSON 指针），以及无法按 JSON 读取的行。"
    ),
    "Keyword and PII findings": "关键词与个人信息发现项",
    "Watched terms (as the policy lists them) and personal data found in what users wrote. The "
    "matched characters are marked in the original text; the normalisations say which evasions "
    "had to be undone.": (
        "在用户所写内容中发现的受监控词条（按策略所列原样显示）和个人信息。"
        "命中的字符在原文中标出；“归一化处理”说明还原了哪些规避手段。"
    ),
    "Retention verdicts": "留存判定",
    "Records whose retention needs attention, the rule that decided and the rules it beat.": (
        "留存需要关注的记录，以及作出决定的规则和未被采用的规则。"
    ),
    "Legal holds": "法律保全",
    "Records kept under a legal hold whatever their retention rule says.": (
        "处于法律保全的记录：无论留存规则如何规定，均予以保留。"
    ),
    "Cross-run and other findings": "跨运行比对及其他发现项",
    "Messages archived before, changed since an earlier run, or gone from the source, and "
    "anything else a stage reported.": (
        "此前已归档、自上次运行以来有变化或已从数据源消失的消息，以及各处理阶段报告的其他情况。"
    ),
    "until the hold is lifted": "直至法律保全解除",
    "•••• (hidden: an attachment's share secret; the bag holds it)": (
        "••••（已隐藏：附件的分享密钥；归档包中保存原值）"
    ),
    "•••• (hidden: a value named secret; the bag holds it)": (
        "••••（已隐藏：名为 secret 的值；归档包中保存原值）"
    ),
    "… (cut here; the archive holds it all)": "……（此处截断；归档包中保存完整记录）",
    "none: the record has no usable timestamp": "无：该记录没有可用的时间戳",
    "none: no retention rule applies": "无：没有适用的留存规则",
    "({reason})": "（{reason}）",
    "(%(reason)s)": "（%(reason)s）",
    " (%(path)s)": "（%(path)s）",
    " (%(note)s)": "（%(note)s）",
    "{term} ({count:,} times)": "{term}（{count:,} 次）",
    "… and {count:,} more": "……另有 {count:,} 条",
    "{text}… (cut: {count:,} characters)": "{text}…（已截断，全长 {count:,} 个字符）",
    # -- charts ------------------------------------------------------------------------------
    "Nothing to draw.": "无可绘制的数据。",
    "%(title)s (chart; its numbers are in the table below it)": (
        "%(title)s（图表；具体数字见下方表格）"
    ),
    "The numbers": "具体数字",
    "%(title)s: the numbers": "%(title)s：具体数字",
    "Bar": "柱",
    "Total": "合计",
    "hour": "小时",
    "day": "日",
    "month": "月",
    "year": "年",
    "messages": "消息数",
    "Messages per {per} ({zone})": "每{per}消息数（{zone}）",
    "Findings per {unit} by severity ({zone})": "每{unit}发现项（按严重程度，{zone}）",
    "Archived messages per {per} of the window, by send time in {zone}.": (
        "窗口内每{per}归档的消息数，按 {zone} 的发送时间统计。"
    ),
    "Findings by the send {unit} of the record they concern.": "按所涉记录的发送{unit}统计发现项。",
    "Message types": "消息类型",
    "Archived records by the type of their first body (merged messages as combine).": (
        "按第一个消息体的类型统计已归档记录（合并转发消息计为 combine）。"
    ),
    "Chat types": "会话类型",
    "Archived records by chat type: one-to-one, group or chat room.": (
        "按会话类型统计已归档记录：单聊、群聊或聊天室。"
    ),
    "Top senders with findings": "发现项最多的发送方",
    "The ten senders whose messages drew the most findings, by severity.": (
        "消息引发发现项最多的十个发送方，按严重程度分列。"
    ),
    "{bar}: {count:,} {series}": "{bar}：{series} {count:,}",
    "{bar}: {count:,}": "{bar}：{count:,}",
    "(other)": "（其他）",
    "(no sender)": "（无发送方）",
    "{first}, {then}": "{first}，{then}",
    "Not drawn: {count:,} of {total:,} records ({shown}).": (
        "未绘出：{total:,} 条记录中的 {count:,} 条（{shown}）。"
    ),
    "Not drawn: {count:,} of {total:,} findings ({shown}).": (
        "未绘出：{total:,} 项发现中的 {count:,} 项（{shown}）。"
    ),
    "{count:,} without a usable time": "{count:,} 条没有可用时间",
    "{count:,} sent in the hours fetched again, before it": (
        "{count:,} 条发送于窗口之前重新拉取的小时内"
    ),
    "{count:,} sent outside the window": "{count:,} 条发送于窗口之外",
    "{count:,} about records without a usable time": "{count:,} 项涉及没有可用时间的记录",
    "{count:,} with no record in this run (e.g. disappeared messages)": (
        "{count:,} 项在本次运行中没有对应记录（如已消失的消息）"
    ),
    "{count:,} about records sent outside the window": "{count:,} 项涉及窗口外发送的记录",
    "{count:,} of a severity the chart has no colour for": (
        "{count:,} 项的严重程度在图中没有对应颜色"
    ),
    # -- policy ------------------------------------------------------------------------------
    "The policy": "策略",
    "Name": "名称",
    "(none given)": "（未填写）",
    "What it is for": "用途",
    "File": "文件",
    "; this archive holds it as %(path)s": "；本归档包中保存为 %(path)s",
    "The first %(shown)s of %(total)s %(noun)s; all are in the policy file": (
        "仅列出 %(total)s 条%(noun)s中的前 %(shown)s 条；全部内容见策略文件"
    ),
    ".": "。",
    ", ": "、",
    "; ": "；",
    "sent": "发送时间",
    "from %(instant)s": "自 %(instant)s",
    "before %(instant)s": "早于 %(instant)s",
    "and %(count)s more": "等，另有 %(count)s 个",
    "every record": "全部记录",
    "Retention rules": "留存规则",
    "Each record is kept at least as long as the longest rule that covers it says, and a rule "
    "that keeps it longer beats one that deletes it sooner; a legal hold keeps it whatever the "
    "rules say. The rule that decided a record, and why, is in its retention finding.": (
        "每条记录的留存期不短于适用于它的各规则中最长的一条：留存更久的规则优先于更早删除的规则；"
        "处于法律保全的记录无论规则如何规定均予保留。决定某条记录的规则及理由见其留存发现项。"
    ),
    "Kind": "种类",
    "Covers": "适用范围",
    "Keeps for": "留存期限",
    "Then": "期满后",
    "retention rules": "留存规则",
    "Hold": "保全",
    "From": "开始",
    "Until": "结束",
    "Reason": "事由",
    '<span class="warning">every record</span>: its scope is empty, so nothing is deleted '
    "while it lasts": '<span class="warning">全部记录</span>：其范围为空，保全期间不删除任何记录',
    "until it is lifted": "直至解除",
    "legal holds": "法律保全",
    "Keyword lists": "关键词清单",
    "The terms themselves are in the policy file and the term files it names this archive "
    "holds; each keyword finding names the term it matched.": (
        "词条本身见本归档包保存的策略文件及其引用的词条文件；每项关键词发现项均注明所命中的词条。"
    ),
    "The terms themselves are in the policy file and the term files it names; each keyword "
    "finding names the term it matched.": (
        "词条本身见策略文件及其引用的词条文件；每项关键词发现项均注明所命中的词条。"
    ),
    "The terms themselves are in the policy file this archive holds; each keyword finding names "
    "the term it matched.": (
        "词条本身见本归档包保存的策略文件；每项关键词发现项均注明所命中的词条。"
    ),
    "The terms themselves are in the policy file; each keyword finding names the term it "
    "matched.": "词条本身见策略文件；每项关键词发现项均注明所命中的词条。",
    "List": "清单",
    "Terms": "词条数",
    "Patterns": "正则模式数",
    "Allowed phrases": "豁免短语数",
    "Text normalised by": "文本归一化方式",
    "Whole words only": "仅匹配完整单词",
    "yes": "是",
    "no": "否",
    "keyword lists": "关键词清单",
    "Terms and allowed phrases read from term files, one a line; the digest of each file the "
    "run applied is in the signed bag-info.txt": (
        "从词条文件读取的词条和豁免短语（每行一个）；本次运行所用每个文件的摘要"
        "记载于已签名的 bag-info.txt 中"
    ),
    ", and this archive holds each byte for byte": "，本归档包逐字节保存了每个文件",
    "Term files": "词条文件",
    "Field": "字段",
    "term files": "词条文件",
    "Personal-data detectors": "个人信息识别器",
    "Detects": "识别对象",
    "Without a context word": "无上下文关键词时",
    "Context words": "上下文关键词数",
    "Allowed values": "豁免值数",
    "detector rules": "识别规则",
    "This archive holds no copy of its policy file (it was written before archives held one); "
    "the file's SHA-256 is given above, under Policy file.": (
        "本归档包未保存策略文件副本（它生成于归档包开始保存策略文件之前）；"
        "该文件的 SHA-256 见上文“策略文件”一栏。"
    ),
    "{copy} is not the file bag-info.txt names (its SHA-256 differs); run `auditor verify` on "
    "the archive. Its rules are not shown.": (
        "{copy} 不是 bag-info.txt 所指明的文件（SHA-256 不一致）；请对归档包运行 "
        "`auditor verify`。其规则不予显示。"
    ),
    "this version of the auditor cannot read {copy}, so its rules are not shown:": (
        "当前版本的审计工具无法读取 {copy}，因此不显示其规则。原因（审计工具的原文）："
    ),
    "statutory floor": "法定最短留存期",
    "default": "默认",
    "rule": "规则",
    "keep (a minimum only)": "保留（仅为最短期限）",
    "the same: its own check confirms every match": "不变：其自身校验可确认每个命中",
    "one level lower": "降低一级",
    "chat type": "会话类型",
    "sender": "发送方",
    "receiver": "接收方",
    "sender or receiver": "发送方或接收方",
    "group": "群组",
    "message type": "消息类型",
    "{amount} hour": "{amount} 小时",
    "{amount} hours": "{amount} 小时",
    "{amount} day": "{amount} 天",
    "{amount} days": "{amount} 天",
    "{amount} week": "{amount} 周",
    "{amount} weeks": "{amount} 周",
    "{amount} month": "{amount} 个月",
    "{amount} months": "{amount} 个月",
    "{amount} year": "{amount} 年",
    "{amount} years": "{amount} 年",
    # -- how to verify, files ----------------------------------------------------------------
    "How to verify this archive": "如何验证本归档包",
    "Legal can check the archive with stock tools alone, without this program. The public key "
    "must come from the key's owner by another channel: a key found inside the archive proves "
    "nothing. These are the commands of the bag's <code>data/VERIFY.txt</code>:": (
        "法务人员无需本程序，仅用通用工具即可验证归档包。公钥必须由密钥持有人通过其他渠道提供："
        "归档包内的密钥不能证明任何事情。以下是归档包中 <code>data/VERIFY.txt</code> 所列的命令"
        "（命令及其说明为英文原文）："
    ),
    '<a href="findings.csv">findings.csv</a>: every finding, for a spreadsheet (UTF-8 with a '
    "byte-order mark; a cell that would start a formula is prefixed with an apostrophe).": (
        '<a href="findings.csv">findings.csv</a>：全部发现项，供电子表格使用'
        "（带字节顺序标记的 UTF-8；以公式开头的单元格前加撇号）。"
    ),
    "Every finding, for a spreadsheet, in %(files)s files of at most %(rows)s findings each, since "
    "a spreadsheet's sheet holds %(sheet)s rows and Excel opens a longer file without the rest, "
    "saying nothing:": (
        "全部发现项，供电子表格使用，分为 %(files)s 个文件，每个最多 %(rows)s 项："
        "电子表格每个工作表最多 %(sheet)s 行，"
        "Excel 打开更长的文件时会不加提示地丢弃其余部分。文件："
    ),
    "(UTF-8 with a byte-order mark; a cell that would start a formula is prefixed with an "
    "apostrophe).": "（带字节顺序标记的 UTF-8；以公式开头的单元格前加撇号）。",
    "%(link)s: every finding exactly as recorded, one JSON object a line.": (
        "%(link)s：按记录原样保存的全部发现项，每行一个 JSON 对象。"
    ),
    '<a href="summary.json">summary.json</a>: these counts and the verdict, for programs.': (
        '<a href="summary.json">summary.json</a>：上述统计和结论，供程序读取。'
    ),
    # -- the tool's own words in the data (`VOCABULARY`) ---------------------------------------
    "high": "高",
    "medium": "中",
    "low": "低",
    "info": "提示",
    "keep": "保留",
    "dispose": "到期删除",
    "review": "复核",
    "hold": "法律保全",
    "delete": "删除",
    "schema": "结构校验",
    "parse": "解析",
    "keyword": "关键词",
    "pii": "个人信息",
    "retention": "留存",
    "coverage": "覆盖范围",
    "duplicate": "重复",
    "source": "数据源",
    "attachment": "附件",
    # -- report.js (`SCRIPT`) ----------------------------------------------------------------
    "this table": "本表",
    "Rows of {title}": "{title}的行",
    "the {shown} rows shown (of {total})": "显示的 {shown} 行（共 {total} 项）",
    "the rows of this table": "本表各行",
    "Filter the {shown} rows shown": "筛选显示的 {shown} 行",
    "Filter rows": "筛选行",
    "Filter {scope}": "筛选{scope}",
    "Searches only {scope}; findings.csv and findings.jsonl hold all {total}": (
        "只搜索{scope}；findings.csv 和 findings.jsonl 包含全部 {total} 项"
    ),
    "\u2039 Previous": "\u2039 上一页",
    "Previous page": "上一页",
    "Next \u203a": "下一页 \u203a",
    "Next page": "下一页",
    " (searched only the {shown} rows shown of {total}; findings.csv and findings.jsonl hold "
    "all)": "（只搜索了共 {total} 项中显示的 {shown} 行；全部见 findings.csv 和 findings.jsonl）",
    "rows {first}\u2013{last} of {count}": "第 {first}\u2013{last} 行，共 {count} 行",
    "no matching rows": "没有匹配的行",
    ", sorted by {name}, ascending": "，按“{name}”升序排列",
    ", sorted by {name}, descending": "，按“{name}”降序排列",
    "{what} of message {id}": "消息 {id} 的{what}",
    "scrolling text": "可滚动文本",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": {}, "zh-CN": ZH_CN}
