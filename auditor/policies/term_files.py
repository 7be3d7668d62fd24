"""Keyword terms kept in plain text files beside the policy (`terms_file:`, `allow_file:`).

Compliance teams receive sensitive-word lists (敏感词库) of 10,000-200,000 lines from someone
else; pasting one into YAML is error-prone and PyYAML takes seconds and a hundred MB to parse
it. A term file is read as text instead: UTF-8 (a BOM at its start tolerated), one term a line,
surrounding whitespace stripped, blank lines and lines whose first character after that is `#`
skipped. The bytes read are kept, so the run archives exactly the list it applied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from auditor.archive.layout import POLICY_FOLDER as ARCHIVE_FOLDER
from auditor.archive.layout import POLICY_TERM_FILE as INFO_LABEL

KEYS = {"terms_file": "terms", "allow_file": "allow"}


@dataclass(frozen=True, slots=True)
class TermFile:
    """One term file a keyword list named, as read: `declared` is the path as the policy writes
    it, `archived` where a bag holds its bytes, `terms` how many terms it gave."""

    list_id: str
    key: str
    declared: str
    archived: str
    sha256: str
    terms: int
    raw: bytes = field(default=b"", repr=False, compare=False)


def archived_name(index: int, list_id: str, key: str) -> str:
    """`data/policy/keywords-<index>-<id>.<terms|allow>.txt`: unique by the list's position, and
    legible by its id (whose `:` no portable file name may hold)."""
    return f"{ARCHIVE_FOLDER}/keywords-{index}-{list_id.replace(':', '_')}.{KEYS[key]}.txt"


def term_lines(raw: bytes, name: str) -> list[tuple[str, int]]:
    """`(term, line)` for each term of a term file's bytes, `name` naming it in errors; raises
    `ValueError` "NAME:LINE: ..." for bytes that are not UTF-8."""
    text = _text(raw, name)
    found = []
    for number, line_text in enumerate(text.split("\n"), start=1):
        term = line_text.strip()
        if term and not term.startswith("#"):
            found.append((term, number))
    return found


def term_count(raw: bytes, name: str) -> int:
    """`len(term_lines(raw, name))` without a list of the terms: 0.09 s for 200,000 of them,
    against 0.22 s and the list's memory."""
    return sum(
        1 for line in _text(raw, name).split("\n") if (term := line.strip()) and term[0] != "#"
    )


def _text(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{name}:{line}: not UTF-8 text (byte {error.start})") from None


def term_file(
    index: int, list_id: str, key: str, declared: str, raw: bytes, terms: int
) -> TermFile:
    return TermFile(
        list_id=list_id,
        key=key,
        declared=declared,
        archived=archived_name(index, list_id, key),
        sha256=hashlib.sha256(raw).hexdigest(),
        terms=terms,
        raw=raw,
    )


def info_labels(files: tuple[TermFile, ...]) -> dict[str, str]:
    """bag-info's `Policy-Term-File-N: <sha256>  data/policy/...` lines: each value is a line
    `sha256sum -c` checks, so legal needs no other tool."""
    return {
        f"{INFO_LABEL}{number}": f"{each.sha256}  {each.archived}"
        for number, each in enumerate(files, start=1)
    }


def named_in_info(info: dict[str, str]) -> dict[str, str]:
    """Archived path -> SHA-256 of each term file a bag-info names (lines not of that form are
    left out: `auditor verify` names them)."""
    named = {}
    for label, value in info.items():
        if label.startswith(INFO_LABEL):
            digest, _, path = value.partition("  ")
            if digest and path:
                named[path] = digest
    return named


def applied_sha256(policy_sha256: str, files: tuple[TermFile, ...]) -> str:
    """One digest of everything a run applies: the policy file's alone when it names no term
    file (so a chain's runs keep their identity), else over it and every term file's."""
    return _applied(policy_sha256, [(each.archived, each.sha256) for each in files])


def applied_sha256_in_info(info: dict[str, str]) -> str | None:
    """`applied_sha256` of the run whose bag-info is `info`, from its Policy-SHA256 and its
    `Policy-Term-File-N` labels (None without a Policy-SHA256)."""
    policy_sha256 = info.get("Policy-SHA256")
    if not policy_sha256:
        return None
    labels = sorted(
        (int(label.removeprefix(INFO_LABEL)), value)
        for label, value in info.items()
        if label.startswith(INFO_LABEL) and label.removeprefix(INFO_LABEL).isdigit()
    )
    named = named_in_info({f"{INFO_LABEL}{number}": value for number, value in labels})
    return _applied(policy_sha256, [(path, digest) for path, digest in named.items()])


def _applied(policy_sha256: str, files: list[tuple[str, str]]) -> str:
    if not files:
        return policy_sha256
    digest = hashlib.sha256(policy_sha256.encode())
    for archived, sha256 in files:
        digest.update(f"\n{archived} {sha256}".encode())
    return digest.hexdigest()
