"""The report's finding tables: which categories each holds and how a finding becomes a row.

Rows carry plain strings only; the templates escape them and show invisible characters. Every
value is clipped so one huge record cannot push the page past its size budget: the full finding
is always in the CSV/JSONL. Times are in the report's zone; a record's attachment share secrets
are masked (the page travels further than the bag).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timezone
from typing import Any

import orjson

from auditor.findings import SEVERITY_RANK
from auditor.report.catalogue import Phrase
from auditor.report.display import clip, instant, label, local_time

CONTEXT_CHARS = 80
MATCH_CHARS = 120
RECORD_BYTES = 1_000
CELL_CHARS = 200
ID_CHARS = 256
LOSING_RULES = 5
# What a retention verdict that no rule won stands for, by disposition (the verdicts
# `policies.retention` gives records without a timestamp and records no rule applies to).
NO_RULE = {
    "review": Phrase("none: the record has no usable timestamp"),
    "keep": Phrase("none: no retention rule applies"),
}

Row = dict[str, Any]


def severity_rank(severity: Any) -> int:
    """Rank of a severity; an unknown one ranks below `info` and so never fails a run."""
    return SEVERITY_RANK.get(severity, -1) if isinstance(severity, str) else -1


def _details(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    details = finding.get("details")
    return details if isinstance(details, Mapping) else {}


def _common(finding: Mapping[str, Any]) -> Row:
    return {
        "msg_id": label(finding.get("msg_id"), ID_CHARS),
        "category": clip(finding.get("category"), 32),
        "rule": clip(finding.get("rule"), 120),
        "severity": clip(finding.get("severity"), 16),
        "rank": severity_rank(finding.get("severity")),
        "message": clip(finding.get("message"), CELL_CHARS),
        "pointer": clip(finding.get("pointer"), 120),
    }


SECRET_KEYS = frozenset({"secret", "thumb_secret", "share-secret", "share_secret", "sharesecret"})
SHARE_SECRET = Phrase("•••• (hidden: an attachment's share secret; the bag holds it)")
OTHER_SECRET = Phrase("•••• (hidden: a value named secret; the bag holds it)")
RECORD_CUT = Phrase("… (cut here; the archive holds it all)")


def masked(value: Any, in_body: bool = False) -> Any:
    """`value` (a record or part of one) with every value under a key named `secret` (an
    attachment body's `secret`, which the file server asks for as `share-secret`, or its
    thumbnail's `thumb_secret`) masked: whoever holds the page could download the files with
    them, and the page is handed on. The record itself is not changed."""
    if isinstance(value, Mapping):
        return {
            key: (
                (SHARE_SECRET if in_body else OTHER_SECRET)
                if isinstance(key, str) and key.lower() in SECRET_KEYS and item not in (None, "")
                else masked(item, in_body=key == "bodies" or (in_body and key != "ext"))
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [masked(item, in_body) for item in value]
    return value


def pretty_record(record: Any) -> str:
    """The record as indented JSON with its secrets masked, cut at `RECORD_BYTES` (on a
    character boundary); what the report says in it (a mask, the cut) is a `Phrase` field, so a
    page in another language says it in that language."""
    try:
        data = orjson.dumps(masked(record), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        data = repr(record).encode()
    cut = len(data) > RECORD_BYTES
    text = data[:RECORD_BYTES].decode(errors="ignore") if cut else data.decode()
    if not cut and SHARE_SECRET not in text and OTHER_SECRET not in text:
        return text
    shown = text.replace("{", "{{").replace("}", "}}")
    shown = shown.replace(SHARE_SECRET, "{share}").replace(OTHER_SECRET, "{other}")
    return Phrase(
        shown + ("\n{cut}" if cut else ""), share=SHARE_SECRET, other=OTHER_SECRET, cut=RECORD_CUT
    )


def schema_row(finding: Mapping[str, Any], tz: timezone) -> Row:
    details = _details(finding)
    row = _common(finding)
    row["keyword"] = clip(details.get("keyword"), 40)
    row["type"] = clip(details.get("type"), 40)
    row["profile"] = clip(details.get("profile"), 16)
    where = details.get("file")
    row["where"] = f"{clip(where, 160)}:{clip(details.get('line'), 12)}" if where else ""
    record = details.get("record")
    row["record"] = pretty_record(record) if record is not None else ""
    return row


def _offset(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def listed_term(details: Mapping[str, Any]) -> Any:
    """The term as the policy lists it (`洗錢`, `Kickback`), not as normalised for matching
    (`洗钱`, `kickback`): the reviewer looks it up in the policy file. A pattern's is its source;
    a detector's finding, which lists none, has its value."""
    return details.get("listed_term") or details.get("term")


def keyword_row(finding: Mapping[str, Any], tz: timezone) -> Row:
    """A keyword or PII finding with its text cut around the match, the match kept apart.

    A match that recurs in its text is one finding; its term says how many times
    (`details.occurrences`), the text is cut around the first.
    `start`/`end` are code-point offsets into the text searched, of which `text` holds the part
    from `text_from` on (all of it without `text_from`); when they do not fit the text the text is
    shown without a highlight rather than highlighting the wrong characters.
    """
    details = _details(finding)
    row = _common(finding)
    row["list"] = clip(details.get("list") or details.get("detector"), 80)
    row["term"] = clip(listed_term(details), 80)
    occurrences = max(1, _offset(details.get("occurrences")) or 1)
    if occurrences > 1:
        row["term"] = Phrase("{term} ({count:,} times)", term=row["term"], count=occurrences)
    row["matched"] = clip(details.get("matched"), 80)
    normalizations = details.get("normalizations")
    if isinstance(normalizations, list | tuple):
        row["normalizations"] = clip(", ".join(str(each) for each in normalizations), 120)
    else:
        row["normalizations"] = clip(normalizations, 120)
    row["confidence"] = clip(details.get("confidence"), 16)
    text = details.get("text")
    text = text if isinstance(text, str) else ("" if text is None else str(text))
    start, end = _offset(details.get("start")), _offset(details.get("end"))
    # a long text is kept around its match: the excerpt's place in it, and its whole length
    excerpt_from = _offset(details.get("text_from")) or 0
    whole = max(_offset(details.get("text_length")) or 0, excerpt_from + len(text))
    if excerpt_from and start is not None and end is not None:
        start, end = start - excerpt_from, end - excerpt_from
    if start is None or end is None or not 0 <= start <= end <= len(text):
        start = end = None
    if start is None:
        row["before"], row["match"], row["after"] = clip(text, 2 * CONTEXT_CHARS), "", ""
    else:
        left = max(0, start - CONTEXT_CHARS)
        before = ("…" if excerpt_from + left else "") + text[left:start]
        match = clip(text[start:end], MATCH_CHARS)
        right = end + CONTEXT_CHARS
        after = text[end:right] + ("…" if excerpt_from + right < whole else "")
        row["before"], row["match"], row["after"] = before, match, after
    return row


def verdict_row(finding: Mapping[str, Any], tz: timezone) -> Row:
    """A retention or hold finding: the rule that won, why, and the rules that lost."""
    details = _details(finding)
    row = _common(finding)
    disposition = details.get("disposition")
    row["disposition"] = clip(disposition, 16)
    winner = details.get("rule")
    if not winner and disposition in NO_RULE:  # as the summary's table says it
        row["winning_rule"] = Phrase("({reason})", reason=NO_RULE[disposition])
    else:
        row["winning_rule"] = clip(winner or finding.get("rule"), 120)
    until_ms = _offset(details.get("retain_until_ms"))
    if until_ms is not None:
        row["retain_until"] = local_time(until_ms, tz)
    elif details.get("retain_until") not in (None, ""):
        row["retain_until"] = instant(details.get("retain_until"), tz)
    elif disposition == "hold":
        row["retain_until"] = Phrase("until the hold is lifted")
    else:
        row["retain_until"] = ""
    row["reason"] = clip(details.get("reason"), CELL_CHARS)
    losing = details.get("losing_rules")
    row["losing"] = []
    if isinstance(losing, list | tuple):
        for item in losing[:LOSING_RULES]:
            if isinstance(item, list | tuple) and len(item) == 2:
                row["losing"].append(f"{clip(item[0], 60)}: {clip(item[1], 100)}")
            else:
                row["losing"].append(clip(item, 160))
        if len(losing) > LOSING_RULES:
            row["losing"].append(Phrase("… and {count:,} more", count=len(losing) - LOSING_RULES))
    return row


def other_row(finding: Mapping[str, Any], tz: timezone) -> Row:
    return _common(finding)


@dataclass(frozen=True, slots=True)
class TableKind:
    """One table of the report: its anchor, title, the categories it lists, its row builder and
    the template macro that draws a row."""

    key: str
    title: Phrase
    categories: frozenset[str]
    row: Callable[[Mapping[str, Any], timezone], Row]
    macro: str
    about: Phrase


TABLES: tuple[TableKind, ...] = (
    TableKind(
        "schema",
        Phrase("Schema and parse findings"),
        frozenset({"schema", "parse"}),
        schema_row,
        "schema_row",
        Phrase(
            "Records that do not match the JSON Schema of their message type, with the JSON "
            "Pointer of the value concerned, and lines that could not be read as JSON."
        ),
    ),
    TableKind(
        "keyword",
        Phrase("Keyword and PII findings"),
        frozenset({"keyword", "pii"}),
        keyword_row,
        "keyword_row",
        Phrase(
            "Watched terms (as the policy lists them) and personal data found in what users wrote. "
            "The matched characters are marked in the original text; the normalisations say which "
            "evasions had to be undone."
        ),
    ),
    TableKind(
        "retention",
        Phrase("Retention verdicts"),
        frozenset({"retention"}),
        verdict_row,
        "verdict_row",
        Phrase(
            "Records whose retention needs attention, the rule that decided and the rules it beat."
        ),
    ),
    TableKind(
        "hold",
        Phrase("Legal holds"),
        frozenset({"hold"}),
        verdict_row,
        "verdict_row",
        Phrase("Records kept under a legal hold whatever their retention rule says."),
    ),
    TableKind(
        "other",
        Phrase("Cross-run and other findings"),
        frozenset(),
        other_row,
        "other_row",
        Phrase(
            "Messages archived before, changed since an earlier run, or gone from the source, and "
            "anything else a stage reported."
        ),
    ),
)
_BY_CATEGORY = {category: kind for kind in TABLES for category in kind.categories}
OTHER = TABLES[-1]


def table_for(category: Any) -> TableKind:
    return _BY_CATEGORY.get(category, OTHER) if isinstance(category, str) else OTHER
