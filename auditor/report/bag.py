"""Rendering the report again from a bag alone: `bag-info.txt`, the archived records, the findings,
the policy file the run applied, and from the summary the run signed into the bag the few counts
nothing else in the bag holds.

The bag is read, not verified (that is `auditor verify`): a line that is not an archived record
stops the rendering with its file and line, since a report over a damaged archive would mislead.
Whoever made the bag may have crafted it, so every file is opened as `archive.untrusted` says (a
regular file, never through a symlink, never past a cap) and `bag-info.txt` is read by the
verifier's own parser, so `report` and `verify` never read one bag-info two ways.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from auditor import __version__
from auditor.archive import layout
from auditor.archive.baginfo import check_bag_format, parse_bag_info, whole_number
from auditor.archive.untrusted import (
    TAG_FILE_LIMIT,
    bag_lines,
    read_bag_file,
    record_files,
    refuse_linked_folders,
    shown,
)
from auditor.errors import AuditorError, InputError
from auditor.fsutil import refuse_inside_bag
from auditor.jsonl import ParsedLine, parse_lines
from auditor.operator_files import TEXT_FILE_LIMIT as POLICY_LIMIT
from auditor.partitions import parse_instant
from auditor.policies.in_bag import policy_of_bag_copy
from auditor.report.catalogue import DEFAULT_LANGUAGE, Phrase
from auditor.report.formats import default_formats
from auditor.report.model import ReportBuilder
from auditor.report.policy import PolicyView, policy_view
from auditor.report.runinfo import GENESIS, RunInfo

log = logging.getLogger(__name__)

SUMMARY_PATHS = ("data/summary.json", f"{layout.REPORT}/summary.json")

# Caps on what a bag's files may hold; the writer's own files stay far below each of them.
TEXT_FILE_LIMIT = 1 << 20  # data/VERIFY.txt
SUMMARY_LIMIT = 64 << 20  # a stored summary.json


@dataclass(frozen=True, slots=True)
class Rendered:
    """The files written (by name) and the summary they state, verdict included."""

    files: dict[str, Path]
    summary: dict[str, Any]


def read_bag_info(bag: Path) -> dict[str, str]:
    """`bag-info.txt` as `auditor verify` reads it (`parse_bag_info`), after `bagit.txt` says the
    tag files are UTF-8; InputError on the first line that is not `Label: value`."""
    bagit_txt = read_bag_file(bag / layout.BAGIT_TXT, TAG_FILE_LIMIT)
    if bagit_txt is None:
        raise InputError(f"{shown(bag)}: not a readable BagIt bag (no {layout.BAGIT_TXT})")
    declared = _tag_file(bagit_txt, bag / layout.BAGIT_TXT)
    encoding = declared.get("Tag-File-Character-Encoding", "").strip()
    if "BagIt-Version" not in declared or encoding.upper() not in ("UTF-8", "UTF8"):
        raise InputError(
            f"{shown(bag / layout.BAGIT_TXT)}: not a readable BagIt bag (a BagIt-Version and "
            f"Tag-File-Character-Encoding UTF-8 expected, found {encoding[:40]!r})"
        )
    data = read_bag_file(bag / layout.BAG_INFO, TAG_FILE_LIMIT)
    if data is None:
        raise InputError(f"{shown(bag)}: not a readable BagIt bag (no {layout.BAG_INFO})")
    return _tag_file(data, bag / layout.BAG_INFO)


def _tag_file(data: bytes, path: Path) -> dict[str, str]:
    fields, problems = parse_bag_info(data, path.name)
    if problems:
        where = problems[0].line
        at = f"{shown(path)}:{where}" if where is not None else shown(path)
        raise InputError(f"{at}: {problems[0].message}; run `auditor verify` on the bag")
    for label, value in fields.items():
        if "\r" in value:
            raise InputError(
                f"{shown(path)}: the value of {label} holds a carriage return, which other "
                "readers take for a line break; run `auditor verify` on the bag"
            )
    return fields


def _int(info: Mapping[str, str], key: str, bag: Path, default: int | None = None) -> int:
    value = info.get(key)
    if value is None or not value.strip():
        if default is None:
            raise InputError(f"{bag}/bag-info.txt: {key} is missing")
        return default
    number = whole_number(value.strip())
    if number is None:
        raise InputError(f"{bag}/bag-info.txt: {key} {_quoted(value)} is not a whole number")
    return number


def _instant(info: Mapping[str, str], key: str, bag: Path) -> int:
    value = info.get(key)
    if not value:
        raise InputError(f"{bag}/bag-info.txt: {key} is missing")
    try:
        return parse_instant(value)
    except AuditorError:
        raise InputError(
            f"{bag}/bag-info.txt: {key} {_quoted(value)} is not an ISO 8601 time"
        ) from None


QUOTED_CHARS = 40


def _quoted(value: str) -> str:
    """A damaged bag-info value in one line of output: cut after `QUOTED_CHARS` characters,
    with its whole length, since a value may run to a megabyte and the line must stay one."""
    if len(value) <= QUOTED_CHARS:
        return repr(value)
    return f"{value[:QUOTED_CHARS]!r}… ({len(value):,} characters)"


def _optional_instant(info: Mapping[str, str], key: str, bag: Path) -> int | None:
    """`_instant` for a label older bags lack: None without it."""
    return _instant(info, key, bag) if info.get(key, "").strip() else None


def _fetched_again(info: Mapping[str, str], bag: Path) -> tuple[int, int] | None:
    since = _optional_instant(info, "Fetched-Again-Since", bag)
    until = _optional_instant(info, "Fetched-Again-Until", bag)
    return (since, until) if since is not None and until is not None else None


def run_info_from_bag(
    bag: Path, fail_on: str | None = None, info: Mapping[str, str] | None = None
) -> RunInfo:
    """The run as the bag's `bag-info.txt` and `data/VERIFY.txt` describe it."""
    bag = Path(bag)
    info = read_bag_info(bag) if info is None else info
    skipped = info.get("Attachments-Skipped", "").strip()
    skipped_count = whole_number(skipped)
    counted = skipped_count is not None
    verify = bag / "data" / "VERIFY.txt"
    bagged = info.get("Bagging-Date", "")
    if info.get("Tool-Version"):
        bagged = f"{bagged} by easemob-auditor {info['Tool-Version']}".strip()
    try:
        return RunInfo(
            sequence=_int(info, "Run-Sequence", bag),
            since_ms=_instant(info, "Window-Since", bag),
            until_ms=_instant(info, "Window-Until", bag),
            source={
                "api": info.get("Source-API", ""),
                "base_url": info.get("Source-Base-URL", ""),
                "org": info.get("Source-Organization", ""),
                "app": info.get("Source-Application", ""),
            },
            hour_timezone=info.get("Hour-Timezone", "UTC") or "UTC",
            merkle_root=info.get("Merkle-Root", ""),
            tree_size=_int(info, "Merkle-Tree-Size", bag, default=0),
            key_fingerprint=info.get("Signing-Key-Fingerprint", ""),
            previous_tagmanifest_sha256=info.get("Previous-Tagmanifest-SHA256", GENESIS),
            policy_file=info.get("Policy-File", ""),
            policy_sha256=info.get("Policy-SHA256", ""),
            tool_version=__version__,
            generated_at=int(time.time() * 1000),
            fail_on=fail_on or info.get("Fail-On", "high") or "high",
            attachments=_int(info, "Attachment-Count", bag, default=0),
            attachments_skipped=skipped_count or 0,
            # the run's own note: bag-info holds the reason only (`--attachments skip`)
            attachments_note=f"skipped ({skipped})" if skipped and not counted else "",
            bag_name=bag.resolve().name,
            archived_on=bagged,
            verify_text=_verify_text(verify),
            signature_namespace=info.get("Signature-Namespace", "") or "easemob-auditor",
            reference_ms=_optional_instant(info, "Policy-Reference-Time", bag),
            fetched_again_ms=_fetched_again(info, bag),
            term_files=tuple(
                value for label, value in info.items() if label.startswith(layout.POLICY_TERM_FILE)
            ),
        )
    except AuditorError as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{bag}/bag-info.txt: {error}") from None


def bag_policy(bag: Path, sha256: str, info: Mapping[str, str]) -> PolicyView | None:
    """The policy the bag's copy states, with the bag's copies of its term files; None when the
    bag holds no copy. A copy this version cannot read, or whose digest (or a term file's) is
    not bag-info's, is named in the view's `problem`, not shown: the page must not explain
    verdicts by another policy than the one applied."""
    path = Path(bag) / layout.POLICY
    raw = read_bag_file(path, POLICY_LIMIT)
    if raw is None:
        return None
    copy = layout.POLICY
    if hashlib.sha256(raw).hexdigest() != sha256:
        return PolicyView(
            copy=copy,
            problem=Phrase(
                "{copy} is not the file bag-info.txt names (its SHA-256 differs); run "
                "`auditor verify` on the archive. Its rules are not shown.",
                copy=copy,
            ),
        )
    try:
        return policy_view(policy_of_bag_copy(bag, raw, dict(info)), copy)
    except AuditorError as error:
        return PolicyView(
            copy=copy,
            problem=Phrase(
                "this version of the auditor cannot read {copy}, so its rules are not shown:",
                copy=copy,
            ),
            quoted=str(error),
        )


def _verify_text(path: Path) -> str:
    data = read_bag_file(path, TEXT_FILE_LIMIT)
    try:
        return "" if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{shown(path)}: is not UTF-8 text") from None


def _parsed(path: Path) -> Iterator[ParsedLine]:
    return parse_lines(bag_lines(path), shown(path))


def archived_records(bag: Path) -> Iterator[tuple[str, dict[str, Any], int | None]]:
    """(partition label, record, its `seq`) for every line of `data/records/*.jsonl`, in file
    order."""
    for path in record_files(Path(bag)):
        for parsed in _parsed(path):
            record = parsed.record.get("record") if parsed.record else None
            if not isinstance(record, dict):
                raise InputError(
                    f"{parsed.path}:{parsed.line}: not an archived record line "
                    f"({parsed.error or 'no record object'}); run `auditor verify` on the bag"
                )
            seq = parsed.record.get("seq") if parsed.record else None
            yield path.stem, record, seq if type(seq) is int else None


def archived_findings(bag: Path) -> Iterator[dict[str, Any]]:
    path = Path(bag) / layout.FINDINGS
    if not os.path.lexists(path):
        return
    for parsed in _parsed(path):
        if parsed.record is None:
            raise InputError(f"{parsed.path}:{parsed.line}: not a finding ({parsed.error})")
        yield parsed.record


def _observe_in_bag_order(builder: ReportBuilder, bag: Path) -> None:
    """Every record and finding of `bag`, the findings about a line (`seq`) just after its
    record, so each is placed by that very record (its send time and sender, as the run gave
    them with the finding) without waiting for it. Fed all findings first, every one waited,
    and a million findings took 330 MB. The findings keep their order in the bag, which holds
    a record's schema findings together, as the count of records failing their schema needs."""
    records = archived_records(bag)
    upcoming = next(records, None)
    for finding in archived_findings(bag):
        seq = finding.get("seq") if isinstance(finding, dict) else None
        if type(seq) is int:
            while upcoming is not None and (upcoming[2] is None or upcoming[2] <= seq):
                label, record, line = upcoming
                builder.observe_record(record, label, line)
                upcoming = next(records, None)
        builder.observe_finding(finding)
    while upcoming is not None:
        label, record, line = upcoming
        builder.observe_record(record, label, line)
        upcoming = next(records, None)


def _restore_from_summary(bag: Path, builder: ReportBuilder) -> None:
    """What lives only in the summary the run signed into the bag: the retention verdict counts
    (the records' verdicts are not archived) and the exact copies the source served, which
    the run dropped before archiving. Taken from there if present."""
    for relative in SUMMARY_PATHS:
        path = Path(bag) / relative
        data = read_bag_file(path, SUMMARY_LIMIT)
        if data is None:
            continue
        stored: Any = None
        try:
            stored = orjson.loads(data)
            rules = stored["retention"]["by_rule"]
            for item in rules:
                builder.observe_verdict(item["disposition"], item["rule"], int(item["count"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("%s: no retention counts readable in it; left out", shown(path))
        records = stored.get("records") if isinstance(stored, dict) else None
        copies = records.get("source_copies_dropped", 0) if isinstance(records, dict) else 0
        if type(copies) is int and copies >= 0:  # 0 in a bag older than the count
            builder.observe_source_copies(copies)
        else:
            log.warning("%s: records.source_copies_dropped is not a count; left out", shown(path))
        return


def render_bag(
    bag: Path,
    out_dir: Path,
    fail_on: str | None = None,
    table_rows: int = 1_000,
    language: str = DEFAULT_LANGUAGE,
) -> Rendered:
    """Renders report.html (in `language`), findings.csv, findings.jsonl and summary.json from
    `bag` alone."""
    bag = Path(bag)
    if not bag.is_dir():
        raise InputError(f"{shown(bag)}: no such bag folder")
    refuse_linked_folders(bag, (layout.DATA, layout.RECORDS, layout.REPORT))
    check_bag_format(bag, "report on")
    info = read_bag_info(bag)
    refuse_inside_bag(bag, out_dir, "the report")
    run_info = run_info_from_bag(bag, fail_on, info)
    policy = bag_policy(bag, run_info.policy_sha256, info)
    with ReportBuilder(run_info, table_rows=table_rows, policy=policy) as builder:
        _observe_in_bag_order(builder, bag)
        _restore_from_summary(bag, builder)
        summary = builder.summary()
        expected = info.get("Record-Count", "").strip()
        if (
            expected.isascii()
            and expected.isdigit()
            and whole_number(expected) != summary["records"]["total"]
        ):
            log.warning(
                "%s: bag-info says %s records, the record files hold %d; run `auditor verify`",
                bag,
                shown(expected),
                summary["records"]["total"],
            )
        return Rendered(builder.render(out_dir, default_formats(language)), summary)
